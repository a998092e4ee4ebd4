package remoteexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
)

// RunJob runs the action of spec and records what it did (see the package
// documentation); whatever fails after the spec's digest is known is
// recorded too, with the log, for a client that cannot see the job's
// output. The command's output goes to stdout and to the log. When the
// command fails, the error is a *CommandError with its exit status.
func RunJob(ctx context.Context, st *s3.Store, specDigest cache.Digest, stdout io.Writer) error {
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
	res := &cache.ActionResult{Key: ResultKey(specDigest), Host: host, Started: started.UTC()}

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
	// this process saw its own), within finishTimeout of the signal.
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(finishTimeout, cancel) })
	defer stop()
	if runErr == nil {
		if res.Outputs.Files, err = uploadTree(uctx, st, root, spec.OutDir, res); err != nil {
			runErr = fmt.Errorf("storing the outputs in %s: %w", st, err)
		}
	}
	if runErr != nil {
		res.Outputs.Files = nil
		res.Records = []string{statusErr + runErr.Error()}
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
				res.Records = append(res.Records, resumeOK)
			}
		}
	} else {
		res.Records = append([]string{statusOK}, res.Records...)
	}
	if err := logf.Close(); err != nil {
		return fmt.Errorf("writing the log: %w", err)
	}
	if d, n, err := cache.DigestFile(logPath); err == nil && n > 0 {
		if err := st.PutFile(uctx, d, n, logPath); err == nil {
			res.Log, res.LogSize = d, n
		}
	}
	if err := st.PutAction(uctx, res); err != nil {
		return errors.Join(runErr, fmt.Errorf("recording the result in %s: %w", st, err))
	}
	if runErr != nil {
		return runErr
	}
	return nil
}

// readSpec fetches and checks a spec.
func readSpec(ctx context.Context, st *s3.Store, d cache.Digest) (*Spec, error) {
	rc, err := st.ReadBlob(ctx, d)
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
	var spec Spec
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
func layOut(ctx context.Context, st *s3.Store, spec *Spec, root string) error {
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

// passEnv are the variables of the job's own environment that the
// command sees besides the spec's: what Slurm says about the allocation.
var passEnv = []string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"}

// runSpec runs the spec's command in root, in a process group of its own
// that gets SIGTERM, then SIGKILL, when ctx is cancelled.
func runSpec(ctx context.Context, spec *Spec, root, tmp string, w io.Writer) error {
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
		if strings.HasPrefix(k, "SLURM_") || contains(passEnv, k) {
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
		case <-time.After(killGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &CommandError{Code: 128 + int(ws.Signal()), msg: fmt.Sprintf("command killed by signal %s", ws.Signal())}
		}
		return &CommandError{Code: ee.ExitCode(), msg: fmt.Sprintf("command exited with status %d", ee.ExitCode())}
	}
	return err
}

// CommandError is how the job's command ended: Code is its exit status
// (128 + the signal when it was killed), which exec-action exits with.
type CommandError struct {
	Code int
	msg  string
}

func (e *CommandError) Error() string { return e.msg }

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
