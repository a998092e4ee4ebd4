// Package cachetest is the conformance suite every cache.Store passes: the
// local disk store, the S3 store, and any decorator around them. A backend's
// test calls Run with a function that opens a fresh, empty store and returns
// Hooks that damage entries the way that backend can be damaged.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cogumi/cogumi/cache"
)

// Hooks let the suite reach behind a store's back. Every func is required
// unless marked optional.
type Hooks struct {
	// WriteActionRaw stores data, unvalidated, as the entry for key k.
	WriteActionRaw func(t *testing.T, k cache.ActionKey, data []byte)
	// CorruptBlob replaces blob d's stored content with other bytes of the
	// same length, keeping whatever makes HasBlob say yes (bit rot).
	CorruptBlob func(t *testing.T, d cache.Digest)
	// TruncateBlob cuts blob d's stored content in half, likewise.
	TruncateBlob func(t *testing.T, d cache.Digest)
	// DeleteBlob removes blob d (eviction, or a garbage collection).
	DeleteBlob func(t *testing.T, d cache.Digest)
	// Verify (optional) checks blob d's content against its digest, for a
	// store that does not verify on every read (Local.VerifyBlob). Without
	// it the suite reads the blob to EOF through ReadBlob.
	Verify func(d cache.Digest) error
	// LazyBlobs says that GetAction does not check that output blobs exist
	// (a remote store, where that would cost a request per blob); a missing
	// blob is then found when it is read.
	LazyBlobs bool
}

// Run runs the suite. open must return a fresh, empty store each time.
func Run(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	t.Run("PutBytesReadBlob", func(t *testing.T) { testPutBytes(t, open) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, open) })
	t.Run("PutBlob", func(t *testing.T) { testPutBlob(t, open) })
	t.Run("ActionRoundTrip", func(t *testing.T) { testActionRoundTrip(t, open) })
	t.Run("ActionMissingBlob", func(t *testing.T) { testActionMissingBlob(t, open) })
	t.Run("HostileAction", func(t *testing.T) { testHostileAction(t, open) })
	t.Run("CorruptBlob", func(t *testing.T) { testDamagedBlob(t, open, "corrupt") })
	t.Run("TruncatedBlob", func(t *testing.T) { testDamagedBlob(t, open, "truncated") })
	t.Run("DeletedBlob", func(t *testing.T) { testDamagedBlob(t, open, "deleted") })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, open) })
	t.Run("LargeBlob", func(t *testing.T) { testLargeBlob(t, open) })
}

func testPutBytes(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, _ := open(t)
	for _, data := range [][]byte{[]byte("hello, blobs"), nil, Pattern(1, 3<<20), Pattern(2, 70000)} {
		d, err := s.PutBytes(ctx, data)
		if err != nil || d != cache.DigestBytes(data) {
			t.Fatalf("PutBytes(%d bytes) = %v, %v", len(data), d, err)
		}
		if !s.HasBlob(ctx, d, int64(len(data))) {
			t.Errorf("HasBlob false after PutBytes of %d bytes", len(data))
		}
		if s.HasBlob(ctx, d, int64(len(data))+1) {
			t.Error("HasBlob true for the wrong size")
		}
		if got := ReadAll(t, s, d); !bytes.Equal(got, data) {
			t.Errorf("ReadBlob returned %d bytes, want the %d stored", len(got), len(data))
		}
		if d2, err := s.PutBytes(ctx, data); err != nil || d2 != d {
			t.Errorf("second PutBytes = %v, %v", d2, err)
		}
	}
}

func testMissing(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, _ := open(t)
	d := cache.DigestBytes([]byte("never stored"))
	if s.HasBlob(ctx, d, 12) {
		t.Error("HasBlob true for a missing blob")
	}
	if rc, err := s.ReadBlob(ctx, d); !errors.Is(err, cache.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("ReadBlob(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAction(ctx, cache.KeyFromRecords([]string{"never"})); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("GetAction(missing) = %v, want ErrNotFound", err)
	}
}

func testPutBlob(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, _ := open(t)
	data := []byte("streamed")
	d := cache.DigestBytes(data)
	if err := s.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := ReadAll(t, s, d); !bytes.Equal(got, data) {
		t.Errorf("ReadBlob = %q", got)
	}
	liar := cache.DigestBytes([]byte("something else"))
	if err := s.PutBlob(ctx, liar, int64(len(data)), bytes.NewReader(data)); err == nil {
		t.Error("PutBlob stored content under the wrong digest")
	}
	if s.HasBlob(ctx, liar, int64(len(data))) {
		t.Error("mismatched PutBlob left a blob")
	}
	long := Pattern(3, 1<<20)
	short := cache.DigestBytes(long)
	if err := s.PutBlob(ctx, short, int64(len(long)), bytes.NewReader(long[:1000])); err == nil {
		t.Error("PutBlob accepted a short stream")
	}
	if err := s.PutBlob(ctx, short, int64(len(long)), io.MultiReader(bytes.NewReader(long), strings.NewReader("x"))); err == nil {
		t.Error("PutBlob accepted a stream longer than its size")
	}
	if s.HasBlob(ctx, short, int64(len(long))) {
		t.Error("a failed PutBlob left a blob")
	}
}

func testActionRoundTrip(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, _ := open(t)
	r := SampleResult(t, s, "round trip")
	if err := s.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAction(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !equalResults(got, r) {
		t.Errorf("GetAction = %+v\nwant %+v", got, r)
	}
	if err := s.PutAction(ctx, r); err != nil {
		t.Errorf("second PutAction: %v", err)
	}
	bad := *r
	bad.Outputs = cache.Manifest{Files: []cache.FileEntry{{Path: "../escape", Digest: r.Log, Size: r.LogSize}}}
	if err := s.PutAction(ctx, &bad); err == nil {
		t.Error("PutAction accepted an invalid result")
	}
}

func testActionMissingBlob(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, hooks := open(t)
	r := SampleResult(t, s, "missing blob")
	missing := cache.DigestBytes([]byte("not stored"))
	r.Outputs.Files = append(r.Outputs.Files, cache.FileEntry{Path: "zz", Digest: missing, Size: 10})
	if err := s.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetAction(ctx, r.Key)
	switch {
	case hooks.LazyBlobs && err != nil:
		t.Errorf("GetAction of a store with lazy blobs = %v, want the entry", err)
	case !hooks.LazyBlobs && !errors.Is(err, cache.ErrNotFound):
		t.Errorf("GetAction with a missing output blob = %v, want a miss", err)
	}
	if rc, err := s.ReadBlob(ctx, missing); !errors.Is(err, cache.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("ReadBlob of the missing output = %v, want ErrNotFound", err)
	}
}

func testHostileAction(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, hooks := open(t)
	good := SampleResult(t, s, "hostile")
	other := cache.KeyFromRecords([]string{"another action"})
	for _, tc := range []struct{ name, data string }{
		{"empty", ""},
		{"binary", "\x00\x01\x02\xff"},
		{"truncated JSON", `{"key": "%s", "outputs": {"files": [{"path": "a"`},
		{"unsafe path", `{"key": "%s", "outputs": {"files": [{"path": "../x", "digest": "` + good.Log.String() + `", "size": 1}]}}`},
		{"negative size", `{"key": "%s", "outputs": {"files": [{"path": "x", "digest": "` + good.Log.String() + `", "size": -1}]}}`},
		{"other key", `{"key": "` + other.String() + `", "outputs": {"files": []}}`},
		{"bad digest", `{"key": "%s", "outputs": {"files": [{"path": "x", "digest": "XYZ", "size": 1}]}}`},
	} {
		k := cache.KeyFromRecords([]string{"hostile", tc.name})
		data := tc.data
		if strings.Contains(data, "%s") {
			data = fmt.Sprintf(data, k)
		}
		hooks.WriteActionRaw(t, k, []byte(data))
		_, err := s.GetAction(ctx, k)
		var ce *cache.CorruptError
		if !errors.Is(err, cache.ErrNotFound) || !errors.As(err, &ce) {
			t.Errorf("%s: GetAction = %v, want a *CorruptError miss", tc.name, err)
			continue
		}
		if !strings.Contains(ce.What, k.String()) {
			t.Errorf("%s: corrupt entry %q does not name the key %s", tc.name, ce.What, k)
		}
		if _, err := s.GetAction(ctx, k); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("%s: second GetAction = %v, want a miss", tc.name, err)
		}
	}
}

// testDamagedBlob damages a stored blob and checks that it reads as a miss:
// a *CorruptError naming the digest (or ErrNotFound when deleted), and no
// longer present afterwards. Both a small and a multi-frame blob are tried.
func testDamagedBlob(t *testing.T, open func(t *testing.T) (cache.Store, Hooks), how string) {
	ctx := t.Context()
	s, hooks := open(t)
	for _, data := range [][]byte{Pattern(4, 5000), Pattern(5, 20<<20+12345)} {
		d, err := s.PutBytes(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(data))
		switch how {
		case "corrupt":
			hooks.CorruptBlob(t, d)
		case "truncated":
			hooks.TruncateBlob(t, d)
		case "deleted":
			hooks.DeleteBlob(t, d)
		}
		err = verify(ctx, s, hooks, d)
		var ce *cache.CorruptError
		switch {
		case !errors.Is(err, cache.ErrNotFound):
			t.Fatalf("%s blob of %d bytes read as %v, want a miss", how, size, err)
		case how != "deleted" && !errors.As(err, &ce):
			t.Fatalf("%s blob of %d bytes read as %v, want a *CorruptError", how, size, err)
		case ce != nil && !strings.Contains(ce.What, d.String()):
			t.Errorf("corrupt entry %q does not name the blob %s", ce.What, d)
		}
		if s.HasBlob(ctx, d, size) {
			t.Errorf("HasBlob true for a %s blob that was found bad", how)
		}
		if err := verify(ctx, s, hooks, d); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("second read of the %s blob = %v, want a miss", how, err)
		}
		// The next upload repairs it.
		if err := s.PutBlob(ctx, d, size, bytes.NewReader(data)); err != nil {
			t.Fatalf("re-uploading the %s blob: %v", how, err)
		}
		if got := ReadAll(t, s, d); !bytes.Equal(got, data) {
			t.Errorf("the %s blob was not repaired by a new upload", how)
		}
	}
}

// verify reads blob d completely and returns the first error.
func verify(ctx context.Context, s cache.Store, hooks Hooks, d cache.Digest) error {
	if hooks.Verify != nil {
		return hooks.Verify(d)
	}
	rc, err := s.ReadBlob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// ReadAll reads blob d from s, failing the test on any error.
func ReadAll(t *testing.T, s cache.Store, d cache.Digest) []byte {
	t.Helper()
	ctx := t.Context()
	rc, err := s.ReadBlob(ctx, d)
	if err != nil {
		t.Fatalf("ReadBlob(%s): %v", d.Short(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading blob %s: %v", d.Short(), err)
	}
	return b
}

// SampleResult stores two output blobs and a log in s and returns a result
// naming them, under a fresh key.
func SampleResult(t *testing.T, s cache.Store, name string) *cache.ActionResult {
	t.Helper()
	ctx := t.Context()
	var m cache.Manifest
	for _, f := range []struct {
		path, content string
		exec          bool
	}{{"bin/tool", "#!/bin/sh\necho hi\n", true}, {"out.txt", "output " + name, false}} {
		d, err := s.PutBytes(ctx, []byte(f.content))
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, cache.FileEntry{Path: f.path, Digest: d, Size: int64(len(f.content)), Executable: f.exec})
	}
	log := []byte("building " + name + "\n")
	ld, err := s.PutBytes(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	records := []string{"rule run 1", fmt.Sprintf("name %q", name), fmt.Sprintf("nonce %x", nonce)}
	return &cache.ActionResult{
		Key:     cache.KeyFromRecords(records),
		Label:   "//test:" + name,
		Outputs: m,
		Records: records,
		Log:     ld,
		LogSize: int64(len(log)),
		Started: time.Date(2025, 3, 1, 12, 30, 0, 123456789, time.UTC),
		Seconds: 1.5,
		Host:    "testhost",
	}
}

// Pattern returns size deterministic bytes, half incompressible and half
// very compressible, in alternating 1 MiB stretches, so that a compressing
// store exercises both its paths.
func Pattern(seed uint64, size int) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(NewPatternReader(seed, int64(size)), b)
	return b
}

// NewPatternReader yields the bytes of Pattern(seed, size) as a stream,
// without holding them.
func NewPatternReader(seed uint64, size int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	return io.LimitReader(&patternReader{rng: mrand.NewChaCha8(key)}, size)
}

type patternReader struct {
	rng *mrand.ChaCha8
	off int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		stretch := p.off >> 20
		k := min(int64(len(b)), (stretch+1)<<20-p.off)
		if stretch%2 == 0 {
			_, _ = p.rng.Read(b[:k])
		} else {
			for i := range b[:k] {
				o := p.off + int64(i)
				b[i] = "cogumi builds models "[o%21] ^ byte(o>>12)
			}
		}
		b = b[k:]
		p.off += k
	}
	return n, nil
}
