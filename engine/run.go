package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/executor/gpu"
	"github.com/cogumi/cogumi/rules"
)

// logTailLines is how much of a failed action's output is shown.
const logTailLines = 20

// run executes one action in a fresh scratch directory and stores its
// outputs. Only a complete, successful result enters the cache.
// runSpec is one action to run.
type runSpec struct {
	n      int
	key    cache.ActionKey
	recs   []string
	inputs []inputDigest
	artOf  func(int) *artifact
	devs   []gpu.Device // the GPUs it holds on this machine
	ex     Executor     // nil: this machine
	stats  *json.RawMessage
}

func (e *Engine) run(ctx context.Context, rs runSpec) (*artifact, string, error) {
	n, key, recs, inputs, artOf := rs.n, rs.key, rs.recs, rs.inputs, rs.artOf
	t := e.nodes[n].t
	rule := e.nodes[n].rule
	root := e.scratchRoot()
	if rs.ex != nil && rs.ex.ScratchRoot() != "" {
		root = rs.ex.ScratchRoot()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, "", fmt.Errorf("creating scratch directory: %w", err)
	}
	scratch, err := os.MkdirTemp(root, fmt.Sprintf("pid%d-%s-", os.Getpid(), key.Short()))
	if err != nil {
		return nil, "", fmt.Errorf("creating scratch directory: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = cache.RemoveTree(scratch)
		}
	}()
	ws, out := filepath.Join(scratch, "ws"), filepath.Join(scratch, "out")
	for _, d := range []string{ws, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, "", err
		}
	}
	srcs, dirs, err := e.stage(ctx, ws, inputs, artOf)
	if err != nil {
		return nil, "", fmt.Errorf("staging inputs: %w", err)
	}
	logPath := filepath.Join(scratch, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	resume := e.resumeDir(t.Label)
	if err := os.MkdirAll(resume, 0o755); err != nil {
		return nil, "", fmt.Errorf("creating resume directory: %w", err)
	}
	var log io.Writer = logf
	live, _ := rule.(rules.LiveLogger)
	if t.Resources.GPUs > 0 || rs.ex != nil || (live != nil && live.LiveLog()) {
		// Long GPU and cluster jobs are followed live on the terminal.
		log = io.MultiWriter(logf, &lineWriter{label: t.Label.String(), obs: e.obs})
	}
	a := &rules.Action{
		Target: t, Dir: ws, Out: out, Srcs: srcs, InputDirs: dirs, Env: e.env, Log: log,
		ResumeDir: resume, Toolchains: e.cfg.Toolchains, PythonPath: e.cfg.PythonPath,
		VisibleDevices: gpu.VisibleDevices(rs.devs),
		Memo:           &memo{e: e, label: t.Label, kind: t.Kind},
		Stats: func(v any) {
			if b, err := json.Marshal(v); err == nil && rs.stats != nil {
				*rs.stats = b
			}
		},
		Exec: func(ctx context.Context, argv, env []string) error {
			env = append(append([]string(nil), e.env...), env...)
			if rs.ex != nil {
				return rs.ex.Exec(ctx, t, ws, argv, env, log)
			}
			return runLocal(ctx, ws, argv, env, log)
		},
	}
	started := time.Now()
	runErr := rule.Execute(ctx, a)
	seconds := time.Since(started).Seconds()
	logf.Close()
	if err := copyFileAtomic(logPath, e.state.logPath(t.Label)); err != nil {
		e.obs.Warn(fmt.Sprintf("%s: keeping its log: %v", t.Label, err))
	}
	if runErr == nil {
		runErr = checkOutputs(out, rule.Outs(t))
	}
	if runErr != nil {
		if e.cfg.KeepFailed && ctx.Err() == nil {
			keep = true
			runErr = fmt.Errorf("%w (scratch directory kept at %s)", runErr, scratch)
		}
		return nil, tailOf(logPath), runErr
	}
	// Success: what a failed attempt left for resuming is no longer needed.
	_ = cache.RemoveTree(resume)
	m, err := e.cfg.Cache.AdoptTree(out)
	if err != nil {
		return nil, "", fmt.Errorf("storing outputs: %w", err)
	}
	logDigest, logSize, err := e.cfg.Cache.AdoptFile(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("storing log: %w", err)
	}
	host, _ := os.Hostname()
	res := &cache.ActionResult{
		Key: key, Label: t.Label.String(), Outputs: m, Records: recs,
		Log: logDigest, LogSize: logSize, Started: started.UTC(), Seconds: seconds, Host: host,
	}
	if err := e.cfg.Cache.PutAction(res); err != nil {
		return nil, "", fmt.Errorf("recording result: %w", err)
	}
	if err := e.link(t.Label, key, m, true); err != nil {
		return nil, "", err
	}
	if e.remote != nil && e.remote.upload {
		if err := e.remote.push(ctx, res); err != nil && e.remote.usable() {
			e.obs.Warn(fmt.Sprintf("%s: uploading to the remote cache: %v", t.Label, err))
		}
	}
	return newArtifact(m, nil), "", nil
}

// stage lays the inputs out in ws like the workspace: source files at their
// workspace paths (as links to the originals), a target's artifact under
// pkg/name/ (as links into the CAS). It returns $SRCS and the directory of
// each label-valued attribute.
func (e *Engine) stage(ctx context.Context, ws string, inputs []inputDigest, artOf func(int) *artifact) ([]string, map[string]string, error) {
	var srcs []string
	dirs := make(map[string]string)
	// The files each dependency must provide, across every label naming it.
	need := make(map[label.Label]map[string]cache.FileEntry)
	var depOrder []label.Label
	for _, in := range inputs {
		if in.in.IsFile() {
			dst := filepath.Join(ws, filepath.FromSlash(in.in.File))
			if err := symlinkFile(filepath.Join(e.cfg.Root, filepath.FromSlash(in.in.File)), dst); err != nil {
				return nil, nil, err
			}
			srcs = append(srcs, in.in.File)
			continue
		}
		dep := in.in.Label.Target()
		m, err := artOf(e.index[dep]).sub(in.in.Label)
		if err != nil {
			return nil, nil, err
		}
		if need[dep] == nil {
			need[dep] = make(map[string]cache.FileEntry)
			depOrder = append(depOrder, dep)
		}
		base := filepath.ToSlash(artifactDir(dep))
		for _, f := range m.Files {
			if strings.ContainsAny(f.Path, " \t\n") {
				return nil, nil, fmt.Errorf("%s: file %q of %s has white space in its path, which $SRCS cannot hold", in.in.Pos, f.Path, dep)
			}
			need[dep][f.Path] = f
			srcs = append(srcs, base+"/"+f.Path)
		}
		name := in.in.Attr
		if in.in.Key != "" {
			name += "." + in.in.Key
		}
		if _, ok := dirs[name]; !ok {
			dirs[name] = filepath.Join(ws, artifactDir(dep), filepath.FromSlash(in.in.Label.Sub))
		}
	}
	for _, dep := range depOrder {
		if err := e.stageArtifact(ctx, ws, dep, need[dep], artOf(e.index[dep])); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dep, err)
		}
	}
	return srcs, dirs, nil
}

// stageArtifact lays out the files of dep that an action needs: files held
// in the CAS as links into it (fetched from the remote cache first when
// they live only there), source files as links to where they lie.
func (e *Engine) stageArtifact(ctx context.Context, ws string, dep label.Label, files map[string]cache.FileEntry, art *artifact) error {
	dir := filepath.Join(ws, artifactDir(dep))
	var m cache.Manifest
	var sources []string
	for p, f := range files {
		if _, ok := art.sources[p]; ok {
			sources = append(sources, p)
			continue
		}
		m.Files = append(m.Files, f)
	}
	if len(m.Files) > 0 {
		sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
		if err := e.fetch(ctx, m); err != nil {
			return err
		}
		if err := e.cfg.Cache.Materialize(m, dir); err != nil {
			return err
		}
	}
	for _, p := range sources {
		if err := symlinkFile(art.sources[p], filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return err
		}
	}
	return nil
}

func symlinkFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Symlink(src, dst)
}

// checkOutputs fails when a declared output is missing and removes what
// was not declared. With no declared outputs, everything is kept.
func checkOutputs(out string, outs []string) error {
	if outs == nil {
		return nil
	}
	var missing []string
	declared := make(map[string]bool, len(outs))
	for _, o := range outs {
		declared[o] = true
		if _, err := os.Lstat(filepath.Join(out, filepath.FromSlash(o))); err != nil {
			missing = append(missing, o)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("declared output %s was not created", quoteList(missing))
	}
	return filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		if declared[rel] {
			return filepath.SkipDir // a declared directory is kept whole
		}
		if d.IsDir() && hasDeclaredBelow(rel, outs) {
			return nil
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
}

func hasDeclaredBelow(dir string, outs []string) bool {
	for _, o := range outs {
		if strings.HasPrefix(o, dir+"/") {
			return true
		}
	}
	return false
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// tailOf returns the last lines of a log file.
func tailOf(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// resumeDir is the per-target directory that survives failed attempts
// (COGUMI_RESUME_DIR). It is not part of the key.
func (e *Engine) resumeDir(l label.Label) string {
	return filepath.Join(e.state.dir, "resume", filepath.FromSlash(l.Pkg), l.Name)
}

// lineWriter passes an action's output to the observer line by line.
type lineWriter struct {
	label string
	obs   Observer
	buf   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.obs.Output(w.label, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a very long line without a newline
		w.obs.Output(w.label, string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
