package cachetest

import (
	"bytes"
	"reflect"
	"sync"
	"testing"

	"github.com/cogumi/cogumi/cache"
)

// testConcurrentWriters has many goroutines put the same blobs and action
// result at once, as machines of a team building the same target do: every
// put succeeds and one consistent entry remains.
func testConcurrentWriters(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, _ := open(t)
	small := bytes.Repeat([]byte("same content "), 100000)
	multi := Pattern(6, 19<<20) // several frames and parts in a remote store
	r := SampleResult(t, s, "concurrent")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			if _, err := s.PutBytes(ctx, small); err != nil {
				errs <- err
			}
			if err := s.PutBlob(ctx, cache.DigestBytes(small), int64(len(small)), bytes.NewReader(small)); err != nil {
				errs <- err
			}
			if i < 3 {
				if err := s.PutBlob(ctx, cache.DigestBytes(multi), int64(len(multi)), bytes.NewReader(multi)); err != nil {
					errs <- err
				}
			}
			if err := s.PutAction(ctx, r); err != nil {
				errs <- err
			}
			if _, err := s.GetAction(ctx, r.Key); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ReadAll(t, s, cache.DigestBytes(small)); !bytes.Equal(got, small) {
		t.Error("concurrent writers left a different blob")
	}
	if got := ReadAll(t, s, cache.DigestBytes(multi)); !bytes.Equal(got, multi) {
		t.Error("concurrent writers left a different multi-part blob")
	}
	if got, err := s.GetAction(ctx, r.Key); err != nil || !equalResults(got, r) {
		t.Errorf("after concurrent writers GetAction = %+v, %v", got, err)
	}
}

// testLargeBlob streams a blob larger than 64 MiB (which a remote store must
// send in several parts) from two writers at once and reads it back. Under
// -short it uses 9 MiB.
func testLargeBlob(t *testing.T, open func(t *testing.T) (cache.Store, Hooks)) {
	ctx := t.Context()
	s, _ := open(t)
	size := int64(96<<20 + 4321)
	if testing.Short() {
		size = 9 << 20
	}
	d, n, err := cache.DigestReader(NewPatternReader(7, size))
	if err != nil || n != size {
		t.Fatal(n, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = s.PutBlob(ctx, d, size, NewPatternReader(7, size)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("PutBlob of %d bytes: %v", size, err)
		}
	}
	if !s.HasBlob(ctx, d, size) {
		t.Error("HasBlob false after a large PutBlob")
	}
	rc, err := s.ReadBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, n, err := cache.DigestReader(rc)
	if err != nil || got != d || n != size {
		t.Errorf("large blob read back as %s, %d bytes, %v", got.Short(), n, err)
	}
}

// equalResults compares two action results field by field.
func equalResults(a, b *cache.ActionResult) bool { return reflect.DeepEqual(a, b) }
