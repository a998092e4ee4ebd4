package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cogumi/cogumi/model/release"
)

// maxManifest bounds the OCI manifest and manifest.json read into memory.
const maxManifest = 16 << 20

// Pull fetches the release r.Ref names into dir, which must not exist or
// be empty. Every file is checked against manifest.json (size, SHA-256 and
// BLAKE3) and manifest.json against the digest the OCI manifest names; the
// files are written into a temporary directory beside dir, renamed to dir
// only when all are good, so a failure leaves nothing behind. It returns
// the release's manifest and digest.
func Pull(ctx context.Context, r *Repo, dir string) (*release.Manifest, string, error) {
	desc, rc, err := r.FetchReference(ctx, r.Ref.ReferenceOrDefault())
	if err != nil {
		return nil, "", r.explain(err)
	}
	b, err := readVerified(rc, desc)
	if err != nil {
		return nil, "", fmt.Errorf("the OCI manifest: %w", err)
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(b, &om); err != nil {
		return nil, "", fmt.Errorf("the OCI manifest: %w", err)
	}
	if om.ArtifactType != ArtifactType || len(om.Layers) == 0 {
		return nil, "", fmt.Errorf("%s is not a model artifact (artifactType %q)", r.Ref, om.ArtifactType)
	}
	last := om.Layers[len(om.Layers)-1]
	if last.MediaType != MediaTypeReleaseManifest || last.Size > maxManifest {
		return nil, "", fmt.Errorf("%s holds no cogumi release manifest: a model artifact not published by cogumi", r.Ref)
	}
	raw, err := r.fetchSmall(ctx, last)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", release.ManifestName, err)
	}
	m, err := release.Parse(raw)
	if err != nil {
		return nil, "", err
	}
	rd := release.Digest(raw)
	if want := om.Annotations[AnnotationDigest]; want != rd {
		return nil, "", fmt.Errorf("%s has digest %s, but the OCI manifest names %q", release.ManifestName, rd, want)
	}
	byPath := map[string]ocispec.Descriptor{}
	for _, d := range om.Layers[:len(om.Layers)-1] {
		byPath[d.Annotations[AnnotationFilepath]] = d
	}
	files := m.AllFiles()
	if len(byPath) != len(files) || len(om.Layers)-1 != len(files) {
		return nil, "", fmt.Errorf("%s: %d layers for the %d files manifest.json lists", r.Ref, len(om.Layers)-1, len(files))
	}
	if err := checkTarget(dir); err != nil {
		return nil, "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".cogumi-pull-*")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for _, f := range files {
		d, ok := byPath[f.Path]
		if !ok {
			return nil, "", fmt.Errorf("%s: no layer for %s", r.Ref, f.Path)
		}
		if d.Size != f.Size || d.Digest != digest.NewDigestFromEncoded(digest.SHA256, f.SHA256) {
			return nil, "", fmt.Errorf("%s: the layer for %s (%s, %d bytes) %w", r.Ref, f.Path, d.Digest, d.Size, release.ErrMismatch)
		}
		if err := r.fetchFile(ctx, d, filepath.Join(tmp, filepath.FromSlash(f.Path))); err != nil {
			return nil, "", fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, release.ManifestName), raw, 0o644); err != nil {
		return nil, "", err
	}
	// Every file again, from disk, with both digests.
	if err := release.Verify(tmp, m); err != nil {
		return nil, "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, "", err
	}
	_ = os.Remove(dir) // empty, checked above
	if err := os.Rename(tmp, dir); err != nil {
		return nil, "", err
	}
	return m, rd, nil
}

// checkTarget accepts a directory that does not exist or is empty.
func checkTarget(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s is not empty: pull into a new directory", dir)
	}
	return nil
}

func (r *Repo) fetchSmall(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	rc, err := r.Blobs().Fetch(ctx, d)
	if err != nil {
		return nil, r.explain(err)
	}
	return readVerified(rc, d)
}

// readVerified reads all of rc (at most d.Size bytes) and checks its digest.
func readVerified(rc io.ReadCloser, d ocispec.Descriptor) ([]byte, error) {
	defer rc.Close()
	if d.Size > maxManifest {
		return nil, fmt.Errorf("%d bytes: too large", d.Size)
	}
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != d.Size || digest.FromBytes(b) != d.Digest {
		return nil, fmt.Errorf("the registry sent %d bytes that are not %s", len(b), d.Digest)
	}
	return b, nil
}

// fetchFile writes the blob d into name, checking its size and SHA-256.
func (r *Repo) fetchFile(ctx context.Context, d ocispec.Descriptor, name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	rc, err := r.Blobs().Fetch(ctx, d)
	if err != nil {
		return r.explain(err)
	}
	defer rc.Close()
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	v := d.Digest.Verifier()
	n, err := io.Copy(io.MultiWriter(f, v), io.LimitReader(rc, d.Size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != d.Size || !v.Verified() {
		return fmt.Errorf("the registry sent %d bytes that are not %s", n, d.Digest)
	}
	return nil
}
