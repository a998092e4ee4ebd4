package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
	"github.com/cogumi/cogumi/internal/s3test"
)

// openTest opens a store on srv under a fresh prefix, with the server's
// credentials in the environment (the only way in: see Open).
func openTest(t *testing.T, srv *s3test.Server, change ...func(*Config)) *Store {
	t.Helper()
	srv.Env(t)
	cfg := Config{URL: "s3://" + srv.Bucket + "/t/" + randomName(), Endpoint: srv.Endpoint, Upload: true}
	for _, c := range change {
		c(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	srv.Env(t)
	cachetest.Run(t, func(t *testing.T) (cache.Store, cachetest.Hooks) {
		s := openTest(t, srv)
		return s, rawHooks(t, srv, s)
	})
}

// rawHooks damages objects with a plain minio-go client, as another tool,
// a broken server or bit rot would.
func rawHooks(t *testing.T, srv *s3test.Server, s *Store) cachetest.Hooks {
	c := srv.Client(t)
	ctx := context.Background()
	rewrite := func(t *testing.T, d cache.Digest, change func([]byte) []byte) {
		t.Helper()
		key := s.blobKey(d)
		if refs, _, err := s.getChunkList(ctx, d, -1); err == nil {
			key = s.chunkKey(refs[len(refs)/2].Digest) // a chunked blob: damage a chunk
		}
		obj, err := c.GetObject(ctx, srv.Bucket, key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		if err != nil {
			t.Fatal(err)
		}
		info, err := obj.Stat()
		if err != nil {
			t.Fatal(err)
		}
		// Keep the metadata: the damage must be found by reading.
		meta := map[string]string{}
		for _, m := range []string{metaDigest, metaSize, metaFormat} {
			meta[m] = info.Metadata.Get("X-Amz-Meta-" + m)
		}
		data = change(data)
		if _, err := c.PutObject(ctx, srv.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{UserMetadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	return cachetest.Hooks{
		WriteActionRaw: func(t *testing.T, k cache.ActionKey, data []byte) {
			// Unsigned payload: versitygw misreads minio-go's streaming
			// signature of an empty body (an "Unsolicited response" later).
			opts := minio.PutObjectOptions{DisableContentSha256: true}
			if _, err := c.PutObject(ctx, srv.Bucket, s.actionKey(k), bytes.NewReader(data), int64(len(data)), opts); err != nil {
				t.Fatal(err)
			}
		},
		CorruptBlob: func(t *testing.T, d cache.Digest) {
			rewrite(t, d, func(b []byte) []byte {
				for i := len(b) / 3; i < len(b)/3+16 && i < len(b); i++ {
					b[i] ^= 0x5a
				}
				return b
			})
		},
		TruncateBlob: func(t *testing.T, d cache.Digest) {
			rewrite(t, d, func(b []byte) []byte { return b[:len(b)/2] })
		},
		DeleteBlob: func(t *testing.T, d cache.Digest) {
			for _, key := range []string{s.blobKey(d), s.chunkListKey(d)} {
				if err := c.RemoveObject(ctx, srv.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		},
		LazyBlobs: true,
	}
}

// TestOverwrittenObject replaces a blob's object with other bytes and no
// metadata, as another tool would: a *CorruptError naming the object, a
// miss until the next upload repairs it.
func TestOverwrittenObject(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	data := cachetest.Pattern(11, 3<<20)
	d, err := s.PutBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	other := []byte("not the blob at all")
	if _, err := srv.Client(t).PutObject(context.Background(), srv.Bucket, s.blobKey(d), bytes.NewReader(other), int64(len(other)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ReadBlob(ctx, d)
	var ce *cache.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("ReadBlob of an overwritten object = %v, want a *CorruptError", err)
	}
	if !strings.Contains(ce.What, d.String()) || !strings.Contains(ce.What, s.blobKey(d)) {
		t.Errorf("corrupt entry %q names neither the digest nor the object", ce.What)
	}
	if s.HasBlob(ctx, d, int64(len(data))) {
		t.Error("HasBlob true for an overwritten object")
	}
	// A second store (another machine) finds it bad too, and its upload
	// repairs it for everyone.
	s2 := openTest(t, srv, func(c *Config) { c.URL = "s3://" + srv.Bucket + "/" + s.prefix })
	if s2.HasBlob(ctx, d, int64(len(data))) {
		t.Error("a fresh store's HasBlob true for an object without metadata")
	}
	if err := s2.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := cachetest.ReadAll(t, s, d); !bytes.Equal(got, data) {
		t.Error("not repaired")
	}
}
