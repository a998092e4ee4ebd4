// Package remoteexec is the Slurm executor's data path through the S3
// remote cache, and what the hidden `cogumi exec-action` command its jobs
// run does.
//
// A cluster that shares no directory with this machine (an executor
// without shared_dir, in a workspace with a writable remote cache) gets
// the inputs of an action and returns its outputs through the bucket:
//
//  1. The client hashes every file of the action's scratch directory (the
//     inputs staged under ws/, files a rule wrote beside them such as
//     params.json) and of the directories that the environment names
//     outside it (PYTHONPATH, COGUMI_RESUME_DIR), and uploads the blobs
//     the bucket lacks.
//  2. It uploads a spec (Spec, JSON, itself a blob): the files with
//     their digests, every directory, and argv and env with the scratch
//     directory replaced by ${COGUMI_SCRATCH}; a random token makes each
//     run's spec, and so its result, unique.
//  3. The job runs `cogumi exec-action SPEC`, which lays the files out in a
//     scratch directory of its own, runs the command there, uploads the
//     outputs (or, after a failure, the resume directory) and the
//     command's output, and records all that as an action result under
//     ResultKey(SPEC), written last.
//  4. The client reads that result, downloads the outputs into out/ (the
//     engine then stores and records them as for any action) or, after a
//     failure, the resume directory, and deletes the result.

package remoteexec
