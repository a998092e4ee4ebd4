package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// memoVersion changes whenever the meaning of a memo entry changes.
const memoVersion = "cogumi-memo-v1"

// maxMemoValue bounds what one memo entry may hold: a sub-step's result
// (one API response), never an artifact.
const maxMemoValue = 64 << 20

// memo stores the results of one action's sub-steps as action results of
// their own (one file, "value"), so they share the cache's atomic writes,
// verification, garbage collection and the remote cache: a teammate's build
// reuses an API answer someone else paid for.
type memo struct {
	e     *Engine
	label label.Label
	kind  string
}

func (m *memo) key(k string) cache.ActionKey {
	return cache.KeyFromRecords([]string{memoVersion, "kind " + m.kind, "key " + k})
}

// Get returns the value stored under k: from the local cache, else from the
// remote one (recorded locally on a hit).
func (m *memo) Get(ctx context.Context, k string) ([]byte, bool, error) {
	ak := m.key(k)
	res, err := m.e.cfg.Cache.GetAction(ctx, ak)
	if err != nil {
		if m.e.remote == nil {
			return nil, false, nil
		}
		var ok bool
		if res, ok = m.e.remote.getAction(ctx, m.label.String(), ak); !ok {
			return nil, false, nil
		}
	}
	if len(res.Outputs.Files) != 1 || res.Outputs.Files[0].Path != "value" || res.Outputs.Files[0].Size > maxMemoValue {
		m.e.obs.Warn(fmt.Sprintf("%s: ignoring a malformed memo entry %s", m.label, ak.Short()))
		return nil, false, nil
	}
	if m.e.remote != nil {
		if err := m.e.fetch(ctx, res.Outputs); err != nil {
			return nil, false, nil
		}
	}
	f, err := m.e.cfg.Cache.OpenBlob(res.Outputs.Files[0].Digest)
	if err != nil {
		return nil, false, nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMemoValue+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading memo entry %s: %w", ak.Short(), err)
	}
	if cache.DigestBytes(b) != res.Outputs.Files[0].Digest {
		m.e.obs.Warn(fmt.Sprintf("%s: ignoring a corrupt memo entry %s", m.label, ak.Short()))
		return nil, false, nil
	}
	return b, true, nil
}

// Put stores v under k in the local cache (and pushes it when the build
// uploads). It returns once the entry is in the cache.
func (m *memo) Put(ctx context.Context, k string, v []byte) error {
	if len(v) > maxMemoValue {
		return fmt.Errorf("memo value of %d bytes is over the limit of %d", len(v), maxMemoValue)
	}
	d, err := m.e.cfg.Cache.PutBytes(ctx, v)
	if err != nil {
		return fmt.Errorf("storing memo value: %w", err)
	}
	host, _ := os.Hostname()
	res := &cache.ActionResult{
		Key: m.key(k), Label: m.label.String(), Records: []string{memoVersion, "kind " + m.kind},
		Outputs: cache.Manifest{Files: []cache.FileEntry{{Path: "value", Digest: d, Size: int64(len(v))}}},
		Started: time.Now().UTC(), Host: host,
	}
	if err := m.e.cfg.Cache.PutAction(ctx, res); err != nil {
		return fmt.Errorf("recording memo entry: %w", err)
	}
	if m.e.remote != nil && m.e.remote.upload {
		if err := m.e.remote.push(ctx, res); err != nil && m.e.remote.usable() {
			m.e.obs.Warn(fmt.Sprintf("%s: uploading a memo entry to the remote cache: %v", m.label, err))
		}
	}
	return nil
}
