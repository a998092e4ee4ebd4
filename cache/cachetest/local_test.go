package cachetest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
)

// TestLocal runs the suite over the local disk store. It lives here, not in
// package cache, because package cache's own tests cannot import cachetest
// (cachetest imports cache: an import cycle).
func TestLocal(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) (cache.Store, cachetest.Hooks) {
		c, err := cache.OpenLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return c, localHooks(c)
	})
}

// localHooks damages a Local's files directly, as a disk or a user might.
func localHooks(c *cache.Local) cachetest.Hooks {
	rewrite := func(t *testing.T, d cache.Digest, change func([]byte) []byte) {
		t.Helper()
		p := c.BlobPath(d)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, change(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cachetest.Hooks{
		WriteActionRaw: func(t *testing.T, k cache.ActionKey, data []byte) {
			// The layout documented on cache.Local: ac/<2 hex>/<64 hex>.json.
			p := filepath.Join(c.Dir(), "ac", k.String()[:2], k.String()+".json")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		CorruptBlob: func(t *testing.T, d cache.Digest) {
			rewrite(t, d, func(b []byte) []byte {
				for i := len(b) / 3; i < len(b) && i < len(b)/3+16; i++ {
					b[i] ^= 0x5a
				}
				return b
			})
		},
		TruncateBlob: func(t *testing.T, d cache.Digest) {
			rewrite(t, d, func(b []byte) []byte { return b[:len(b)/2] })
		},
		DeleteBlob: func(t *testing.T, d cache.Digest) {
			if err := os.Remove(c.BlobPath(d)); err != nil {
				t.Fatal(err)
			}
		},
		Verify: c.VerifyBlob,
	}
}
