// Package slurm runs one shell script as a Slurm batch job and waits for
// it: the job runner under cogumi's Slurm executor. It needs only the
// Slurm client commands (sbatch, scontrol, scancel) and no slurmdbd: the
// final state comes from slurmctld, which keeps a finished job for
// MinJobAge (300 s by default), with sacct as a fallback.
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Config is an executor block's slurm settings.
type Config struct {
	Partition string
	Account   string
	ExtraArgs []string // appended last to sbatch's arguments ("--qos=high")
	// Constraints maps a gpu_memory value to a node feature: {"80GB":
	// "gpu80g"} adds --constraint=gpu80g to jobs that ask for 80GB.
	Constraints map[string]string
	// SharedDir is a directory that this machine and the compute nodes
	// both see. Logs go under it unless a job names its own LogPath.
	SharedDir string
	// Export is sbatch's --export ("NONE", "ALL,FOO"); empty leaves Slurm's
	// default, which passes the submitting environment to the job.
	Export string
	// ClientEnv is added to the environment of sbatch, scontrol and scancel
	// ("SLURM_CONF=/etc/slurm-test/slurm.conf").
	ClientEnv []string
	// PollInterval is the longest wait between two questions to
	// slurmctld (default 5 s); polls start at 250 ms and back off to it.
	PollInterval time.Duration
	// CancelWait bounds the wait for a cancelled job to end (default 2 min).
	CancelWait time.Duration
}

// Resources are an action's needs, field for field as target.Resources,
// so that one converts to the other.
type Resources struct {
	CPUs      float64       // rounded up to whole CPUs
	Memory    int64         // bytes; 0 for the partition's default
	GPUs      int           // --gres=gpu:N
	GPUType   string        // the GRES type: --gres=gpu:TYPE:N
	GPUMemory string        // "80GB": a node feature through Config.Constraints
	Time      time.Duration // --time; 0 for the partition's default
}

// Job is one batch job.
type Job struct {
	Name      string            // --job-name (a label, say)
	Script    string            // the shell script to run, not a path
	WorkDir   string            // --chdir; absolute, on the shared file system
	Env       map[string]string // exported by the batch script before Script runs
	Resources Resources
	// LogPath receives the job's stdout and stderr (--output); absolute and
	// visible from this machine; %j is the job id. Default:
	// SharedDir/logs/cogumi-%j.log.
	LogPath string
	// Log, if set, receives the job's log as it grows, like tail -f.
	Log io.Writer
	// Progress, if set, is called when the job's state or reason changes.
	Progress func(Status)
}

// Result is how a job ended.
type Result struct {
	Status
	LogPath  string   // with the job id filled in
	LogTail  string   // the last lines of the log, when the job did not succeed
	Warnings []string // needs Slurm was not told about (see Args)
}

// JobError is returned with the Result when a job does not complete with
// exit status 0.
type JobError struct {
	Name   string
	Result *Result
	Cause  error // context.Canceled when cogumi cancelled the job
}

func (e *JobError) Error() string {
	r := e.Result
	var b strings.Builder
	fmt.Fprintf(&b, "slurm job %s (%s) %s", r.JobID, e.Name, r.State)
	switch {
	case r.Signal != 0:
		fmt.Fprintf(&b, " by signal %d", r.Signal)
	case r.ExitCode != 0:
		fmt.Fprintf(&b, " with exit code %d", r.ExitCode)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, " (%s)", r.Reason)
	}
	if r.Node != "" {
		fmt.Fprintf(&b, " on %s", r.Node)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	if r.LogTail != "" {
		fmt.Fprintf(&b, "; last lines of %s:\n%s", r.LogPath, r.LogTail)
	}
	return b.String()
}

func (e *JobError) Unwrap() error { return e.Cause }

// Submit runs job through sbatch and waits for it to end, streaming its
// log to job.Log. It returns the Result and, unless the job completed
// with status 0, a *JobError holding it. Cancelling ctx cancels the job
// (scancel) and waits for it to end; the error then wraps ctx.Err().
// An error before the job was accepted comes with a nil Result.
func (cfg Config) Submit(ctx context.Context, job Job) (*Result, error) {
	args, warnings, err := Args(cfg, job)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("slurm job %s: not submitted: %w", job.Name, err)
	}
	// Slurm does not create the log's directory: without it the job fails
	// with no log at all. The directory is on the shared file system.
	if dir := filepath.Dir(logPath(cfg, job)); !strings.Contains(dir, "%") {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("slurm job %s: log directory: %w", job.Name, err)
		}
	}
	jobID, err := cfg.sbatch(ctx, job, args)
	if err != nil {
		return nil, err
	}
	res := &Result{Status: Status{JobID: jobID}, LogPath: resolveLog(logPath(cfg, job), jobID), Warnings: warnings}
	w := &waiter{cfg: cfg, job: job, res: res, log: &tailer{path: res.LogPath, w: job.Log}}
	cause := w.wait(ctx)
	w.log.poll() // what the job wrote last
	if cause == nil && res.Succeeded() {
		return res, nil
	}
	res.LogTail = tail(res.LogPath, tailLines)
	if cause != nil && res.State == "" {
		return res, fmt.Errorf("slurm job %s (%s): %w", jobID, job.Name, cause)
	}
	return res, &JobError{Name: job.Name, Result: res, Cause: cause}
}

// sbatch writes the batch script and submits it. sbatch reads the script
// at submission, so a local temporary file does.
func (cfg Config) sbatch(ctx context.Context, job Job, args []string) (string, error) {
	f, err := os.CreateTemp("", "cogumi-sbatch-*.sh")
	if err != nil {
		return "", fmt.Errorf("slurm job %s: writing the batch script: %w", job.Name, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(BatchScript(job)); err != nil {
		f.Close()
		return "", fmt.Errorf("slurm job %s: writing the batch script: %w", job.Name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("slurm job %s: writing the batch script: %w", job.Name, err)
	}
	// Killing sbatch half-way could leave a job we have no id for, so it
	// is not tied to ctx; Submit cancels the job right after if needed.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	out, err := cfg.run(sctx, "sbatch", append(args, f.Name())...)
	if err != nil {
		return "", fmt.Errorf("slurm job %s: %w", job.Name, err)
	}
	id, err := parseJobID(out)
	if err != nil {
		return "", fmt.Errorf("slurm job %s: %w", job.Name, err)
	}
	return id, nil
}

// run runs a Slurm client command and returns its stdout; a failure
// carries its stderr.
func (cfg Config) run(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if len(cfg.ClientEnv) > 0 {
		cmd.Env = append(os.Environ(), cfg.ClientEnv...)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s: not found on PATH (is this a Slurm login node?)", name)
		}
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
