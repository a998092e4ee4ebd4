package cache

import (
	"os"
	"path/filepath"
	"testing"
)

// The Store conformance suite lives in package cache/cachetest, which runs
// it over Local (cachetest's TestLocal) and the S3 store (package cache/s3).
// It cannot be called from here: cachetest imports cache, and an internal
// test of package cache importing it would be an import cycle. What remains
// here are the helpers the other tests of this package share.

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
