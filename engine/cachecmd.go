package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// LinkedKeys returns the action results that cogumi-out directories of
// every workspace using the cache link to: a collection must keep them.
func LinkedKeys(c *cache.Local) map[cache.ActionKey]bool {
	keep := make(map[cache.ActionKey]bool)
	dirs, _ := filepath.Glob(filepath.Join(c.Dir(), "workspaces", "*", "state.json"))
	for _, path := range dirs {
		for _, lb := range readStateFile(path) {
			if !lb.Linked.IsZero() {
				keep[lb.Linked] = true
			}
		}
	}
	return keep
}

// TransferReport counts what Push or Pull did.
type TransferReport struct {
	Targets  int // targets whose result was pushed or pulled
	Missing  []string
	Bytes    int64
	Requests int
}

// Push uploads the local results of roots and everything they need to the
// remote cache, skipping blobs it already has. A target with no local
// result is listed as missing.
func (e *Engine) Push(ctx context.Context, roots []label.Label) (TransferReport, error) {
	var rep TransferReport
	if e.remote == nil {
		return rep, fmt.Errorf("no remote cache configured (remote_cache in cogumi.hcl, --remote-cache or COGUMI_REMOTE_CACHE)")
	}
	items, err := e.Plan(ctx, roots)
	if err != nil {
		return rep, err
	}
	for _, it := range items {
		if it.Source {
			continue
		}
		if it.Stale || it.Key.IsZero() {
			rep.Missing = append(rep.Missing, it.Label.String())
			continue
		}
		k := it.Key
		res, err := e.cfg.Cache.GetAction(ctx, k)
		if err != nil || res.BlobsRemote && !e.allLocal(ctx, res.Outputs) {
			continue // the remote already has it: that is where it came from
		}
		if _, err := e.remote.r.GetAction(ctx, k); err == nil {
			e.clearPending(k)
			continue // already there
		}
		if err := e.remote.push(ctx, res); err != nil {
			return rep, fmt.Errorf("%s: %w", it.Label, err)
		}
		e.clearPending(k)
		rep.Targets++
	}
	rep.Bytes = e.remote.bytesUp.Load()
	return rep, nil
}

// Pull fetches the results of roots from the remote cache without building:
// their outputs are downloaded and linked under cogumi-out, the results of
// what they need are recorded (and downloaded too with DownloadAll).
func (e *Engine) Pull(ctx context.Context, roots []label.Label) (TransferReport, error) {
	var rep TransferReport
	if e.remote == nil {
		return rep, fmt.Errorf("no remote cache configured (remote_cache in cogumi.hcl, --remote-cache or COGUMI_REMOTE_CACHE)")
	}
	defer e.markLinking()()
	wanted := make(map[label.Label]bool)
	for _, r := range roots {
		wanted[r.Target()] = true
	}
	items, err := e.Plan(ctx, roots)
	if err != nil {
		return rep, err
	}
	for _, it := range items {
		if it.Source {
			continue
		}
		if it.Stale || it.Key.IsZero() {
			rep.Missing = append(rep.Missing, it.Label.String())
			continue
		}
		k := it.Key
		res, _, ok := e.resolve(ctx, it.Label, k, true)
		if !ok {
			rep.Missing = append(rep.Missing, it.Label.String())
			continue
		}
		if _, err := e.deliver(ctx, it.Label, k, res, wanted[it.Label] || e.cfg.DownloadAll); err != nil {
			return rep, fmt.Errorf("%s: %w", it.Label, err)
		}
		rep.Targets++
	}
	rep.Bytes = e.remote.bytesDown.Load()
	return rep, nil
}

// LastBuild is the summary of the last build of the workspace, kept for
// `cogumi cache stat`.
type LastBuild struct {
	Summary
	Targets int `json:"targets"`
}

func (e *Engine) saveLastBuild(s Summary, targets int) {
	b, err := json.Marshal(LastBuild{Summary: s, Targets: targets})
	if err == nil {
		_ = writeFileAtomic(filepath.Join(e.state.dir, "last-build.json"), b)
	}
}

// ReadLastBuild returns the summary of the workspace's last build.
func (e *Engine) ReadLastBuild() (LastBuild, bool) {
	var lb LastBuild
	b, err := os.ReadFile(filepath.Join(e.state.dir, "last-build.json"))
	if err != nil || json.Unmarshal(b, &lb) != nil {
		return lb, false
	}
	return lb, true
}
