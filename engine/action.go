package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/label"
	"github.com/cogumi/cogumi/target"
)

// process brings one target up to date: a source group is hashed, an
// action is looked up in the cache and run when missing.
func (e *Engine) process(ctx context.Context, n int, s *scheduler) outcome {
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
	if nd.rule.Schema().Source {
		art, err := e.sourceGroup(t, inputs, s.artifactOf)
		if err != nil {
			return outcome{result: Failed, err: err}
		}
		return outcome{result: Source, art: art}
	}
	recs, err := keyRecords(t, nd.rule, inputs)
	if err != nil {
		return outcome{result: Failed, err: err}
	}
	key := cache.KeyFromRecords(recs)
	o := outcome{key: key.String()}
	rebuild := e.cfg.Rebuild[t.Label]
	if !rebuild {
		if art, ok := e.lookup(t.Label, key); ok {
			o.result, o.art = Cached, art
			return o
		}
	}
	o.reason = e.reason(t.Label, key, recs)
	if s.isStopped() {
		o.result, o.err = Skipped, errors.New("the build stopped after a failure")
		return o
	}
	nd0 := needOf(t.Resources)
	if err := s.budget.check(nd0); err != nil {
		o.result, o.err = Failed, err
		return o
	}
	unlock, err := e.cfg.Cache.Lock(ctx, key, func() { e.obs.Waiting(t.Label.String()) })
	if err != nil {
		o.result, o.err = Skipped, err
		return o
	}
	defer unlock()
	if !rebuild {
		// Another process may have built it while we waited for the lock.
		if art, ok := e.lookup(t.Label, key); ok {
			o.result, o.art = Cached, art
			return o
		}
	}
	if err := s.budget.acquire(ctx, nd0); err != nil {
		o.result, o.err = Skipped, err
		return o
	}
	defer s.budget.release(nd0)
	e.obs.Started(t.Label.String(), o.reason)
	start := time.Now()
	art, tail, err := e.run(ctx, n, key, recs, inputs, s.artifactOf)
	o.seconds = time.Since(start).Seconds()
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
			abs := e.cfg.Cache.BlobPath(f.Digest)
			if art.sources != nil {
				abs = art.sources[f.Path]
			}
			files = append(files, sourceFile{rel: f.Path, abs: abs, digest: f.Digest, size: f.Size, exec: f.Executable})
		}
	}
	return sourceArtifact(files)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

// lookup returns the cached artifact of key and links it under cogumi-out.
// A corrupt entry is reported and treated as a miss.
func (e *Engine) lookup(l label.Label, key cache.ActionKey) (*artifact, bool) {
	res, err := e.cfg.Cache.GetAction(key)
	if err != nil {
		var ce *cache.CorruptError
		if errors.As(err, &ce) {
			e.obs.Warn(fmt.Sprintf("%s: ignoring corrupt cache entry %s: %v", l, key.Short(), err))
		}
		return nil, false
	}
	art := newArtifact(res.Outputs, nil)
	if err := e.link(l, key, res.Outputs); err != nil {
		e.obs.Warn(fmt.Sprintf("%s: %v", l, err))
		return nil, false
	}
	return art, true
}

// link makes cogumi-out/<pkg>/<name> hold the outputs of key, unless the
// last build already left them there.
func (e *Engine) link(l label.Label, key cache.ActionKey, m cache.Manifest) error {
	dir := filepath.Join(e.outDir, artifactDir(l))
	last := e.state.get(l)
	if last.Linked == key.String() {
		if _, err := os.Lstat(dir); err == nil {
			if last.Key != key.String() {
				e.state.set(l, lastBuild{Key: key.String(), Linked: key.String()})
			}
			return nil
		}
	}
	if err := e.cfg.Cache.Materialize(m, dir); err != nil {
		return fmt.Errorf("linking outputs into %s: %w", dir, err)
	}
	e.state.set(l, lastBuild{Key: key.String(), Linked: key.String()})
	return nil
}

// reason says, in words, why key must run: what changed since the last
// build of the target.
func (e *Engine) reason(l label.Label, key cache.ActionKey, recs []string) string {
	if e.cfg.Rebuild[l] {
		return "forced with --rebuild"
	}
	last := e.state.get(l)
	if last.Key == "" {
		return "never built"
	}
	if last.Key == key.String() {
		return "its cached result is gone (cache cleaned or entry corrupt)"
	}
	lk, err := cache.ParseActionKey(last.Key)
	if err != nil {
		return "never built"
	}
	old, err := e.cfg.Cache.GetAction(lk)
	if err != nil {
		return "its last build is no longer in the cache"
	}
	changes := explainChange(old.Records, recs)
	if len(changes) == 0 {
		return "action key changed"
	}
	return strings.Join(changes, "; ")
}
