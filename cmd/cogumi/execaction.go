package main

// The Slurm executor's data path through the S3 remote cache, and the
// hidden `cogumi exec-action` command its jobs run.
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
//  2. It uploads a spec (execSpec, JSON, itself a blob): the files with
//     their digests, every directory, and argv and env with the scratch
//     directory replaced by ${COGUMI_SCRATCH}; a random token makes each
//     run's spec, and so its result, unique.
//  3. The job runs `cogumi exec-action SPEC`, which lays the files out in a
//     scratch directory of its own, runs the command there, uploads the
//     outputs (or, after a failure, the resume directory) and the
//     command's output, and records all that as an action result under
//     execResultKey(SPEC), written last.
//  4. The client reads that result, downloads the outputs into out/ (the
//     engine then stores and records them as for any action) or, after a
//     failure, the resume directory, and deletes the result.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/hcl"
	"github.com/cogumi/cogumi/slurm"
	"github.com/cogumi/cogumi/target"
	"github.com/cogumi/cogumi/units"
)

const (
	// execSpecVersion is the spec format; exec-action refuses others.
	execSpecVersion = 1
	// scratchPlaceholder stands for the scratch directory in a spec's argv
	// and env; a literal "$" is written "$$".
	scratchPlaceholder = "${COGUMI_SCRATCH}"
	// execExtraDir is where, inside the job's scratch directory,
	// directories that lie outside the client's are staged.
	execExtraDir = ".cogumi-exec"
	// maxSpecSize bounds a spec read from the bucket.
	maxSpecSize = 64 << 20
	// execTransfers is how many blobs one side moves at once.
	execTransfers = 8
	// execKillGrace is how long the command has between SIGTERM and
	// SIGKILL when the job is cancelled. Slurm's KillWait (30 s by
	// default) must leave time after it to upload the resume directory.
	execKillGrace = 10 * time.Second
	// execFinishTimeout bounds the uploads of a cancelled job.
	execFinishTimeout = 20 * time.Second
	// execFetchAfterCancel bounds what the client still fetches (the
	// resume directory) after Ctrl-C.
	execFetchAfterCancel = 2 * time.Minute
)

// execSpec is what a job needs to run one action: a spec blob.
type execSpec struct {
	Version int    `json:"version"`
	Token   string `json:"token"` // random: no two runs share a spec or a result
	Label   string `json:"label"`
	// Argv and Env ("NAME=value") have the scratch directory written as
	// scratchPlaceholder and "$" as "$$" (see encodeScratch).
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// WorkDir, OutDir and ResumeDir are relative to the scratch directory.
	WorkDir   string `json:"work_dir"`
	OutDir    string `json:"out_dir"`
	ResumeDir string `json:"resume_dir,omitempty"`
	// Dirs are every directory to make, parents first; Files the inputs,
	// paths relative to the scratch directory.
	Dirs  []string          `json:"dirs"`
	Files []cache.FileEntry `json:"files"`
}

// execResultKey is where the job records its result: not an action key
// but a name only the holder of the spec can derive.
func execResultKey(spec cache.Digest) cache.ActionKey {
	return cache.KeyFromRecords([]string{"cogumi exec-action result v1", spec.String()})
}

// Records of an exec-action result, besides "dir PATH" for each directory
// of the outputs.
const (
	execStatusOK  = "status ok"
	execStatusErr = "status failed: "
	execResumeOK  = "resume saved"
)

// encodeScratch writes s for a spec: each occurrence of the scratch path
// that is a whole path component becomes scratchPlaceholder, and every
// other "$" becomes "$$", so that decoding is unambiguous.
func encodeScratch(s, scratch string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if scratch != "" && strings.HasPrefix(s[i:], scratch) && componentEnds(s, i+len(scratch)) {
			b.WriteString(scratchPlaceholder)
			i += len(scratch)
			continue
		}
		if s[i] == '$' {
			b.WriteByte('$')
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// componentEnds reports whether a path that ends before s[j] is not the
// beginning of a longer file name.
func componentEnds(s string, j int) bool {
	if j == len(s) {
		return true
	}
	c := s[j]
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '~' || c >= 0x80)
}

// decodeScratch undoes encodeScratch with the job's scratch directory.
func decodeScratch(s, scratch string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] != '$':
			b.WriteByte(s[i])
			i++
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(s[i:], scratchPlaceholder):
			b.WriteString(scratch)
			i += len(scratchPlaceholder)
		default:
			return "", fmt.Errorf("%q: a lone '$' at byte %d (want $$ or %s)", truncateText(s, 80), i, scratchPlaceholder)
		}
	}
	return b.String(), nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// validRel checks a directory path of a spec: relative, clean, '/'-separated,
// inside the scratch directory.
func validRel(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("empty path")
	case path.Clean(p) != p || !filepath.IsLocal(p):
		return fmt.Errorf("path %q is not a clean relative path", p)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q holds a backslash or NUL", p)
	}
	return nil
}

// validate checks a spec read from the bucket before anything is done with
// it.
func (s *execSpec) validate() error {
	if s.Version != execSpecVersion {
		return fmt.Errorf("spec version %d; this cogumi reads version %d (use the same cogumi on the cluster as on the machine that submits)", s.Version, execSpecVersion)
	}
	if len(s.Argv) == 0 {
		return fmt.Errorf("no command")
	}
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("environment entry %q is not NAME=value", truncateText(e, 80))
		}
	}
	for what, p := range map[string]string{"work_dir": s.WorkDir, "out_dir": s.OutDir} {
		if err := validRel(p); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if s.ResumeDir != "" {
		if err := validRel(s.ResumeDir); err != nil {
			return fmt.Errorf("resume_dir: %w", err)
		}
	}
	for _, d := range s.Dirs {
		if err := validRel(d); err != nil {
			return fmt.Errorf("dirs: %w", err)
		}
	}
	if err := (cache.Manifest{Files: s.Files}).Validate(); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	return nil
}

// within reports whether p is root or lies under it (lexically).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// localFile is a file of the client's scratch directory (or of a directory
// staged from outside it) and its path in the spec.
type localFile struct {
	rel  string // path in the spec, '/'-separated
	abs  string // where it is here (maybe a symlink)
	exec bool
}

// specLayout is what the client sends for one action, before hashing.
type specLayout struct {
	spec   *execSpec
	files  []localFile
	resume string // this machine's COGUMI_RESUME_DIR, when staged
}

// buildSpec describes the scratch directory of an action (dir is its
// working directory, scratch/ws) for a job: every file and directory under
// scratch except the engine's log, the directories of PYTHONPATH and
// COGUMI_RESUME_DIR that lie outside it, and argv and env rewritten to
// name them inside the job's scratch directory. CUDA_VISIBLE_DEVICES is
// left out: Slurm assigns the devices.
func buildSpec(dir string, argv, env []string) (*specLayout, error) {
	scratch := filepath.Dir(dir)
	work, err := filepath.Rel(scratch, dir)
	if err != nil {
		return nil, err
	}
	l := &specLayout{spec: &execSpec{Version: execSpecVersion, WorkDir: filepath.ToSlash(work), OutDir: "out"}}
	extra := map[string]string{} // directory here -> its path in the spec
	var extraOrder []string
	stage := func(local, rel string) string {
		if r, ok := extra[local]; ok {
			return r
		}
		extra[local] = rel
		extraOrder = append(extraOrder, local)
		return rel
	}
	var outEnv []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "CUDA_VISIBLE_DEVICES":
			continue
		case "PYTHONPATH":
			parts := strings.Split(v, ":")
			for i, p := range parts {
				if !filepath.IsAbs(p) || within(scratch, p) {
					continue
				}
				if info, err := os.Stat(p); err != nil || !info.IsDir() {
					continue
				}
				rel := stage(filepath.Clean(p), fmt.Sprintf("%s/pythonpath/%d", execExtraDir, len(extraOrder)))
				parts[i] = filepath.Join(scratch, filepath.FromSlash(rel))
			}
			v = strings.Join(parts, ":")
		case "COGUMI_RESUME_DIR":
			if filepath.IsAbs(v) && !within(scratch, v) {
				l.resume = filepath.Clean(v)
				v = filepath.Join(scratch, filepath.FromSlash(stage(l.resume, execExtraDir+"/resume")))
			}
			if within(scratch, v) {
				rel, _ := filepath.Rel(scratch, v)
				l.spec.ResumeDir = filepath.ToSlash(rel)
			}
		}
		outEnv = append(outEnv, encodeScratch(k+"="+v, scratch))
	}
	l.spec.Env = outEnv
	for _, a := range argv {
		l.spec.Argv = append(l.spec.Argv, encodeScratch(a, scratch))
	}
	dirs := map[string]bool{}
	// The engine writes the action's output to scratch/log as it runs
	// (engine/run.go): it is no input.
	skip := map[string]bool{filepath.Join(scratch, "log"): true}
	if err := walkFollow(scratch, "", skip, &l.files, dirs, map[fileID]bool{}); err != nil {
		return nil, err
	}
	for _, local := range extraOrder {
		rel := extra[local]
		for p := rel; p != "."; p = path.Dir(p) {
			dirs[p] = true
		}
		if _, err := os.Stat(local); errors.Is(err, fs.ErrNotExist) {
			continue // an empty resume directory, made by the job
		}
		if err := walkFollow(local, rel, nil, &l.files, dirs, map[fileID]bool{}); err != nil {
			return nil, err
		}
	}
	dirs[l.spec.OutDir] = true
	for d := range dirs {
		l.spec.Dirs = append(l.spec.Dirs, d)
	}
	sort.Strings(l.spec.Dirs) // a parent sorts before its children
	sort.Slice(l.files, func(i, j int) bool { return l.files[i].rel < l.files[j].rel })
	return l, nil
}

// fileID identifies a directory, to stop at symlink loops.
type fileID struct{ dev, ino uint64 }

// walkFollow lists the regular files and directories under abs (whose path
// in the spec is rel, "" for the root), following symlinks.
func walkFollow(abs, rel string, skip map[string]bool, files *[]localFile, dirs map[string]bool, onPath map[fileID]bool) error {
	info, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("reading the action's inputs: %w", err)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id := fileID{uint64(st.Dev), st.Ino}
		if onPath[id] {
			return fmt.Errorf("reading the action's inputs: %s: a symlink loop", abs)
		}
		onPath[id] = true
		defer delete(onPath, id)
	}
	if rel != "" {
		dirs[rel] = true
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("reading the action's inputs: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(abs, e.Name())
		if skip[p] {
			continue
		}
		r := e.Name()
		if rel != "" {
			r = rel + "/" + e.Name()
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil {
			return fmt.Errorf("reading the action's inputs: %w", err)
		}
		switch {
		case info.IsDir():
			if err := walkFollow(p, r, skip, files, dirs, onPath); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			*files = append(*files, localFile{rel: r, abs: p, exec: info.Mode()&0o111 != 0})
		default:
			return fmt.Errorf("reading the action's inputs: %s is a %s, not a regular file", p, info.Mode().Type())
		}
	}
	return nil
}

// parallel calls fn(i) for i in [0, n) on up to execTransfers goroutines
// and returns the errors joined; it stops starting new calls after the
// first error.
func parallel(n int, fn func(i int) error) error {
	var (
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
	)
	for range min(n, execTransfers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					failed.Store(true)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// uploadFiles hashes files and uploads the blobs the bucket lacks (each
// digest once). It returns their manifest entries, sorted as files are.
func uploadFiles(ctx context.Context, st *s3.Store, files []localFile) ([]cache.FileEntry, error) {
	entries := make([]cache.FileEntry, len(files))
	var mu sync.Mutex
	claimed := make(map[cache.Digest]bool)
	err := parallel(len(files), func(i int) error {
		f := files[i]
		d, n, err := cache.DigestFile(f.abs)
		if err != nil {
			return err
		}
		entries[i] = cache.FileEntry{Path: f.rel, Digest: d, Size: n, Executable: f.exec}
		mu.Lock()
		first := !claimed[d]
		claimed[d] = true
		mu.Unlock()
		if first {
			if err := st.PutFile(ctx, d, n, f.abs); err != nil {
				return fmt.Errorf("uploading %s: %w", f.rel, err)
			}
		}
		return nil
	})
	return entries, err
}

// cacheTransit is how a Slurm executor without shared_dir moves files: the
// S3 remote cache, and how its jobs find it.
type cacheTransit struct {
	store *s3.Store
	// url, endpoint and region go on the job's command line (never a
	// credential: the job takes those from the standard AWS sources).
	url, endpoint, region string
}

// slurmTransit returns the remote cache through which the jobs of executor
// name exchange files, or nil when they use the file system: shared_dir is
// set, or there is no writable remote cache.
func (g *globals) slurmTransit(name string, s *hcl.SlurmSettings, w *workspace, cfg *engine.Config) *cacheTransit {
	if s.SharedDir != "" || cfg.Remote == nil {
		return nil
	}
	r, ok := cfg.Remote.(*s3Remote)
	if !ok {
		return nil
	}
	if !r.s.CanUpload() {
		for _, t := range w.ws.Targets {
			if t.Executor == name {
				fmt.Fprintf(g.stderr, "cogumi: warning: executor %q has no shared_dir and the remote cache %s is read-only, so its jobs cannot get their files through it: they use this machine's scratch directories, which only works where the nodes share its file system\n", name, r)
				break
			}
		}
		return nil
	}
	// The flags and the environment are read again; --remote-upload, the
	// only setting that needs the parsed flag set, is known to be true.
	rc := g.remoteSettings(pflag.NewFlagSet("exec-action", pflag.ContinueOnError), w)
	if rc == nil {
		return nil
	}
	return &cacheTransit{store: r.s, url: rc.URL, endpoint: rc.Endpoint, region: rc.Region}
}

// execThroughCache runs an action as a Slurm job that gets its files
// through the remote cache (see the top of this file).
func (x *slurmExecutor) execThroughCache(ctx context.Context, t *target.Target, dir string, argv, env []string, log io.Writer) error {
	tr := x.transit
	name := t.Label.String()
	scratch := filepath.Dir(dir)
	l, err := buildSpec(dir, argv, env)
	if err != nil {
		return err
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return fmt.Errorf("making a job token: %w", err)
	}
	spec := l.spec
	spec.Token, spec.Label = hex.EncodeToString(tok[:]), name
	if spec.Files, err = uploadFiles(ctx, tr.store, l.files); err != nil {
		return fmt.Errorf("sending the inputs through the remote cache %s: %w", tr.store, err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding the job's spec: %w", err)
	}
	specDigest := cache.DigestBytes(data)
	if err := tr.store.PutBlobContext(ctx, specDigest, int64(len(data)), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("sending the job's spec through the remote cache %s: %w", tr.store, err)
	}
	var total int64
	for _, f := range spec.Files {
		total += f.Size
	}
	fmt.Fprintf(log, "cogumi: slurm: %d input files (%s) and spec %s in %s\n", len(spec.Files), units.FormatBytes(total), specDigest.Short(), tr.store)
	key := execResultKey(specDigest)
	defer func() {
		// The result was only a message to this process.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = tr.store.DeleteAction(dctx, key)
	}()

	// The job writes its log where every node can: /tmp, under a name of
	// this run's (job ids of two clusters may be equal). On a single node,
	// or where /tmp is shared, it is followed live; otherwise the log
	// comes with the result.
	seen := &countingWriter{w: log}
	res, jobErr := x.submitJob(ctx, slurm.Job{
		Name: name, Script: tr.script(specDigest), WorkDir: "/tmp", Resources: slurm.Resources(t.Resources),
		LogPath: fmt.Sprintf("/tmp/cogumi-%d-%s-%%j.log", os.Getuid(), spec.Token[:12]), Log: seen,
	})
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(log, "cogumi: slurm: %s\n", w)
		}
		if res.LogPath != "" {
			_ = os.Remove(res.LogPath) // its content is in the action's log
		}
	}
	fctx := ctx
	if ctx.Err() != nil {
		// Cancelled: the resume directory is still worth a short wait.
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), execFetchAfterCancel)
		defer cancel()
	}
	result, err := tr.store.GetActionContext(fctx, key)
	var corrupt *cache.CorruptError
	switch {
	case errors.As(err, &corrupt) && jobErr == nil:
		return fmt.Errorf("reading the result of slurm job %s (%s): %w", res.JobID, name, err)
	case err != nil && jobErr != nil:
		if !errors.Is(err, cache.ErrNotFound) {
			fmt.Fprintf(log, "cogumi: slurm: reading the job's result: %v\n", err)
		}
		return jobErr
	case errors.Is(err, cache.ErrNotFound):
		return fmt.Errorf("slurm job %s (%s) completed but left no result in %s: did `cogumi exec-action` run? (see the job's log)", res.JobID, name, tr.store)
	case err != nil:
		return fmt.Errorf("reading the result of slurm job %s (%s): %w", res.JobID, name, err)
	}
	if seen.n.Load() == 0 && !result.Log.IsZero() {
		if err := copyBlob(fctx, tr.store, result.Log, log); err != nil {
			fmt.Fprintf(log, "cogumi: slurm: fetching the job's log: %v\n", err)
		}
	}
	if jobErr != nil {
		if l.resume != "" && hasRecord(result, execResumeOK) {
			if err := restoreResume(fctx, tr.store, result, spec.ResumeDir, l.resume); err != nil {
				fmt.Fprintf(log, "cogumi: slurm: restoring the resume directory: %v\n", err)
			}
		}
		return jobErr
	}
	if !hasRecord(result, execStatusOK) {
		return fmt.Errorf("slurm job %s (%s) completed, but its result says it failed (see the job's log)", res.JobID, name)
	}
	if err := fetchOutputs(ctx, tr.store, result, spec.OutDir, scratch); err != nil {
		return fmt.Errorf("fetching the outputs of slurm job %s (%s) from %s: %w", res.JobID, name, tr.store, err)
	}
	return nil
}

// script is the job's batch script: this cogumi binary where the node has
// it at the same path, else the cogumi on the job's PATH.
func (tr *cacheTransit) script(spec cache.Digest) string {
	args := []string{"exec-action", "--remote-cache", tr.url}
	if tr.endpoint != "" {
		args = append(args, "--remote-endpoint", tr.endpoint)
	}
	if tr.region != "" {
		args = append(args, "--remote-region", tr.region)
	}
	args = append(args, spec.String())
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	var b strings.Builder
	if exe, err := os.Executable(); err == nil {
		fmt.Fprintf(&b, "if [ -x %s ]; then exec %s %s; fi\n", shellQuote(exe), shellQuote(exe), strings.Join(q, " "))
	}
	fmt.Fprintf(&b, "exec cogumi %s\n", strings.Join(q, " "))
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (x *slurmExecutor) submitJob(ctx context.Context, job slurm.Job) (*slurm.Result, error) {
	if x.submit != nil {
		return x.submit(ctx, job)
	}
	return x.cfg.Submit(ctx, job)
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.w.Write(p)
}

func hasRecord(r *cache.ActionResult, rec string) bool {
	for _, x := range r.Records {
		if x == rec {
			return true
		}
	}
	return false
}

func copyBlob(ctx context.Context, st *s3.Store, d cache.Digest, w io.Writer) error {
	rc, err := st.ReadBlobContext(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// resultFiles returns the files of a result under dir ("out"), with paths
// relative to it, and fails on any file elsewhere.
func resultFiles(r *cache.ActionResult, dir string, also ...string) ([]cache.FileEntry, error) {
	var out []cache.FileEntry
	for _, f := range r.Outputs.Files {
		if rel, ok := strings.CutPrefix(f.Path, dir+"/"); ok {
			f.Path = rel
			out = append(out, f)
			continue
		}
		other := false
		for _, a := range also {
			other = other || strings.HasPrefix(f.Path, a+"/")
		}
		if !other {
			return nil, fmt.Errorf("the result names %q, outside %s/", f.Path, dir)
		}
	}
	return out, nil
}

// fetchOutputs downloads the outputs a job recorded into scratch/outDir,
// with their directories and executable bits.
func fetchOutputs(ctx context.Context, st *s3.Store, r *cache.ActionResult, outDir, scratch string) error {
	for _, rec := range r.Records {
		d, ok := strings.CutPrefix(rec, "dir ")
		if !ok {
			continue
		}
		if err := validRel(d); err != nil || d != outDir && !strings.HasPrefix(d, outDir+"/") {
			return fmt.Errorf("the result names directory %q, outside %s/", d, outDir)
		}
		if err := os.MkdirAll(filepath.Join(scratch, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	files, err := resultFiles(r, outDir)
	if err != nil {
		return err
	}
	return downloadFiles(ctx, st, files, filepath.Join(scratch, filepath.FromSlash(outDir)), 0o644)
}

// downloadFiles fetches files (verified) under dir, with mode perm plus
// the executable bits they record.
func downloadFiles(ctx context.Context, st *s3.Store, files []cache.FileEntry, dir string, perm os.FileMode) error {
	return parallel(len(files), func(i int) error {
		f := files[i]
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := st.GetFile(ctx, f.Digest, f.Size, dst); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		mode := perm
		if f.Executable {
			mode |= (perm & 0o444) >> 2
		}
		return os.Chmod(dst, mode)
	})
}

// restoreResume replaces this machine's resume directory with what the
// failed job left in its own.
func restoreResume(ctx context.Context, st *s3.Store, r *cache.ActionResult, specDir, local string) error {
	files, err := resultFiles(r, specDir, "out")
	if err != nil {
		return err
	}
	if err := os.RemoveAll(local); err != nil {
		return err
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	return downloadFiles(ctx, st, files, local, 0o644)
}

// newExecActionCmd is the command a Slurm job runs when its files travel
// through the remote cache.
func newExecActionCmd(g *globals) *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "exec-action --remote-cache s3://BUCKET/PREFIX [--remote-endpoint URL] SPEC",
		Short: "Run one action whose files are in the remote cache (run by Slurm jobs)",
		Long: `exec-action is what a Slurm job runs for an executor without shared_dir when
a remote cache is configured; people do not need to run it.

SPEC is the digest of a blob in the remote cache that describes the action:
its command, environment and input files. exec-action downloads the inputs
(verified against their digests) into a fresh directory under $TMPDIR, runs
the command there, uploads the outputs (after a failure: the resume
directory) and the command's output, and records what it did for the
cogumi that submitted the job. It exits with the command's status.

Credentials come from the standard AWS sources, as for every remote cache
access (the job inherits them from the submitting environment by default).`,
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := cache.ParseDigest(args[0])
			if err != nil {
				return &exitError{code: exitConfig, err: fmt.Errorf("spec %q: %w", args[0], err)}
			}
			url := g.remote.url
			if url == "" {
				url = os.Getenv("COGUMI_REMOTE_CACHE")
			}
			if url == "" {
				return &exitError{code: exitConfig, err: fmt.Errorf("exec-action needs --remote-cache s3://bucket/prefix")}
			}
			st, err := s3.Open(cmd.Context(), s3.Config{URL: url, Endpoint: g.remote.endpoint, Region: region, Upload: true})
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			return execAction(cmd.Context(), st, spec, g.stdout)
		},
	}
	cmd.Flags().StringVar(&region, "remote-region", "", "the remote cache's `REGION`")
	return cmd
}

// execAction runs the action of spec and records what it did (see the top
// of this file); whatever fails after the spec's digest is known is
// recorded too, with the log, for a client that cannot see the job's
// output. The command's output goes to stdout and to the log. When the
// command fails, the error is an *exitError with its exit status.
func execAction(ctx context.Context, st *s3.Store, specDigest cache.Digest, stdout io.Writer) error {
	base, err := os.MkdirTemp("", "cogumi-exec-")
	if err != nil && os.TempDir() != "/tmp" {
		base, err = os.MkdirTemp("/tmp", "cogumi-exec-")
	}
	if err != nil {
		return fmt.Errorf("creating a scratch directory: %w", err)
	}
	defer os.RemoveAll(base)
	logPath := filepath.Join(base, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating the log: %w", err)
	}
	defer logf.Close()
	host, _ := os.Hostname()
	started := time.Now()
	res := &cache.ActionResult{Key: execResultKey(specDigest), Host: host, Started: started.UTC()}

	root := filepath.Join(base, "s")
	spec, runErr := readSpec(ctx, st, specDigest)
	if runErr == nil {
		res.Label = spec.Label
		if err := layOut(ctx, st, spec, root); err != nil {
			runErr = fmt.Errorf("fetching the inputs from %s: %w", st, err)
		}
	}
	ran := runErr == nil
	if ran {
		runErr = runSpec(ctx, spec, root, filepath.Join(base, "tmp"), io.MultiWriter(stdout, logf))
	}
	res.Seconds = time.Since(started).Seconds()

	// What the command did is recorded even when the job is being
	// cancelled (the command may well have died of Slurm's SIGTERM before
	// this process saw its own), within execFinishTimeout of the signal.
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(execFinishTimeout, cancel) })
	defer stop()
	if runErr == nil {
		if res.Outputs.Files, err = uploadTree(uctx, st, root, spec.OutDir, res); err != nil {
			runErr = fmt.Errorf("storing the outputs in %s: %w", st, err)
		}
	}
	if runErr != nil {
		res.Outputs.Files = nil
		res.Records = []string{execStatusErr + runErr.Error()}
		// For a client that sees only the log; stderr (the job's log)
		// gets it from main.
		fmt.Fprintf(logf, "cogumi exec-action: %v\n", runErr)
		// Inputs that were not all laid out would only clobber the
		// client's resume directory.
		if ran && spec.ResumeDir != "" {
			files, err := uploadTree(uctx, st, root, spec.ResumeDir, nil)
			if err != nil {
				fmt.Fprintf(io.MultiWriter(stdout, logf), "cogumi exec-action: saving the resume directory: %v\n", err)
			} else {
				res.Outputs.Files = files
				res.Records = append(res.Records, execResumeOK)
			}
		}
	} else {
		res.Records = append([]string{execStatusOK}, res.Records...)
	}
	if err := logf.Close(); err != nil {
		return fmt.Errorf("writing the log: %w", err)
	}
	if d, n, err := cache.DigestFile(logPath); err == nil && n > 0 {
		if err := st.PutFile(uctx, d, n, logPath); err == nil {
			res.Log, res.LogSize = d, n
		}
	}
	if err := st.PutActionContext(uctx, res); err != nil {
		return errors.Join(runErr, fmt.Errorf("recording the result in %s: %w", st, err))
	}
	if runErr != nil {
		return &exitError{code: commandExitCode(runErr), err: runErr}
	}
	return nil
}

// readSpec fetches and checks a spec.
func readSpec(ctx context.Context, st *s3.Store, d cache.Digest) (*execSpec, error) {
	rc, err := st.ReadBlobContext(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("reading spec %s from %s: %w", d.Short(), st, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading spec %s from %s: %w", d.Short(), st, err)
	}
	if len(data) > maxSpecSize {
		return nil, fmt.Errorf("spec %s: more than %d bytes", d.Short(), maxSpecSize)
	}
	var spec execSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("spec %s: %w", d.Short(), err)
	}
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("spec %s: %w", d.Short(), err)
	}
	return &spec, nil
}

// layOut makes the spec's directories and downloads its files under root:
// inputs read-only, the resume directory's files writable.
func layOut(ctx context.Context, st *s3.Store, spec *execSpec, root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, d := range spec.Dirs {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	var inputs, resume []cache.FileEntry
	for _, f := range spec.Files {
		if spec.ResumeDir != "" && strings.HasPrefix(f.Path, spec.ResumeDir+"/") {
			resume = append(resume, f)
		} else {
			inputs = append(inputs, f)
		}
	}
	if err := downloadFiles(ctx, st, inputs, root, 0o444); err != nil {
		return err
	}
	return downloadFiles(ctx, st, resume, root, 0o644)
}

// execPassEnv are the variables of the job's own environment that the
// command sees besides the spec's: what Slurm says about the allocation.
var execPassEnv = []string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"}

// runSpec runs the spec's command in root, in a process group of its own
// that gets SIGTERM, then SIGKILL, when ctx is cancelled.
func runSpec(ctx context.Context, spec *execSpec, root, tmp string, w io.Writer) error {
	argv := make([]string, len(spec.Argv))
	for i, a := range spec.Argv {
		var err error
		if argv[i], err = decodeScratch(a, root); err != nil {
			return fmt.Errorf("argument %d: %w", i, err)
		}
	}
	var env []string
	for _, e := range spec.Env {
		v, err := decodeScratch(e, root)
		if err != nil {
			return fmt.Errorf("environment: %w", err)
		}
		env = append(env, v)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SLURM_") || contains(execPassEnv, k) {
			env = append(env, kv)
		}
	}
	// The submitting machine's TMPDIR may not exist here.
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	env = append(env, "TMPDIR="+tmp)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(root, filepath.FromSlash(spec.WorkDir))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(execKillGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &commandError{code: 128 + int(ws.Signal()), msg: fmt.Sprintf("command killed by signal %s", ws.Signal())}
		}
		return &commandError{code: ee.ExitCode(), msg: fmt.Sprintf("command exited with status %d", ee.ExitCode())}
	}
	return err
}

// commandError is how the command ended; its code becomes exec-action's.
type commandError struct {
	code int
	msg  string
}

func (e *commandError) Error() string { return e.msg }

func commandExitCode(err error) int {
	var ce *commandError
	if errors.As(err, &ce) && ce.code > 0 && ce.code < 256 {
		return ce.code
	}
	return exitFailed
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// uploadTree uploads the files under root/dir and returns their entries
// with paths relative to root. A symlink is stored as the file it leads
// to, which must lie under root/dir. With res, the directories are
// recorded in it ("dir PATH"), so that empty ones are made too.
func uploadTree(ctx context.Context, st *s3.Store, root, dir string, res *cache.ActionResult) ([]cache.FileEntry, error) {
	top := filepath.Join(root, filepath.FromSlash(dir))
	var files []localFile
	err := filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case e.IsDir():
			if res != nil {
				res.Records = append(res.Records, "dir "+rel)
			}
			return nil
		case e.Type()&fs.ModeSymlink != 0:
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("%s is a broken symlink: %w", rel, err)
			}
			if !within(top, resolved) {
				dest, _ := os.Readlink(p)
				return fmt.Errorf("%s is a symlink to %s, outside %s: write a copy of the file instead", rel, dest, dir)
			}
		case !e.Type().IsRegular():
			return fmt.Errorf("%s is a %s, not a regular file", rel, e.Type())
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s leads to a %s: only files are stored", rel, info.Mode().Type())
		}
		files = append(files, localFile{rel: rel, abs: p, exec: info.Mode()&0o111 != 0})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	entries, err := uploadFiles(ctx, st, files)
	if err != nil {
		return nil, err
	}
	if err := (cache.Manifest{Files: entries}).Validate(); err != nil {
		return nil, err
	}
	return entries, nil
}
