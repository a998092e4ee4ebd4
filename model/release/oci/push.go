package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
// file's, by opening open(path), the manifest.json layer, the config),
// then the OCI manifest by digest, then the tag, last. A push that fails
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
	for i, d := range a.Layers {
		p := d.Annotations[AnnotationFilepath]
		src := func() (io.ReadCloser, error) { return open(p) }
		if i == len(a.Layers)-1 {
			src = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
		}
		if err := r.pushBlob(ctx, d, src, &rep); err != nil {
			return rep, fmt.Errorf("uploading %s: %w", p, err)
		}
	}
	cfg := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(a.Config)), nil }
	if err := r.pushBlob(ctx, a.ConfigDesc, cfg, &rep); err != nil {
		return rep, fmt.Errorf("uploading the config: %w", err)
	}
	if err := r.Push(ctx, a.Desc, bytes.NewReader(a.Manifest)); err != nil {
		return rep, fmt.Errorf("uploading the manifest: %w", r.explain(err))
	}
	if err := r.PushReference(ctx, a.Desc, bytes.NewReader(a.Manifest), tag); err != nil {
		return rep, fmt.Errorf("tagging %s: %w", tag, r.explain(err))
	}
	return rep, nil
}

// pushBlob uploads d unless the registry has it.
func (r *Repo) pushBlob(ctx context.Context, d ocispec.Descriptor, open func() (io.ReadCloser, error), rep *Report) error {
	ok, err := r.Blobs().Exists(ctx, d)
	if err != nil {
		return r.explain(err)
	}
	if ok {
		rep.Present++
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	// The registry refuses content whose digest is not d's.
	if err := r.Blobs().Push(ctx, d, rc); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return r.explain(err)
	}
	rep.Uploaded++
	rep.Bytes += d.Size
	return nil
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
