package remoteexec

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
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/slurm"
	"github.com/cogumi/cogumi/internal/units"
)

// localFile is a file of the client's scratch directory (or of a directory
// staged from outside it) and its path in the spec.
type localFile struct {
	rel  string // path in the spec, '/'-separated
	abs  string // where it is here (maybe a symlink)
	exec bool
}

// specLayout is what the client sends for one action, before hashing.
type specLayout struct {
	spec   *Spec
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
	l := &specLayout{spec: &Spec{Version: SpecVersion, WorkDir: filepath.ToSlash(work), OutDir: "out"}}
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
				rel := stage(filepath.Clean(p), fmt.Sprintf("%s/pythonpath/%d", extraDir, len(extraOrder)))
				parts[i] = filepath.Join(scratch, filepath.FromSlash(rel))
			}
			v = strings.Join(parts, ":")
		case "COGUMI_RESUME_DIR":
			if filepath.IsAbs(v) && !within(scratch, v) {
				l.resume = filepath.Clean(v)
				v = filepath.Join(scratch, filepath.FromSlash(stage(l.resume, extraDir+"/resume")))
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

// parallel calls fn(i) for i in [0, n) on up to transfers goroutines
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
	for range min(n, transfers) {
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

// Transit is how a Slurm executor without shared_dir moves files: the S3
// remote cache, and how its jobs find it.
type Transit struct {
	Store *s3.Store
	// URL, Endpoint and Region go on the job's command line (never a
	// credential: the job takes those from the standard AWS sources).
	URL, Endpoint, Region string
}

// Submit runs a job on the cluster and follows it to its end.
type Submit func(ctx context.Context, job slurm.Job) (*slurm.Result, error)

// Exec runs an action as a Slurm job, submitted by submit, that gets its
// files through the remote cache (see the package documentation).
func (tr *Transit) Exec(ctx context.Context, t *target.Target, dir string, argv, env []string, log io.Writer, submit Submit) error {
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
	if spec.Files, err = uploadFiles(ctx, tr.Store, l.files); err != nil {
		return fmt.Errorf("sending the inputs through the remote cache %s: %w", tr.Store, err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding the job's spec: %w", err)
	}
	specDigest := cache.DigestBytes(data)
	if err := tr.Store.PutBlob(ctx, specDigest, int64(len(data)), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("sending the job's spec through the remote cache %s: %w", tr.Store, err)
	}
	var total int64
	for _, f := range spec.Files {
		total += f.Size
	}
	fmt.Fprintf(log, "cogumi: slurm: %d input files (%s) and spec %s in %s\n", len(spec.Files), units.FormatBytes(total), specDigest.Short(), tr.Store)
	key := ResultKey(specDigest)
	defer func() {
		// The result was only a message to this process.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = tr.Store.DeleteAction(dctx, key)
	}()

	// The job writes its log where every node can: /tmp, under a name of
	// this run's (job ids of two clusters may be equal). On a single node,
	// or where /tmp is shared, it is followed live; otherwise the log
	// comes with the result.
	seen := &countingWriter{w: log}
	res, jobErr := submit(ctx, slurm.Job{
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
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), fetchAfterCancel)
		defer cancel()
	}
	result, err := tr.Store.GetAction(fctx, key)
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
		return fmt.Errorf("slurm job %s (%s) completed but left no result in %s: did `cogumi exec-action` run? (see the job's log)", res.JobID, name, tr.Store)
	case err != nil:
		return fmt.Errorf("reading the result of slurm job %s (%s): %w", res.JobID, name, err)
	}
	if seen.n.Load() == 0 && !result.Log.IsZero() {
		if err := copyBlob(fctx, tr.Store, result.Log, log); err != nil {
			fmt.Fprintf(log, "cogumi: slurm: fetching the job's log: %v\n", err)
		}
	}
	if jobErr != nil {
		if l.resume != "" && hasRecord(result, resumeOK) {
			if err := restoreResume(fctx, tr.Store, result, spec.ResumeDir, l.resume); err != nil {
				fmt.Fprintf(log, "cogumi: slurm: restoring the resume directory: %v\n", err)
			}
		}
		return jobErr
	}
	if !hasRecord(result, statusOK) {
		return fmt.Errorf("slurm job %s (%s) completed, but its result says it failed (see the job's log)", res.JobID, name)
	}
	if err := fetchOutputs(ctx, tr.Store, result, spec.OutDir, scratch); err != nil {
		return fmt.Errorf("fetching the outputs of slurm job %s (%s) from %s: %w", res.JobID, name, tr.Store, err)
	}
	return nil
}

// script is the job's batch script: this cogumi binary where the node has
// it at the same path, else the cogumi on the job's PATH.
func (tr *Transit) script(spec cache.Digest) string {
	args := []string{"exec-action", "--remote-cache", tr.URL}
	if tr.Endpoint != "" {
		args = append(args, "--remote-endpoint", tr.Endpoint)
	}
	if tr.Region != "" {
		args = append(args, "--remote-region", tr.Region)
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
	rc, err := st.ReadBlob(ctx, d)
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
