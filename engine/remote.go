package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cogumi/cogumi/cache"
)

// RemoteCache is a cache shared by a team (an S3 bucket). The engine consults
// it after the local cache and before running an action.
type RemoteCache interface {
	// String names the remote for messages (bucket and endpoint, no secret).
	String() string
	// GetAction returns the validated result under k; a miss is an error
	// for which errors.Is(err, cache.ErrNotFound) holds.
	GetAction(ctx context.Context, k cache.ActionKey) (*cache.ActionResult, error)
	PutAction(ctx context.Context, r *cache.ActionResult) error
	// HasBlob reports whether blob d of size bytes is stored.
	HasBlob(ctx context.Context, d cache.Digest, size int64) (bool, error)
	// PutFile uploads the file at path as blob d.
	PutFile(ctx context.Context, d cache.Digest, size int64, path string) error
	// GetFile downloads blob d into the file dst, verified against d.
	GetFile(ctx context.Context, d cache.Digest, size int64, dst string) error
}

// remoteTier wraps the remote with the build's policy: one warning and no
// further use once it fails (the build goes on locally), byte counters.
type remoteTier struct {
	r      RemoteCache
	upload bool
	local  *cache.Local
	obs    Observer

	down   bool // failed: not used for the rest of the build
	mu     sync.Mutex
	warned bool

	bytesDown atomic.Int64
	bytesUp   atomic.Int64
}

func (t *remoteTier) usable() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.down
}

// failed records an error that is not a miss: the remote is dropped for the
// rest of the build, with one warning.
func (t *remoteTier) failed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.down = true
	if !t.warned {
		t.warned = true
		// The store's errors name the endpoint and the bucket already.
		t.obs.Warn(fmt.Sprintf("%v; going on with the local cache only", err))
	}
}

// getAction looks k up remotely. A hit is recorded in the local cache as
// an entry whose blobs may stay in the bucket.
func (t *remoteTier) getAction(ctx context.Context, label string, k cache.ActionKey) (*cache.ActionResult, bool) {
	if !t.usable() {
		return nil, false
	}
	res, err := t.r.GetAction(ctx, k)
	if err != nil {
		var ce *cache.CorruptError
		switch {
		case errors.As(err, &ce):
			t.obs.Warn(fmt.Sprintf("%s: ignoring corrupt remote cache entry %s: %v", label, k.Short(), err))
		case errors.Is(err, cache.ErrNotFound):
		case ctx.Err() != nil:
		default:
			t.failed(err)
		}
		return nil, false
	}
	local := *res
	local.BlobsRemote = true
	if err := t.local.PutAction(ctx, &local); err != nil {
		t.obs.Warn(fmt.Sprintf("%s: recording remote hit locally: %v", label, err))
	}
	return &local, true
}

// fetch makes every blob of m present in the local cache, downloading what
// is missing. Each download is verified.
func (e *Engine) fetch(ctx context.Context, m cache.Manifest) error {
	t := e.remote
	for _, f := range m.Files {
		if e.cfg.Cache.HasBlob(ctx, f.Digest, f.Size) {
			continue
		}
		if !t.usable() {
			return fmt.Errorf("blob %s (%s) is in neither the local nor a reachable remote cache", f.Digest.Short(), f.Path)
		}
		if err := t.download(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (t *remoteTier) download(ctx context.Context, f cache.FileEntry) error {
	tmpDir := filepath.Join(t.local.Dir(), "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tmpDir, "download-*")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := t.r.GetFile(ctx, f.Digest, f.Size, tmp.Name()); err != nil {
		var ce *cache.CorruptError
		if !errors.As(err, &ce) && !errors.Is(err, cache.ErrNotFound) && ctx.Err() == nil {
			t.failed(err)
		}
		return fmt.Errorf("downloading %s (%s): %w", f.Path, f.Digest.Short(), err)
	}
	d, n, err := t.local.AdoptFile(tmp.Name())
	if err != nil {
		return err
	}
	if d != f.Digest || n != f.Size {
		return &cache.CorruptError{What: "remote blob " + f.Digest.String(), Reason: "downloaded bytes do not match the digest"}
	}
	t.bytesDown.Add(n)
	return nil
}

// push uploads the blobs of r that the remote lacks, then r itself: an
// entry is never visible before its blobs.
func (t *remoteTier) push(ctx context.Context, r *cache.ActionResult) error {
	if !t.usable() {
		return errors.New("remote cache unavailable")
	}
	files := append([]cache.FileEntry(nil), r.Outputs.Files...)
	if !r.Log.IsZero() {
		files = append(files, cache.FileEntry{Path: "(log)", Digest: r.Log, Size: r.LogSize})
	}
	for _, f := range files {
		has, err := t.r.HasBlob(ctx, f.Digest, f.Size)
		if err != nil {
			t.failed(err)
			return err
		}
		if has {
			continue
		}
		if !t.local.HasBlob(ctx, f.Digest, f.Size) {
			return fmt.Errorf("blob %s (%s) is not in the local cache", f.Digest.Short(), f.Path)
		}
		if err := t.r.PutFile(ctx, f.Digest, f.Size, t.local.BlobPath(f.Digest)); err != nil {
			t.failed(err)
			return err
		}
		t.bytesUp.Add(f.Size)
	}
	up := *r
	up.BlobsRemote = false
	if err := t.r.PutAction(ctx, &up); err != nil {
		t.failed(err)
		return err
	}
	return nil
}
