package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
	"github.com/cogumi/cogumi/internal/s3test"
)

// peakTransport records how many GET bodies are open at once.
type peakTransport struct {
	base      http.RoundTripper
	cur, peak atomic.Int64
}

func (p *peakTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet {
		return resp, err
	}
	n := p.cur.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	resp.Body = &closeHook{ReadCloser: resp.Body, f: func() { p.cur.Add(-1) }}
	return resp, nil
}

type closeHook struct {
	io.ReadCloser
	once sync.Once
	f    func()
}

func (c *closeHook) Close() error {
	c.once.Do(c.f)
	return c.ReadCloser.Close()
}

// TestSmallFramesAndParts uses tiny frames and parts, so that a few MiB
// make an object of hundreds of frames in several parts, then reads it
// back with parallel ranged GETs.
func TestSmallFramesAndParts(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	s.frameSize, s.partSize = minFrameSize, 5<<20
	peak := &peakTransport{base: s.rt.base}
	s.rt.base = peak
	data := cachetest.Pattern(12, 14<<20+777)
	d := cache.DigestBytes(data)
	before := s.Stats()
	if err := s.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	up := s.Stats()
	// HEAD, create, parts, complete.
	if parts := up.Requests - before.Requests - 3; parts < 2 {
		t.Errorf("%d parts, want a multipart upload", parts)
	}
	info, err := s.StatBlob(context.Background(), d)
	if err != nil || info.Format != formatFrames || info.StoredSize >= int64(len(data)) {
		t.Errorf("StatBlob = %+v, %v; want a smaller zstd-frames object", info, err)
	}
	if got := cachetest.ReadAll(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("read back other bytes")
	}
	down := s.Stats()
	frames := frameCount(int64(len(data)), minFrameSize)
	streamed := down.Requests - up.Requests - 1 // the first GET reads the tail
	if streamed < frames/chunkFrames || streamed > frames {
		t.Errorf("%d ranged GETs for %d frames", streamed, frames)
	}
	if p := peak.peak.Load(); p < 2 {
		t.Errorf("at most %d GETs at once, want parallel ranged GETs", p)
	}
	if down.BlobsDown != 1 || down.BlobBytesDown != int64(len(data)) || down.BlobsUp != 1 {
		t.Errorf("stats %+v", down)
	}
	// GetFile, whose window costs no memory, fetches frames in chunks.
	peak.peak.Store(0)
	dst := filepath.Join(t.TempDir(), "blob")
	if err := s.GetFile(context.Background(), d, int64(len(data)), dst); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetFile wrote other bytes (%v)", err)
	}
	if n := s.Stats().Requests - down.Requests - 1; n >= streamed || n < frames/chunkFrames {
		t.Errorf("GetFile made %d ranged GETs for %d frames; streaming made %d", n, frames, streamed)
	}
	if p := peak.peak.Load(); p < 2 {
		t.Errorf("GetFile made at most %d GETs at once", p)
	}
}

// TestPutFileGetFile moves a file larger than 64 MiB each way with the
// default frame and part sizes.
func TestPutFileGetFile(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 80 MiB each way")
	}
	srv := s3test.Start(t)
	var mu sync.Mutex
	moved := map[bool]int64{}
	var starts, dones int
	s := openTest(t, srv, func(c *Config) {
		c.Progress = func(ev ProgressEvent) {
			mu.Lock()
			defer mu.Unlock()
			moved[ev.Upload] += ev.Bytes
			if ev.Start {
				starts++
			}
			if ev.Done {
				dones++
				if ev.Err != nil {
					t.Errorf("progress reports %v", ev.Err)
				}
			}
		}
	})
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := cachetest.Pattern(13, 80<<20+5)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d, size := cache.DigestBytes(data), int64(len(data))
	if err := s.PutFile(context.Background(), d, size, src); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Requests < 6 {
		t.Errorf("%d requests: not a multipart upload", st.Requests)
	}
	if err := s.PutFile(context.Background(), d, size, src); err != nil || s.Stats().BlobsSkipped != 1 {
		t.Errorf("second PutFile: %v, %d skipped", err, s.Stats().BlobsSkipped)
	}
	dst := filepath.Join(dir, "dst")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.GetFile(context.Background(), d, size, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetFile wrote %d bytes (%v)", len(got), err)
	}
	if err := s.GetFile(context.Background(), d, size+1, dst); err == nil {
		t.Error("GetFile accepted the wrong size")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("GetFile left temporary files: %v", entries)
	}
	mu.Lock()
	defer mu.Unlock()
	if moved[true] != size || moved[false] != size || starts != 2 || dones != 2 {
		t.Errorf("progress: %d up, %d down, %d starts, %d dones", moved[true], moved[false], starts, dones)
	}
}

// TestRequestCounts pins the cost of each operation: a remote hit of an
// action is one request, as is a HEAD and the read of a small blob.
func TestRequestCounts(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	r := cachetest.SampleResult(t, s, "counts")
	if err := s.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	data := cachetest.Pattern(14, 200<<10)
	d, err := s.PutBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		op   func() error
		want int64
	}{
		// Two GETs sent together: ac/ and ac-chunked/ (see doc.go).
		{"GetAction", func() error { _, err := s.GetAction(ctx, r.Key); return err }, 2},
		{"GetAction miss", func() error { _, err := s.GetAction(ctx, cache.KeyFromRecords([]string{"x"})); return nilIfMiss(err) }, 2},
		{"HasBlob", func() error { s.HasBlob(ctx, d, int64(len(data))); return nil }, 1},
		{"ReadBlob small", func() error { _, err := io.ReadAll(mustOpen(t, s, d)); return err }, 1},
		{"PutBytes present", func() error { _, err := s.PutBytes(ctx, data); return err }, 1},
	} {
		before := s.Stats().Requests
		if err := tc.op(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := s.Stats().Requests - before; n != tc.want {
			t.Errorf("%s made %d requests, want %d", tc.name, n, tc.want)
		}
	}
}

func nilIfMiss(err error) error {
	if errors.Is(err, cache.ErrNotFound) {
		return nil
	}
	return err
}

func mustOpen(t *testing.T, s *Store, d cache.Digest) io.Reader {
	t.Helper()
	ctx := t.Context()
	rc, err := s.ReadBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

// TestReadOnly: a store without Upload reads, and refuses every write
// before making a request.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	w := openTest(t, srv)
	r := cachetest.SampleResult(t, w, "read only")
	if err := w.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, srv, func(c *Config) { c.URL = "s3://" + srv.Bucket + "/" + w.prefix; c.Upload = false })
	if _, err := s.GetAction(ctx, r.Key); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().Requests
	for name, err := range map[string]error{
		"PutBytes":     func() error { _, err := s.PutBytes(ctx, []byte("x")); return err }(),
		"PutBlob":      s.PutBlob(ctx, r.Log, r.LogSize, strings.NewReader("whatever")),
		"PutFile":      s.PutFile(ctx, r.Log, 1, "/nonexistent"),
		"PutAction":    s.PutAction(ctx, r),
		"DeleteBlob":   s.DeleteBlob(ctx, r.Log),
		"DeleteAction": s.DeleteAction(ctx, r.Key),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store = %v", name, err)
		}
	}
	if n := s.Stats().Requests - before; n != 0 {
		t.Errorf("read-only writes made %d requests", n)
	}
}

// TestListDelete covers what `cache gc --remote` needs.
func TestListDelete(t *testing.T) {
	srv := s3test.Start(t)
	s := openTest(t, srv)
	ctx := context.Background()
	r1, r2 := cachetest.SampleResult(t, s, "one"), cachetest.SampleResult(t, s, "two")
	for _, r := range []*cache.ActionResult{r1, r2} {
		if err := s.PutAction(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Foreign objects under the prefix are skipped.
	c := srv.Client(t)
	for _, k := range []string{s.objectKey("ac/README"), s.objectKey("cas/notes.txt")} {
		if _, err := c.PutObject(ctx, srv.Bucket, k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var actions []ActionEntry
	if err := s.ListActions(ctx, func(e ActionEntry) error { actions = append(actions, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(actions) != 2 || actions[0].LastModified.IsZero() || actions[0].Size == 0 {
		t.Fatalf("ListActions = %+v", actions)
	}
	var blobs []BlobEntry
	if err := s.ListBlobs(ctx, func(e BlobEntry) error { blobs = append(blobs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 5 { // two results of two outputs and a log; bin/tool is shared
		t.Fatalf("ListBlobs = %+v", blobs)
	}
	stop := errors.New("stop")
	if err := s.ListBlobs(ctx, func(BlobEntry) error { return stop }); err != stop {
		t.Errorf("ListBlobs returned %v, want the callback's error", err)
	}
	if err := s.DeleteAction(ctx, r1.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAction(ctx, r1.Key); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("GetAction after DeleteAction = %v", err)
	}
	if err := s.DeleteBlob(ctx, blobs[0].Digest); err != nil {
		t.Fatal(err)
	}
	if s.HasBlob(ctx, blobs[0].Digest, 0) {
		t.Error("blob still there after DeleteBlob")
	}
}
