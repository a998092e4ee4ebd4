package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
	"github.com/cogumi/cogumi/internal/s3test"
)

// checkUnavailable checks that err is a clear ErrUnavailable error.
func checkUnavailable(t *testing.T, op string, err error, srv *s3test.Server, words ...string) {
	t.Helper()
	if err == nil || !errors.Is(err, ErrUnavailable) {
		t.Errorf("%s: %v, want ErrUnavailable", op, err)
		return
	}
	for _, w := range append([]string{srv.Endpoint, srv.Bucket}, words...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not say %q", op, err, w)
		}
	}
}

// TestServerStopped: with the server gone every operation fails within
// seconds with a clear error, then fails fast; after a restart it works.
func TestServerStopped(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	s.downFor = time.Second
	r := cachetest.SampleResult(t, s, "stopped")
	if err := s.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err := s.GetAction(ctx, r.Key)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("GetAction took %v against a stopped server", took)
	}
	checkUnavailable(t, "GetAction", err, srv, "connection refused")
	start = time.Now()
	for name, op := range map[string]func() error{
		"ReadBlob": func() error { _, err := s.ReadBlob(ctx, r.Log); return err },
		"PutBytes": func() error { _, err := s.PutBytes(ctx, []byte("new")); return err },
		"StatBlob": func() error { _, err := s.StatBlob(context.Background(), r.Log); return err },
	} {
		checkUnavailable(t, name, op(), srv, "not tried")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("a known-down server was tried again (%v)", took)
	}
	if s.HasBlob(ctx, r.Log, r.LogSize) {
		t.Error("HasBlob true with the server down")
	}
	srv.Restart(t)
	time.Sleep(s.downFor)
	if _, err := s.GetAction(ctx, r.Key); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}

// stopAfter calls stop once n bytes have been read through it.
type stopAfter struct {
	r    io.Reader
	n    int64
	once sync.Once
	stop func()
}

func (s *stopAfter) Read(p []byte) (int, error) {
	if s.n <= 0 {
		s.once.Do(s.stop)
	}
	n, err := s.r.Read(p)
	s.n -= int64(n)
	return n, err
}

// TestServerStoppedMidTransfer stops the server in the middle of an upload
// and of a download: both fail within seconds, and nothing partial is left.
func TestServerStoppedMidTransfer(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	size := int64(64 << 20)
	d, _, _ := cache.DigestReader(cachetest.NewPatternReader(15, size))
	start := time.Now()
	err := s.PutBlob(ctx, d, size, &stopAfter{r: cachetest.NewPatternReader(15, size), n: 40 << 20, stop: srv.Stop})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("interrupted upload took %v", took)
	}
	checkUnavailable(t, "PutBlob", err, srv)

	srv.Restart(t)
	s = openTest(t, srv, func(c *Config) { c.URL = "s3://" + srv.Bucket + "/" + s.prefix })
	if s.HasBlob(ctx, d, size) {
		t.Fatal("an interrupted upload left a blob")
	}
	if err := s.PutBlob(ctx, d, size, cachetest.NewPatternReader(15, size)); err != nil {
		t.Fatal(err)
	}
	rc, err := s.ReadBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, 1<<20); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start = time.Now()
	_, err = io.Copy(io.Discard, rc)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("interrupted download took %v", took)
	}
	checkUnavailable(t, "ReadBlob", err, srv)
}

// TestStalledServer: a server that accepts connections but never answers
// fails a request after the idle timeout.
func TestStalledServer(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv, func(c *Config) { c.IdleTimeout = 500 * time.Millisecond })
	srv.Pause(t)
	defer srv.Resume(t)
	start := time.Now()
	_, err := s.GetAction(ctx, cache.KeyFromRecords([]string{"stalled"}))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v to give up on a stalled server", took)
	}
	if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no progress for 500ms") || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Errorf("GetAction on a stalled server = %v", err)
	}
}

// slowTransport moves request and response bodies in small sips, so that
// a request lasts much longer than the idle timeout while making progress.
type slowTransport struct{ base http.RoundTripper }

func (s slowTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(&slowReader{r: req.Body})
		req = r
	}
	resp, err := s.base.RoundTrip(req)
	if resp != nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{&slowReader{r: resp.Body}, resp.Body}
	}
	return resp, err
}

type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(50 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 256<<10)])
}

// TestNoAbsoluteTimeout: transfers much longer than the idle timeout
// succeed as long as bytes keep moving.
func TestNoAbsoluteTimeout(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	s.rt.base = slowTransport{s.rt.base}
	data := cachetest.Pattern(16, 6<<20) // a few seconds each way
	start := time.Now()
	d, err := s.PutBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got := cachetest.ReadAll(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("read back other bytes")
	}
	if took := time.Since(start); took < time.Second {
		t.Logf("transfers took only %v; the test proves little", took)
	}
	if st := s.Stats(); st.Retries != 0 {
		t.Errorf("%d retries: a slow transfer was cut", st.Retries)
	}
}

// TestBadCredentials: a wrong secret or access key gives a clear error
// that never contains a credential.
func TestBadCredentials(t *testing.T) {
	srv := s3test.Start(t)
	good := openTest(t, srv)
	r := cachetest.SampleResult(t, good, "creds")
	if err := good.PutAction(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	url := "s3://" + srv.Bucket + "/" + good.prefix
	for _, tc := range []struct{ name, env, value string }{
		{"wrong secret", "AWS_SECRET_ACCESS_KEY", "wrong-secret-" + randomName() + randomName()},
		{"wrong access key", "AWS_ACCESS_KEY_ID", "AKIAWRONG" + strings.ToUpper(randomName())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, srv, func(c *Config) { c.URL = url })
			t.Setenv(tc.env, tc.value)
			ctx := context.Background()
			// GetAction first: the first error is the one the others repeat.
			_, getErr := s.GetAction(ctx, r.Key)
			errs := map[string]error{
				"GetAction":  getErr,
				"Check":      s.Check(ctx),
				"ReadBlob":   func() error { _, err := s.ReadBlob(ctx, r.Log); return err }(),
				"PutBytes":   func() error { _, err := s.PutBytes(ctx, []byte("x")); return err }(),
				"PutAction":  s.PutAction(ctx, r),
				"ListBlobs":  s.ListBlobs(ctx, func(BlobEntry) error { return nil }),
				"DeleteBlob": s.DeleteBlob(ctx, r.Log),
			}
			for op, err := range errs {
				if err == nil {
					t.Errorf("%s succeeded with %s", op, tc.name)
					continue
				}
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("%s: %v, want ErrUnavailable", op, err)
				}
				for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprint(errors.Unwrap(err))} {
					for _, secret := range []string{tc.value, srv.SecretKey, srv.AccessKey} {
						if strings.Contains(text, secret) {
							t.Errorf("%s: error text %q contains a credential", op, text)
						}
					}
				}
			}
			if err := errs["GetAction"]; err != nil && !strings.Contains(err.Error(), "credentials") {
				t.Errorf("GetAction: %q does not point at the credentials", err)
			}
		})
	}
}

// TestTwoMachines: two stores (two machines) push the same target at once;
// both succeed and one consistent entry remains.
func TestTwoMachines(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	a := openTest(t, srv)
	b := openTest(t, srv, func(c *Config) { c.URL = "s3://" + srv.Bucket + "/" + a.prefix })
	data := cachetest.Pattern(17, 40<<20)
	d := cache.DigestBytes(data)
	r := cachetest.SampleResult(t, a, "two machines")
	r.Outputs.Files = append(r.Outputs.Files, cache.FileEntry{Path: "weights.bin", Digest: d, Size: int64(len(data))})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			errs[2*i] = s.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data))
			errs[2*i+1] = s.PutAction(ctx, r)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		if got, err := s.GetAction(ctx, r.Key); err != nil || got.Outputs.Files[2].Digest != d {
			t.Errorf("GetAction = %v, %v", got, err)
		}
		if got := cachetest.ReadAll(t, s, d); !bytes.Equal(got, data) {
			t.Error("the blob reads back as other bytes")
		}
	}
}
