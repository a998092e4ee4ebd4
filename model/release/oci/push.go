package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
)

// Report says what a Push did.
type Report struct {
	// Already: the tag named this artifact before; nothing was uploaded.
	Already bool
	// Uploaded and Present count the blobs sent and those the registry had.
	Uploaded, Present int
	// Bytes is the size of what was uploaded.
	Bytes int64
	// Moved is the manifest the tag named before, when another one.
	Moved string
}

// Push publishes a to r under tag: the blobs the registry lacks (each
// file's, by opening open(path), the manifest.json layer, the config; a
// few at a time), then the OCI manifest by digest, then the tag, last. A push that fails
// part way leaves blobs and perhaps an untagged manifest, never a tag that
// names something incomplete; running it again uploads what is missing.
// When tag already names a's manifest, nothing is uploaded.
func Push(ctx context.Context, r *Repo, a *Artifact, raw []byte, open func(path string) (io.ReadCloser, error), tag string) (Report, error) {
	var rep Report
	old, err := r.Resolve(ctx, tag)
	switch {
	case err == nil && old.Digest == a.Desc.Digest:
		rep.Already = true
		return rep, nil
	case err == nil:
		rep.Moved = old.Digest.String()
	case !errors.Is(err, errdef.ErrNotFound):
		return rep, r.explain(err)
	}
	// The blobs, a few at a time (sharded weights are many large files).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadParallelism)
	var mu sync.Mutex
	for i, d := range a.Layers {
		p := d.Annotations[AnnotationFilepath]
		src := func() (io.ReadCloser, error) { return open(p) }
		if i == len(a.Layers)-1 {
			src = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
		}
		g.Go(func() error {
			uploaded, err := r.pushBlob(gctx, d, src)
			if err != nil {
				return fmt.Errorf("uploading %s: %w", p, err)
			}
			mu.Lock()
			defer mu.Unlock()
			rep.count(d, uploaded)
			return nil
		})
	}
	g.Go(func() error {
		cfg := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(a.Config)), nil }
		uploaded, err := r.pushBlob(gctx, a.ConfigDesc, cfg)
		if err != nil {
			return fmt.Errorf("uploading the config: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		rep.count(a.ConfigDesc, uploaded)
		return nil
	})
	if err := g.Wait(); err != nil {
		return rep, err
	}
	if err := r.Push(ctx, a.Desc, bytes.NewReader(a.Manifest)); err != nil {
		return rep, fmt.Errorf("uploading the manifest: %w", r.explain(err))
	}
	if err := r.PushReference(ctx, a.Desc, bytes.NewReader(a.Manifest), tag); err != nil {
		return rep, fmt.Errorf("tagging %s: %w", tag, r.explain(err))
	}
	return rep, nil
}

// uploadParallelism is how many blobs go up at once.
const uploadParallelism = 4

func (rep *Report) count(d ocispec.Descriptor, uploaded bool) {
	if uploaded {
		rep.Uploaded++
		rep.Bytes += d.Size
	} else {
		rep.Present++
	}
}

// pushBlob uploads d unless the registry has it, and says whether it did.
func (r *Repo) pushBlob(ctx context.Context, d ocispec.Descriptor, open func() (io.ReadCloser, error)) (bool, error) {
	ok, err := r.Blobs().Exists(ctx, d)
	if err != nil || ok {
		return false, r.explain(err)
	}
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	// The registry refuses content whose digest is not d's.
	if err := r.Blobs().Push(ctx, d, rc); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return false, r.explain(err)
	}
	return true, nil
}

// OpenFiles opens a release's files from a map of path to file name (the
// local cache's blobs).
func OpenFiles(files map[string]string) func(string) (io.ReadCloser, error) {
	return func(p string) (io.ReadCloser, error) {
		name, ok := files[p]
		if !ok {
			return nil, fmt.Errorf("the release has no %s", p)
		}
		return os.Open(name)
	}
}
