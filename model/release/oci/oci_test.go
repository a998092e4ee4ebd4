package oci

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cogumi/cogumi/internal/registrytest"
	"github.com/cogumi/cogumi/model/release"
)

// testRelease writes a small release into a temporary directory and returns
// its manifest, manifest.json's bytes and a map of path to file.
func testRelease(t *testing.T) (*release.Manifest, []byte, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	contents := map[string]string{"tiny.gguf": "GGUF tiny model", "adapters/coding.gguf": "GGUF adapter", "README.md": "# tiny\n"}
	files := map[string]string{}
	m := &release.Manifest{Version: release.FormatVersion, Name: "tiny", Cogumi: "test", Card: release.CardInfo{License: "mit"}}
	for _, p := range []string{"tiny.gguf", "adapters/coding.gguf", "README.md"} {
		name := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(contents[p]), 0o644); err != nil {
			t.Fatal(err)
		}
		size, b3, s2, err := release.HashFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f := release.File{Path: p, Size: size, BLAKE3: b3, SHA256: s2}
		if p == "README.md" {
			m.ModelCard = f
		} else {
			m.Files = append(m.Files, f)
		}
		files[p] = name
	}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return m, raw, files
}

func TestPackIsDeterministic(t *testing.T) {
	m, raw, _ := testRelease(t)
	a, err := Pack(m, raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Pack(m, raw)
	if a.Desc.Digest != b.Desc.Digest {
		t.Fatal("two packs of one release differ")
	}
	want := []string{MediaTypeWeight, MediaTypeWeight, MediaTypeDoc, MediaTypeReleaseManifest}
	for i, l := range a.Layers {
		if l.MediaType != want[i] {
			t.Errorf("layer %d (%s): %s, want %s", i, l.Annotations[AnnotationFilepath], l.MediaType, want[i])
		}
	}
	for p, want := range map[string]string{"config.json": MediaTypeWeightCfg, "tokenizer.model": MediaTypeWeightCfg, "run.py": MediaTypeCode, "x.safetensors": MediaTypeWeight, "LICENSE": MediaTypeDoc} {
		if got := MediaTypeFor(p); got != want {
			t.Errorf("MediaTypeFor(%s) = %s, want %s", p, got, want)
		}
	}
}

func TestPushPull(t *testing.T) {
	s := registrytest.Start(t, false)
	ctx := context.Background()
	m, raw, files := testRelease(t)
	a, err := Pack(m, raw)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(s.Addr+"/models/tiny:v1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Push(ctx, r, a, raw, OpenFiles(files), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Uploaded != 5 || rep.Present != 0 || rep.Already {
		t.Fatalf("first push: %+v", rep)
	}
	// What the registry holds, through its HTTP API.
	code, b, err := s.Get("/v2/models/tiny/manifests/v1", ocispec.MediaTypeImageManifest)
	if err != nil || code != 200 {
		t.Fatalf("GET manifest: %d %v", code, err)
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(b, &om); err != nil {
		t.Fatal(err)
	}
	if om.ArtifactType != ArtifactType || om.Config.MediaType != MediaTypeConfig || len(om.Layers) != 4 || om.Annotations[AnnotationDigest] != release.Digest(raw) {
		t.Fatalf("manifest: %s", b)
	}
	code, b, _ = s.Get("/v2/models/tiny/blobs/"+om.Layers[0].Digest.String(), "")
	if code != 200 || string(b) != "GGUF tiny model" {
		t.Fatalf("layer 0: %d %q", code, b)
	}
	// Again: nothing uploaded.
	if rep, err = Push(ctx, r, a, raw, OpenFiles(files), "v1"); err != nil || !rep.Already {
		t.Fatalf("second push: %+v, %v", rep, err)
	}
	// Under another tag: only the manifest is new.
	if rep, err = Push(ctx, r, a, raw, OpenFiles(files), "v2"); err != nil || rep.Uploaded != 0 || rep.Present != 5 {
		t.Fatalf("push under another tag: %+v, %v", rep, err)
	}

	dir := filepath.Join(t.TempDir(), "out")
	got, digest, err := Pull(ctx, r, dir)
	if err != nil {
		t.Fatal(err)
	}
	if digest != release.Digest(raw) || got.Name != "tiny" {
		t.Fatalf("pulled %s %s", got.Name, digest)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "adapters", "coding.gguf")); string(b) != "GGUF adapter" {
		t.Fatalf("pulled adapter: %q", b)
	}
	if _, _, err := Pull(ctx, r, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("pull into a full directory: %v", err)
	}
}

// A registry that dies mid-push leaves no tag; a second push completes,
// uploading what is missing. (Blobs go up in parallel, so which were
// stored before the kill varies.)
func TestPushRegistryDiesMidPush(t *testing.T) {
	s := registrytest.Start(t, false)
	ctx := context.Background()
	m, raw, files := testRelease(t)
	a, _ := Pack(m, raw)
	var uploads atomic.Int32
	kill := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") && uploads.Add(1) == 3 {
			s.Stop() // the third blob's upload finds the registry dead
		}
		return http.DefaultTransport.RoundTrip(req)
	})
	r, _ := Open(s.Addr+"/models/tiny:v1", Options{Transport: kill})
	if _, err := Push(ctx, r, a, raw, OpenFiles(files), "v1"); err == nil {
		t.Fatal("push to a dead registry succeeded")
	}
	if err := s.Relaunch(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := s.Get("/v2/models/tiny/manifests/v1", ocispec.MediaTypeImageManifest); code != http.StatusNotFound {
		t.Fatalf("the failed push left the tag: %d", code)
	}
	r, _ = Open(s.Addr+"/models/tiny:v1", Options{})
	rep, err := Push(ctx, r, a, raw, OpenFiles(files), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Present+rep.Uploaded != 5 || rep.Uploaded == 0 || rep.Already {
		t.Fatalf("second push: %+v, want the 5 blobs present or uploaded, some uploaded", rep)
	}
	if _, _, err := Pull(ctx, r, filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatal(err)
	}
}

func TestWrongCredentials(t *testing.T) {
	s := registrytest.Start(t, true)
	m, raw, files := testRelease(t)
	a, _ := Pack(m, raw)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REG_AUTH", s.User+":not-the-password-s3cr3t")
	r, err := Open(s.Addr+"/models/tiny:v1", Options{AuthEnv: "REG_AUTH"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Push(context.Background(), r, a, raw, OpenFiles(files), "v1")
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "$REG_AUTH") {
		t.Fatalf("wrong credentials: %v", err)
	}
	t.Log(err)
	t.Setenv("REG_AUTH", s.User+":"+s.Password)
	r, _ = Open(s.Addr+"/models/tiny:v1", Options{AuthEnv: "REG_AUTH"})
	if _, err := Push(context.Background(), r, a, raw, OpenFiles(files), "v1"); err != nil {
		t.Fatal(err)
	}
}

// A blob damaged in the registry fails the pull, which leaves nothing.
func TestPullDamagedBlob(t *testing.T) {
	s := registrytest.Start(t, false)
	ctx := context.Background()
	m, raw, files := testRelease(t)
	a, _ := Pack(m, raw)
	r, _ := Open(s.Addr+"/models/tiny:v1", Options{})
	if _, err := Push(ctx, r, a, raw, OpenFiles(files), "v1"); err != nil {
		t.Fatal(err)
	}
	// Same size, other bytes: only a digest check can tell.
	if err := os.WriteFile(s.BlobFile(m.Files[1].SHA256), []byte("GGUF adaptor"), 0o644); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	_, _, err := Pull(ctx, r, filepath.Join(parent, "out"))
	if err == nil || !strings.Contains(err.Error(), "adapters/coding.gguf") {
		t.Fatalf("pull of a damaged blob: %v", err)
	}
	t.Log(err)
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("a failed pull left %v", ents)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
