package cache

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// storeHooks lets the conformance suite damage a backend's entries.
type storeHooks struct {
	// writeActionRaw stores data as the raw entry for key k.
	writeActionRaw func(t *testing.T, k ActionKey, data []byte)
}

// testStore is the conformance suite every Store passes.
func testStore(t *testing.T, open func(t *testing.T) (Store, storeHooks)) {
	t.Run("PutBytesReadBlob", func(t *testing.T) {
		s, _ := open(t)
		data := []byte("hello, blobs")
		d, err := s.PutBytes(data)
		if err != nil || d != DigestBytes(data) {
			t.Fatalf("PutBytes = %v, %v", d, err)
		}
		if !s.HasBlob(d, int64(len(data))) {
			t.Error("HasBlob false after PutBytes")
		}
		if s.HasBlob(d, int64(len(data))+1) {
			t.Error("HasBlob true for the wrong size")
		}
		if got := readAll(t, s, d); !bytes.Equal(got, data) {
			t.Errorf("ReadBlob = %q", got)
		}
		if d2, err := s.PutBytes(data); err != nil || d2 != d {
			t.Errorf("second PutBytes = %v, %v", d2, err)
		}
		if d, err := s.PutBytes(nil); err != nil || !s.HasBlob(d, 0) {
			t.Errorf("empty blob: %v, %v", d, err)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		s, _ := open(t)
		d := DigestBytes([]byte("never stored"))
		if s.HasBlob(d, 12) {
			t.Error("HasBlob true for a missing blob")
		}
		if _, err := s.ReadBlob(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("ReadBlob(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.GetAction(KeyFromRecords([]string{"never"})); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAction(missing) = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutBlob", func(t *testing.T) {
		s, _ := open(t)
		data := []byte("streamed")
		d := DigestBytes(data)
		if err := s.PutBlob(d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, s, d); !bytes.Equal(got, data) {
			t.Errorf("ReadBlob = %q", got)
		}
		liar := DigestBytes([]byte("something else"))
		if err := s.PutBlob(liar, int64(len(data)), bytes.NewReader(data)); err == nil {
			t.Error("PutBlob stored content under the wrong digest")
		}
		if s.HasBlob(liar, int64(len(data))) {
			t.Error("mismatched PutBlob left a blob")
		}
		short := DigestBytes([]byte("longer content"))
		if err := s.PutBlob(short, 14, bytes.NewReader([]byte("longer"))); err == nil {
			t.Error("PutBlob accepted a short stream")
		}
	})
	t.Run("ActionRoundTrip", func(t *testing.T) {
		s, _ := open(t)
		r := sampleResult(t, s, "round trip")
		if err := s.PutAction(r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAction(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("GetAction = %+v\nwant %+v", got, r)
		}
		if err := s.PutAction(r); err != nil {
			t.Errorf("second PutAction: %v", err)
		}
		bad := *r
		bad.Outputs = files("../escape")
		if err := s.PutAction(&bad); err == nil {
			t.Error("PutAction accepted an invalid result")
		}
	})
	t.Run("ActionMissingBlob", func(t *testing.T) {
		s, _ := open(t)
		r := sampleResult(t, s, "missing blob")
		r.Outputs.Files = append(r.Outputs.Files, FileEntry{Path: "zz", Digest: DigestBytes([]byte("not stored")), Size: 10})
		if err := s.PutAction(r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAction(r.Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAction with a missing output blob = %v, want a miss", err)
		}
	})
	t.Run("CorruptAction", func(t *testing.T) {
		s, hooks := open(t)
		k := KeyFromRecords([]string{"corrupt"})
		hooks.writeActionRaw(t, k, []byte(`{"key": "`+k.String()+`", "outputs": {"files": [{"path": "../x"`))
		_, err := s.GetAction(k)
		var ce *CorruptError
		if !errors.Is(err, ErrNotFound) || !errors.As(err, &ce) {
			t.Fatalf("GetAction(corrupt) = %v, want a *CorruptError miss", err)
		}
		if _, err := s.GetAction(k); !errors.Is(err, ErrNotFound) {
			t.Errorf("second GetAction(corrupt) = %v, want a miss", err)
		}
	})
	t.Run("ConcurrentWriters", func(t *testing.T) {
		s, _ := open(t)
		data := bytes.Repeat([]byte("same content "), 100000)
		r := sampleResult(t, s, "concurrent")
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.PutBytes(data); err != nil {
					errs <- err
				}
				if err := s.PutBlob(DigestBytes(data), int64(len(data)), bytes.NewReader(data)); err != nil {
					errs <- err
				}
				if err := s.PutAction(r); err != nil {
					errs <- err
				}
				if _, err := s.GetAction(r.Key); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := readAll(t, s, DigestBytes(data)); !bytes.Equal(got, data) {
			t.Error("concurrent writers left a different blob")
		}
	})
	t.Run("LargeBlob", func(t *testing.T) {
		s, _ := open(t)
		size := int64(96 << 20)
		if testing.Short() {
			size = 9 << 20
		}
		d, _, err := DigestReader(io.LimitReader(repeatReader{}, size))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutBlob(d, size, io.LimitReader(repeatReader{}, size)); err != nil {
			t.Fatal(err)
		}
		rc, err := s.ReadBlob(d)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, n, err := DigestReader(rc)
		if err != nil || got != d || n != size || !s.HasBlob(d, size) {
			t.Errorf("large blob read back as %s, %d bytes, %v", got.Short(), n, err)
		}
	})
}

// repeatReader yields an endless, non-trivial byte pattern.
type repeatReader struct{}

func (repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*31 + i>>9)
	}
	return len(p), nil
}

// readAll reads blob d from s.
func readAll(t *testing.T, s Store, d Digest) []byte {
	t.Helper()
	rc, err := s.ReadBlob(d)
	if err != nil {
		t.Fatalf("ReadBlob(%s): %v", d.Short(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleResult stores two output blobs and a log in s and returns a result
// naming them, under a fresh key.
func sampleResult(t *testing.T, s Store, name string) *ActionResult {
	t.Helper()
	var m Manifest
	for _, f := range []struct {
		path, content string
		exec          bool
	}{{"bin/tool", "#!/bin/sh\necho hi\n", true}, {"out.txt", "output " + name, false}} {
		d, err := s.PutBytes([]byte(f.content))
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, FileEntry{Path: f.path, Digest: d, Size: int64(len(f.content)), Executable: f.exec})
	}
	log := []byte("building " + name + "\n")
	ld, err := s.PutBytes(log)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	records := []string{"rule run 1", fmt.Sprintf("name %q", name), fmt.Sprintf("nonce %x", nonce)}
	return &ActionResult{
		Key:     KeyFromRecords(records),
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

func TestLocalConformance(t *testing.T) {
	testStore(t, func(t *testing.T) (Store, storeHooks) {
		c := openTestCache(t)
		return c, storeHooks{writeActionRaw: func(t *testing.T, k ActionKey, data []byte) {
			writeRawAction(t, c, k, data)
		}}
	})
}

// openTestCache opens a fresh Local in a temporary directory.
func openTestCache(t *testing.T) *Local {
	t.Helper()
	c, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeRawAction writes data as the AC entry of k, bypassing validation.
func writeRawAction(t *testing.T, c *Local, k ActionKey, data []byte) {
	t.Helper()
	p := c.actionPath(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
