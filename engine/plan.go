package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// PlanItem says whether one target is up to date and, if not, why.
type PlanItem struct {
	Label   label.Label
	Kind    string
	Source  bool            // a source group: never runs
	Stale   bool            // its action would run
	Reasons []string        // why it would run
	Key     cache.ActionKey // its action key, when it can be known without building; else zero
}

// Plan computes, without running anything, which targets of the closure of
// roots are stale and why. A target whose dependency is stale cannot have
// its key computed; its reason names that dependency.
func (e *Engine) Plan(ctx context.Context, roots []label.Label) ([]PlanItem, error) {
	ids, err := e.closure(roots)
	if err != nil {
		return nil, err
	}
	arts := make([]*artifact, len(e.nodes))
	artOf := func(n int) *artifact { return arts[n] }
	items := make([]PlanItem, 0, len(ids))
	for _, n := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nd := e.nodes[n]
		it := PlanItem{Label: nd.t.Label, Kind: nd.t.Kind, Source: nd.schema.Traits.Source}
		var stale []string
		for _, d := range e.graph.Deps(n) {
			if arts[d] == nil {
				stale = append(stale, fmt.Sprintf("input %s will be rebuilt", e.nodes[d].t.Label))
			}
		}
		if len(stale) > 0 {
			it.Stale, it.Reasons = true, stale
			items = append(items, it)
			continue
		}
		inputs, err := e.inputDigests(nd.t, artOf)
		if err != nil {
			return nil, err
		}
		if it.Source {
			if arts[n], err = e.sourceArtifactOf(ctx, nd, inputs, artOf); err != nil {
				return nil, err
			}
			items = append(items, it)
			continue
		}
		tools, err := e.toolchainRecords(ctx, nd.schema)
		if err != nil {
			return nil, err
		}
		tools = append(tools, e.provenanceRecords(nd.schema, inputs, artOf)...)
		recs, err := keyRecords(nd.t, nd.rule, nd.schema, inputs, tools...)
		if err != nil {
			return nil, err
		}
		key := cache.KeyFromRecords(recs)
		it.Key = key
		if !e.cfg.Rebuild[nd.t.Label] {
			if res, _, ok := e.resolve(ctx, nd.t.Label, key, true); ok {
				arts[n] = newArtifact(res.Outputs, nil).producedBy(key)
				items = append(items, it)
				continue
			}
		}
		it.Stale, it.Reasons = true, []string{e.reason(ctx, nd.t.Label, key, recs)}
		items = append(items, it)
	}
	return items, nil
}

// Why explains why l would be rebuilt, following stale dependencies down
// to the records that changed.
func (e *Engine) Why(ctx context.Context, l label.Label) ([]string, error) {
	items, err := e.Plan(ctx, []label.Label{l})
	if err != nil {
		return nil, err
	}
	byLabel := make(map[label.Label]PlanItem, len(items))
	for _, it := range items {
		byLabel[it.Label] = it
	}
	var lines []string
	var explain func(l label.Label, indent string, seen map[label.Label]bool)
	explain = func(l label.Label, indent string, seen map[label.Label]bool) {
		it := byLabel[l]
		if seen[l] {
			return
		}
		seen[l] = true
		for _, r := range it.Reasons {
			lines = append(lines, indent+r)
			for _, d := range e.graph.Deps(e.index[l]) {
				dl := e.nodes[d].t.Label
				if r == fmt.Sprintf("input %s will be rebuilt", dl) {
					explain(dl, indent+"  ", seen)
				}
			}
		}
	}
	explain(l.Target(), "", make(map[label.Label]bool))
	return lines, nil
}

// LogOf returns the log of the last run of l: the one kept for the
// workspace (failed or not), or the one stored with its cached result.
func (e *Engine) LogOf(ctx context.Context, l label.Label) ([]byte, error) {
	if b, err := os.ReadFile(e.state.logPath(l)); err == nil {
		return b, nil
	}
	last := e.state.get(l)
	if last.Key.IsZero() {
		return nil, fmt.Errorf("%s has not been built in this workspace", l)
	}
	res, err := e.cfg.Cache.GetAction(ctx, last.Key)
	if err != nil {
		return nil, fmt.Errorf("the result of the last build of %s is not in the cache: %w", l, err)
	}
	if res.Log.IsZero() {
		return nil, errors.New("no log was kept")
	}
	f, err := e.cfg.Cache.OpenBlob(res.Log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f, 64<<20)
}

// ReadOutput returns the content of one file of l's artifact as the
// workspace now describes it: l must be built and in the local cache (else
// the error says to build it). The bytes are checked against their digest.
func (e *Engine) ReadOutput(ctx context.Context, l label.Label, path string) ([]byte, error) {
	blobs, err := e.OutputBlobs(ctx, l)
	if err != nil {
		return nil, err
	}
	p, ok := blobs[path]
	if !ok {
		return nil, fmt.Errorf("%s: its artifact has no %s", l, path)
	}
	b, err := os.ReadFile(p.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", l, path, err)
	}
	if cache.DigestBytes(b) != p.Digest {
		return nil, fmt.Errorf("%s: %s in the cache is corrupt: run cogumi build %s again", l, path, l)
	}
	return b, nil
}

// OutputBlob is where one file of an artifact is in the local cache.
type OutputBlob struct {
	Path   string // the blob's file, read-only
	Digest cache.Digest
}

// OutputBlobs returns the files of l's artifact as the workspace now
// describes it, by their path in the artifact: l must be built and in the
// local cache (else the error says to build it). The blobs are not checked:
// a caller that reads one checks what it read.
func (e *Engine) OutputBlobs(ctx context.Context, l label.Label) (map[string]OutputBlob, error) {
	items, err := e.Plan(ctx, []label.Label{l})
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.Label != l {
			continue
		}
		if it.Stale {
			why := ""
			if len(it.Reasons) > 0 {
				why = " (" + it.Reasons[0] + ")"
			}
			return nil, fmt.Errorf("%s is not built as the workspace now describes it%s: run cogumi build %s first", l, why, l)
		}
		res, err := e.cfg.Cache.GetAction(ctx, it.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: its result is not in the local cache (%v): run cogumi build %s first", l, err, l)
		}
		out := make(map[string]OutputBlob, len(res.Outputs.Files))
		for _, f := range res.Outputs.Files {
			out[f.Path] = OutputBlob{Path: e.cfg.Cache.BlobPath(f.Digest), Digest: f.Digest}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: not a target of this workspace", l)
}
