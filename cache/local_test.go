package cache

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGetActionHostileEntries(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t)
	k := KeyFromRecords([]string{"hostile"})
	blob, err := c.PutBytes(ctx, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(key ActionKey, path, digest string, size int64) string {
		r := map[string]any{
			"key":     key.String(),
			"label":   "//h:x",
			"outputs": map[string]any{"files": []any{map[string]any{"path": path, "digest": digest, "size": size}}},
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ok := entry(k, "a.txt", blob.String(), 1)
	for _, tc := range []struct {
		name, data, reason string
	}{
		{"invalid JSON", `{"key": `, "invalid JSON"},
		{"not JSON at all", "\x00\x01\x02", "invalid JSON"},
		{"trailing garbage", ok + "}", "invalid JSON"},
		{"deep nesting", strings.Repeat("[", 100000), "invalid JSON"},
		{"dotdot path", entry(k, "../../etc/passwd", blob.String(), 1), `contains ".."`},
		{"absolute path", entry(k, "/etc/passwd", blob.String(), 1), "absolute"},
		{"size lie", entry(k, "a.txt", blob.String(), 2), "missing or has another size"},
		{"huge size", entry(k, "a.txt", blob.String(), 1<<62), "impossible size"},
		{"negative size", entry(k, "a.txt", blob.String(), -1), "impossible size"},
		{"missing blob", entry(k, "a.txt", DigestBytes([]byte("y")).String(), 1), "missing"},
		{"wrong key", entry(KeyFromRecords([]string{"other"}), "a.txt", blob.String(), 1), "it is for key"},
		{"bad digest", entry(k, "a.txt", "zz", 1), "invalid JSON"},
		{"uppercase digest", entry(k, "a.txt", strings.ToUpper(blob.String()), 1), "invalid JSON"},
		{"size as string", strings.Replace(ok, `"size":1`, `"size":"1"`, 1), "invalid JSON"},
		{"size overflow", strings.Replace(ok, `"size":1`, `"size":1e300`, 1), "invalid JSON"},
		{"null key", strings.Replace(ok, `"key":"`+k.String()+`"`, `"key":null`, 1), "it is for key"},
		{"empty", "", "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeRawAction(t, c, k, []byte(tc.data))
			r, err := c.GetAction(ctx, k)
			var ce *CorruptError
			if r != nil || !errors.Is(err, ErrNotFound) || !errors.As(err, &ce) {
				t.Fatalf("GetAction = %v, %v; want a *CorruptError", r, err)
			}
			if !strings.Contains(ce.Reason, tc.reason) || !strings.Contains(ce.What, k.String()) {
				t.Errorf("error %q: want the key and %q", err, tc.reason)
			}
			if _, err := os.Stat(c.actionPath(k)); !os.IsNotExist(err) {
				t.Errorf("corrupt entry not removed: %v", err)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		writeRawAction(t, c, k, []byte(ok))
		if r, err := c.GetAction(ctx, k); err != nil || r.Outputs.Files[0].Digest != blob {
			t.Fatalf("GetAction = %v, %v", r, err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		writeRawAction(t, c, k, nil)
		if err := os.Truncate(c.actionPath(k), maxActionJSON+1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetAction(ctx, k); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("GetAction(huge) = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if err := os.Mkdir(c.actionPath(k), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetAction(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAction(directory) = %v", err)
		}
	})
}

func TestVerifyBlob(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t)
	d, err := c.PutBytes(ctx, []byte("precious"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyBlob(d); err != nil {
		t.Fatalf("VerifyBlob(good) = %v", err)
	}
	info, err := os.Stat(c.BlobPath(d))
	if err != nil || info.Mode().Perm() != 0o444 {
		t.Errorf("blob mode = %v, %v; want 0444", info.Mode(), err)
	}
	// Someone wrote through a hard link: same size, other content.
	if err := os.Chmod(c.BlobPath(d), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.BlobPath(d), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !c.HasBlob(ctx, d, 8) {
		t.Fatal("HasBlob checks only the size, so it should still say yes")
	}
	err = c.VerifyBlob(d)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("VerifyBlob(tampered) = %v", err)
	}
	if c.HasBlob(ctx, d, 8) {
		t.Error("corrupt blob not removed")
	}
	if err := c.VerifyBlob(d); !errors.Is(err, ErrNotFound) {
		t.Errorf("VerifyBlob(missing) = %v", err)
	}
}

func TestOpenLocalLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "deep", "cache")
	c, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"cas", "ac", "tmp", "locks"} {
		if info, err := os.Stat(filepath.Join(dir, sub)); err != nil || !info.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	d := DigestBytes(nil)
	if want := filepath.Join(dir, "cas", "af", d.String()); c.BlobPath(d) != want {
		t.Errorf("BlobPath = %s, want %s", c.BlobPath(d), want)
	}
	// A stale temporary file is removed on open, a fresh one is kept.
	stale, fresh := filepath.Join(dir, "tmp", "put-stale"), filepath.Join(dir, "tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocal(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale temporary file kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("fresh temporary file removed")
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, err := DefaultDir(); err != nil || d != "/x/cache/cogumi" {
		t.Errorf("DefaultDir = %s, %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := DefaultDir(); err != nil || d != "/home/u/.cache/cogumi" {
		t.Errorf("DefaultDir = %s, %v", d, err)
	}
}
