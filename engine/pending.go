package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/cache"
)

// Uploads to the remote cache that fail (the server down, credentials
// refused mid-build) are remembered as empty files named by their action
// keys in the workspace state's pending-uploads/ directory, one file per
// result so that concurrent builds need no merging, and retried by the
// next build that reaches the bucket. A no-op build with nothing pending
// still makes no request.

func (e *Engine) pendingDir() string { return filepath.Join(e.state.dir, "pending-uploads") }

// markPending remembers that the result of key has not reached the bucket.
func (e *Engine) markPending(key cache.ActionKey) {
	dir := e.pendingDir()
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, key.String()), nil, 0o644)
	}
}

// clearPending forgets that the result of key has to be uploaded.
func (e *Engine) clearPending(key cache.ActionKey) {
	_ = os.Remove(filepath.Join(e.pendingDir(), key.String()))
}

// pendingKeys lists the results waiting to be uploaded.
func (e *Engine) pendingKeys() []cache.ActionKey {
	des, err := os.ReadDir(e.pendingDir())
	if err != nil {
		return nil
	}
	var keys []cache.ActionKey
	for _, de := range des {
		if k, err := cache.ParseActionKey(de.Name()); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// retryUploads pushes the pending results while the remote cache answers,
// and returns how many are still pending.
func (e *Engine) retryUploads(ctx context.Context) int {
	keys := e.pendingKeys()
	if len(keys) == 0 || e.remote == nil || !e.remote.upload {
		return len(keys)
	}
	left := 0
	for _, k := range keys {
		if !e.remote.usable() || ctx.Err() != nil {
			left++
			continue
		}
		res, err := e.cfg.Cache.GetAction(ctx, k)
		if err == nil {
			err = e.remote.push(ctx, res)
		} else if errors.Is(err, cache.ErrNotFound) {
			err = nil // gone from the local cache: nothing left to send
		}
		if err != nil {
			left++
			continue
		}
		e.clearPending(k)
	}
	if done := len(keys) - left; done > 0 {
		e.obs.Warn(fmt.Sprintf("uploaded %d result(s) that earlier builds could not send to %s", done, e.remote.r))
	}
	return left
}
