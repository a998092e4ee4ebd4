package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	st, err := e.stage(ctx, ws, inputs, artOf, rs.ex != nil && rs.ex.ScratchRoot() != "")
	if err != nil {
		return nil, "", fmt.Errorf("staging inputs: %w", err)
	}
	logPath := filepath.Join(scratch, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	sink := newLogSink(logf, logPath)
	resume := e.resumeDir(t.Label)
	if err := os.MkdirAll(resume, 0o755); err != nil {
		return nil, "", fmt.Errorf("creating resume directory: %w", err)
	}
	var log io.Writer = sink
	if t.Resources.GPUs > 0 || rs.ex != nil || e.nodes[n].schema.Traits.LiveLog {
		// Long GPU and cluster jobs are followed live on the terminal.
		log = io.MultiWriter(sink, &lineWriter{label: t.Label.String(), obs: e.obs})
	}
	backend, err := e.pythonBackend(ctx, e.nodes[n].schema)
	if err != nil {
		return nil, "", err
	}
	a := &rules.Action{
		Target: t, Dir: ws, Out: out, Srcs: st.srcs, InputDirs: st.dirs, InputDigests: inputDigestsOf(inputs), Env: e.env, Log: log,
		ResumeDir: resume, Toolchains: e.cfg.Toolchains, PythonPath: e.cfg.PythonPath,
		PythonBackend: backend, VisibleDevices: gpu.VisibleDevices(rs.devs),
		Memo:       &memo{e: e, label: t.Label, kind: t.Kind},
		Provenance: e.provenance(e.nodes[n].schema, inputs, artOf, st),
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
			var readOnly []string
			if !e.cfg.NoMountNamespace {
				readOnly = st.readOnly()
			}
			return runLocal(ctx, ws, argv, env, log, readOnly)
		},
	}
	started := time.Now()
	runErr := rule.Execute(ctx, a)
	seconds := time.Since(started).Seconds()
	if err := e.verifyInputs(t.Label, st); err != nil {
		if runErr != nil {
			err = fmt.Errorf("%w (and the action failed: %v)", err, runErr)
		}
		runErr = err
	}
	if err := sink.Close(); err != nil && runErr == nil {
		runErr = err
	}
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
		return nil, sink.Tail(), runErr
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
	if err := e.cfg.Cache.PutAction(ctx, res); err != nil {
		return nil, "", fmt.Errorf("recording result: %w", err)
	}
	if _, err := e.link(t.Label, key, m, true); err != nil {
		return nil, "", err
	}
	if e.remote != nil && e.remote.upload {
		if err := e.remote.push(ctx, res); err != nil {
			e.markPending(key)
			if e.remote.usable() {
				e.obs.Warn(fmt.Sprintf("%s: uploading to the remote cache: %v", t.Label, err))
			}
		}
	}
	return newArtifact(m, nil).producedBy(key), "", nil
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
