package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/gpu"
	"github.com/cogumi/cogumi/rules"
)

// process brings one target up to date: a source group is hashed, an
// action is looked up in the cache and run when missing. rewinds counts
// how often an input was found lost and its producer run again
// (processing a producer again for that is rewind's job, with lost set:
// the cached result is known to be unusable and only a local run helps).
func (e *Engine) process(ctx context.Context, n int, s *scheduler, rewinds int, lost bool) outcome {
	nd := e.nodes[n]
	t := nd.t
	if !s.depsOK(n) {
		return outcome{result: Skipped, err: errors.New("a dependency failed")}
	}
	if ctx.Err() != nil {
		return outcome{result: Skipped, err: ctx.Err()}
	}
	inputs, err := e.inputDigests(t, s.artifactOf)
	if err != nil {
		return outcome{result: Failed, err: err}
	}
	if nd.schema.Traits.Source {
		art, err := e.sourceArtifactOf(ctx, nd, inputs, s.artifactOf)
		if err != nil {
			return outcome{result: Failed, err: err}
		}
		return outcome{result: Source, art: art}
	}
	tools, err := e.toolchainRecords(ctx, nd.schema)
	if err != nil {
		return outcome{result: Failed, err: err}
	}
	tools = append(tools, e.provenanceRecords(nd.schema, inputs, s.artifactOf)...)
	recs, err := keyRecords(t, nd.rule, nd.schema, inputs, tools...)
	if err != nil {
		return outcome{result: Failed, err: err}
	}
	key := cache.KeyFromRecords(recs)
	o := outcome{key: key}
	rebuild := e.cfg.Rebuild[t.Label]
	if !rebuild && !lost {
		if o, ok := e.fromCache(ctx, t.Label, key, s.wanted[n], true); ok {
			return o
		}
	}
	o.reason = e.reason(ctx, t.Label, key, recs)
	if s.isStopped() {
		o.result, o.err = Skipped, errors.New("the build stopped after a failure")
		return o
	}
	ex, err := e.executorOf(t)
	if err != nil {
		o.result, o.err = Failed, err
		return o
	}
	nd0 := needOf(t.Resources)
	if nd.schema.Traits.AllCPUs && t.Resources.CPUs <= 0 {
		nd0.cpus = s.budget.cpus
	}
	gneed := gpu.Need{Count: t.Resources.GPUs, Type: t.Resources.GPUType, Memory: t.Resources.GPUMemory}
	if ex != nil {
		nd0 = need{} // the cluster's scheduler places it; here it only takes a job slot
		gneed.Count = 0
	}
	if err := s.budget.check(nd0); err != nil {
		o.result, o.err = Failed, err
		return o
	}
	if gneed.Count > 0 {
		if err := e.gpus.Check(gneed); err != nil {
			o.result, o.err = Failed, err
			return o
		}
	}
	// Inputs that only the remote cache held, or whose blobs went bad, are
	// made again by running their producers here (Bazel's action
	// rewinding), before this action takes its lock and its budget.
	if li := e.lostInput(ctx, inputs, s.artifactOf); li != nil {
		if rewinds >= maxRewinds {
			o.result, o.err = Failed, fmt.Errorf("input %w, again after running it %d times", li, rewinds)
			return o
		}
		if err := e.rewind(ctx, li, s); err != nil {
			o.result, o.err = Failed, err
			if ctx.Err() != nil {
				o.result = Skipped
			}
			return o
		}
		// The input may have come out with other bytes: start again from
		// its key.
		return e.process(ctx, n, s, rewinds+1, lost)
	}
	unlock, err := e.cfg.Cache.Lock(ctx, key, func() { e.obs.Waiting(t.Label.String()) })
	if err != nil {
		o.result, o.err = Skipped, err
		return o
	}
	defer unlock()
	if !rebuild {
		// Another process may have built it while we waited for the lock.
		if o, ok := e.fromCache(ctx, t.Label, key, s.wanted[n], !lost); ok {
			return o
		}
	}
	slot, err := s.budget.acquire(ctx, nd0)
	if err != nil {
		o.result, o.err = Skipped, err
		return o
	}
	defer s.budget.release(nd0, slot)
	var devs []gpu.Device
	if gneed.Count > 0 {
		if devs, err = e.gpus.Acquire(ctx, gneed); err != nil {
			o.result, o.err = Skipped, err
			return o
		}
		defer e.gpus.Release(devs)
	}
	e.obs.Started(t.Label.String(), o.reason)
	o.executor, o.slot, o.bytesIn = "local", slot, e.inputBytes(inputs, s.artifactOf)
	if ex != nil {
		o.executor = t.Executor
	}
	for _, d := range devs {
		o.gpus = append(o.gpus, d.UUID)
	}
	jctx, jobID := withJobNote(ctx)
	o.start = time.Now()
	art, tail, err := e.run(jctx, runSpec{n: n, key: key, recs: recs, inputs: inputs, artOf: s.artifactOf, devs: devs, ex: ex, stats: &o.stats})
	o.seconds = time.Since(o.start).Seconds()
	o.jobID = jobID()
	if err != nil {
		o.result, o.err, o.logTail = Failed, err, tail
		if ctx.Err() != nil {
			o.result = Skipped
		}
		return o
	}
	o.result, o.art = Built, art
	return o
}

// inputDigests computes what each input contributes to the key: a source
// file's digest (through the stat cache), or the tree digest of the part of
// a dependency's artifact that the label names.
func (e *Engine) inputDigests(t *target.Target, artOf func(int) *artifact) ([]inputDigest, error) {
	out := make([]inputDigest, len(t.Inputs))
	for i, in := range t.Inputs {
		out[i].in = in
		if in.IsFile() {
			d, _, err := e.stat.Digest(filepath.Join(e.cfg.Root, filepath.FromSlash(in.File)))
			if err != nil {
				return nil, fmt.Errorf("%s: source %s: %w", in.Pos, in.File, err)
			}
			out[i].digest = d
			continue
		}
		art := artOf(e.index[in.Label.Target()])
		if in.Label.Sub == "" {
			out[i].digest = art.tree
			continue
		}
		m, err := art.sub(in.Label)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.Pos, err)
		}
		out[i].digest = m.TreeDigest()
	}
	return out, nil
}

// sourceGroup builds a files target's artifact: its source files at their
// paths relative to the package, and the files of any label it lists.
func (e *Engine) sourceGroup(t *target.Target, inputs []inputDigest, artOf func(int) *artifact) (*artifact, error) {
	var files []sourceFile
	prefix := t.Label.Pkg + "/"
	if t.Label.Pkg == "" {
		prefix = ""
	}
	for _, in := range inputs {
		if in.in.IsFile() {
			abs := filepath.Join(e.cfg.Root, filepath.FromSlash(in.in.File))
			_, size, err := e.stat.Digest(abs)
			if err != nil {
				return nil, err
			}
			files = append(files, sourceFile{rel: strings.TrimPrefix(in.in.File, prefix), abs: abs,
				digest: in.digest, size: size, exec: isExecutable(abs)})
			continue
		}
		art := artOf(e.index[in.in.Label.Target()])
		m, err := art.sub(in.in.Label)
		if err != nil {
			return nil, err
		}
		for _, f := range m.Files {
			abs := art.sources[f.Path] // "": the file is in the CAS
			files = append(files, sourceFile{rel: f.Path, abs: abs, digest: f.Digest, size: f.Size, exec: f.Executable})
		}
	}
	return sourceArtifact(files)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

// fromCache looks key up in the local cache, then in the remote one, and
// delivers the outputs of a hit. A corrupt entry is reported and treated as
// a miss.
func (e *Engine) fromCache(ctx context.Context, l label.Label, key cache.ActionKey, wanted, remote bool) (outcome, bool) {
	res, result, ok := e.resolve(ctx, l, key, remote)
	if !ok {
		return outcome{}, false
	}
	inPlace, err := e.deliver(ctx, l, key, res, wanted)
	if err != nil {
		e.obs.Warn(fmt.Sprintf("%s: %v", l, err))
		if res.BlobsRemote || errors.Is(err, cache.ErrNotFound) {
			// Its blobs cannot be had, or one was corrupt and is gone:
			// forget the hit, so the action runs (and its upload repairs
			// the bucket).
			_ = e.cfg.Cache.DeleteAction(key)
		}
		return outcome{}, false
	}
	o := outcome{result: result, art: newArtifact(res.Outputs, nil).producedBy(key), key: key}
	if result == Remote && res.BlobsRemote && wanted {
		o.fetched = res.Outputs.TotalSize()
	}
	o.upToDate = inPlace && o.fetched == 0
	return o, true
}

// inputBytes is the size of an action's inputs.
func (e *Engine) inputBytes(inputs []inputDigest, artOf func(int) *artifact) int64 {
	var n int64
	for _, in := range inputs {
		if in.in.IsFile() {
			if fi, err := os.Stat(filepath.Join(e.cfg.Root, filepath.FromSlash(in.in.File))); err == nil {
				n += fi.Size()
			}
			continue
		}
		if m, err := artOf(e.index[in.in.Label.Target()]).sub(in.in.Label); err == nil {
			n += m.TotalSize()
		}
	}
	return n
}

// resolve finds the result of key: local cache first, then (with remote)
// the remote one.
func (e *Engine) resolve(ctx context.Context, l label.Label, key cache.ActionKey, remote bool) (*cache.ActionResult, Result, bool) {
	res, err := e.cfg.Cache.GetAction(ctx, key)
	if err == nil {
		return res, Cached, true
	}
	var ce *cache.CorruptError
	if errors.As(err, &ce) {
		e.obs.Warn(fmt.Sprintf("%s: ignoring corrupt cache entry %s: %v", l, key.Short(), err))
	}
	if !remote {
		return nil, "", false
	}
	if res, ok := e.remote.getAction(ctx, l.String(), key); ok {
		return res, Remote, true
	}
	return nil, "", false
}

// deliver makes a known result's outputs visible under cogumi-out when they
// are wanted or already local, and reports whether the last build had left
// them there intact (nothing was fetched or linked: the target was up to
// date). Outputs that live only in the remote cache and are not wanted
// stay there ("build without the bytes"), and a stale link from an earlier
// build is removed.
func (e *Engine) deliver(ctx context.Context, l label.Label, key cache.ActionKey, res *cache.ActionResult, wanted bool) (inPlace bool, err error) {
	if res.BlobsRemote && !wanted && !e.allLocal(ctx, res.Outputs) {
		return false, e.unlink(l, key)
	}
	if res.BlobsRemote {
		if err := e.fetch(ctx, res.Outputs); err != nil {
			return false, err
		}
	}
	return e.link(l, key, res.Outputs, false)
}

func (e *Engine) allLocal(ctx context.Context, m cache.Manifest) bool {
	for _, f := range m.Files {
		if !e.cfg.Cache.HasBlob(ctx, f.Digest, f.Size) {
			return false
		}
	}
	return true
}

// unlink removes cogumi-out/<pkg>/<name>, whose content would be stale.
func (e *Engine) unlink(l label.Label, key cache.ActionKey) error {
	dir := filepath.Join(e.outDir, artifactDir(l))
	if _, err := os.Lstat(dir); err == nil {
		if err := cache.RemoveTree(dir); err != nil {
			return fmt.Errorf("removing stale outputs %s: %w", dir, err)
		}
	}
	if last := e.state.get(l); last.Key != key || !last.Linked.IsZero() {
		e.state.set(l, lastBuild{Key: key})
	}
	return nil
}

// link makes cogumi-out/<pkg>/<name> hold the outputs of key, unless the
// last build already left them there intact (then it reports them in
// place). fresh (the action just ran) links them anew regardless. Before linking, every blob is checked
// (checkedBlob): a corrupt one is removed and the error makes the result a
// miss. A file of cogumi-out that was deleted, replaced or changed is
// noticed by stat alone (intact) and linked again; one changed in place
// shares its inode with the blob, so the blob fails its check and the
// action runs again.
func (e *Engine) link(l label.Label, key cache.ActionKey, m cache.Manifest, fresh bool) (inPlace bool, err error) {
	dir := filepath.Join(e.outDir, artifactDir(l))
	last := e.state.get(l)
	if last.Linked == key && !fresh && e.intact(dir, m) {
		if last.Key != key {
			e.state.set(l, lastBuild{Key: key, Linked: key})
		}
		return true, nil
	}
	if err := e.checkBlobs(m); err != nil {
		return false, err
	}
	if err := e.cfg.Cache.Materialize(m, dir); err != nil {
		return false, fmt.Errorf("linking outputs into %s: %w", dir, err)
	}
	// A new link changes the blob's ctime, not its content, which was
	// checked just above: remember it as intact, so that the next build
	// does not read it again. Where Materialize had to copy (cogumi-out on
	// another file system than the cache), the copy is remembered too.
	for _, f := range m.Files {
		blob := e.cfg.Cache.LinkPath(f)
		_ = e.stat.Remember(blob, f.Digest)
		out := filepath.Join(dir, filepath.FromSlash(f.Path))
		if bi, err := os.Stat(blob); err == nil {
			if oi, err := os.Stat(out); err == nil && !os.SameFile(bi, oi) {
				_ = e.stat.Remember(out, f.Digest)
			}
		}
	}
	e.state.set(l, lastBuild{Key: key, Linked: key})
	return false, nil
}

// intact reports, from one lstat per file, whether dir still holds the
// files of m as links into the cache (or copies of them) with their
// content unchanged since it was last verified.
func (e *Engine) intact(dir string, m cache.Manifest) bool {
	for _, f := range m.Files {
		info, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return false
		}
		d, ok := e.stat.Unchanged(e.cfg.Cache.LinkPath(f), info)
		if !ok { // a copy, where links cannot be made
			d, ok = e.stat.Unchanged(filepath.Join(dir, filepath.FromSlash(f.Path)), info)
		}
		if !ok || d != f.Digest {
			return false
		}
	}
	if len(m.Files) == 0 {
		_, err := os.Lstat(dir)
		return err == nil
	}
	return true
}

// reason says, in words, why key must run: what changed since the last
// build of the target.
func (e *Engine) reason(ctx context.Context, l label.Label, key cache.ActionKey, recs []string) string {
	if e.cfg.Rebuild[l] {
		return "forced with --rebuild"
	}
	last := e.state.get(l)
	if last.Key.IsZero() {
		return "never built"
	}
	if last.Key == key {
		return "its cached result is gone (cache cleaned or entry corrupt)"
	}
	old, err := e.cfg.Cache.GetAction(ctx, last.Key)
	if err != nil {
		return "its last build is no longer in the cache"
	}
	changes := explainChange(old.Records, recs)
	if len(changes) == 0 {
		return "action key changed"
	}
	return strings.Join(changes, "; ")
}

// toolchainRecords are the key records of the toolchains a rule runs: their
// versions, and the digest of cogumi's Python modules for python actions.
func (e *Engine) toolchainRecords(ctx context.Context, schema rules.Schema) ([]string, error) {
	var recs []string
	for _, name := range schema.Traits.Toolchains {
		v := "unknown"
		if e.cfg.ToolchainVersion != nil {
			var err error
			if v, err = e.cfg.ToolchainVersion(ctx, name); err != nil {
				return nil, fmt.Errorf("toolchain %s: %w", name, err)
			}
		}
		recs = append(recs, record(fmt.Sprintf("toolchain %q", name), fmt.Sprintf("%q", v)))
		if name == "python" && e.cfg.PythonPathDigest != "" {
			recs = append(recs, record("python-modules", e.cfg.PythonPathDigest))
		}
	}
	return recs, nil
}

// pythonBackend is the torch runtime backend for a rule that runs the
// python toolchain, "" for other rules.
func (e *Engine) pythonBackend(ctx context.Context, schema rules.Schema) (string, error) {
	if e.cfg.PythonBackend == nil || !slices.Contains(schema.Traits.Toolchains, "python") {
		return "", nil
	}
	b, err := e.cfg.PythonBackend(ctx)
	if err != nil {
		return "", fmt.Errorf("toolchain python: %w", err)
	}
	return b, nil
}

// executorOf returns the executor a target names; nil means this machine.
func (e *Engine) executorOf(t *target.Target) (Executor, error) {
	if t.Executor == "" || t.Executor == "local" {
		return nil, nil
	}
	ex, ok := e.cfg.Executors[t.Executor]
	if !ok {
		return nil, fmt.Errorf("no executor %q", t.Executor)
	}
	return ex, nil
}
