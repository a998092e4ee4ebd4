package cache

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeFiles creates files under dir: path -> content; a path ending in
// "*" is made executable (the "*" is dropped).
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAdoptFile(t *testing.T) {
	c := openTestCache(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": "content", "b": "content"})
	d, n, err := c.AdoptFile(filepath.Join(dir, "a"))
	if err != nil || d != DigestBytes([]byte("content")) || n != 7 {
		t.Fatalf("AdoptFile = %s, %d, %v", d.Short(), n, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Error("adopted file still in place")
	}
	info, err := os.Stat(c.BlobPath(d))
	if err != nil || info.Mode().Perm() != 0o444 {
		t.Fatalf("blob: %v, %v", info, err)
	}
	// The same content again: the file is just removed.
	if d2, _, err := c.AdoptFile(filepath.Join(dir, "b")); err != nil || d2 != d {
		t.Fatalf("second AdoptFile = %s, %v", d2.Short(), err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Error("duplicate file still in place")
	}
	if _, _, err := c.AdoptFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("AdoptFile(missing) succeeded")
	}
}

// A file with another hard link (a source, an input) must be copied: the
// other name must keep its mode and must not become a blob.
func TestAdoptFileWithOtherLinks(t *testing.T) {
	c := openTestCache(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"source.txt": "user data"})
	src, out := filepath.Join(dir, "source.txt"), filepath.Join(dir, "out.txt")
	if err := os.Link(src, out); err != nil {
		t.Fatal(err)
	}
	d, _, err := c.AdoptFile(out)
	if err != nil {
		t.Fatal(err)
	}
	srcInfo, err := os.Stat(src)
	if err != nil || srcInfo.Mode().Perm() != 0o644 {
		t.Fatalf("source: %v, %v", srcInfo, err)
	}
	blobInfo, err := os.Stat(c.BlobPath(d))
	if err != nil || os.SameFile(srcInfo, blobInfo) {
		t.Errorf("blob shares the source's inode (%v)", err)
	}
}

func TestAdoptTree(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"model.safetensors": "weights",
		"run.sh*":           "#!/bin/sh\n",
		"sub/deep/x.txt":    "x",
		"sub/y.txt":         "weights",
	})
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Links inside the tree are stored as copies of their targets.
	if err := os.Symlink("sub/deep/x.txt", filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "run.sh"), filepath.Join(dir, "sub/run-abs")); err != nil {
		t.Fatal(err)
	}
	m, err := c.AdoptTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path, content string
		exec          bool
	}{
		{"link.txt", "x", false},
		{"model.safetensors", "weights", false},
		{"run.sh", "#!/bin/sh\n", true},
		{"sub/deep/x.txt", "x", false},
		{"sub/run-abs", "#!/bin/sh\n", true},
		{"sub/y.txt", "weights", false},
	}
	if len(m.Files) != len(want) {
		t.Fatalf("manifest = %+v", m.Files)
	}
	for i, w := range want {
		f := m.Files[i]
		if f.Path != w.path || f.Digest != DigestBytes([]byte(w.content)) || f.Size != int64(len(w.content)) || f.Executable != w.exec {
			t.Errorf("file %d = %+v, want %+v", i, f, w)
		}
		if !c.HasBlob(ctx, f.Digest, f.Size) {
			t.Errorf("%s: blob missing", f.Path)
		}
	}
}

func TestAdoptTreeRefuses(t *testing.T) {
	c := openTestCache(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"link outside", func(t *testing.T, dir string) {
			outside := filepath.Join(t.TempDir(), "secret")
			writeFiles(t, filepath.Dir(outside), map[string]string{"secret": "s"})
			if err := os.Symlink(outside, filepath.Join(dir, "leak")); err != nil {
				t.Fatal(err)
			}
		}, "leak is a symlink to"},
		{"relative link outside", func(t *testing.T, dir string) {
			writeFiles(t, filepath.Dir(dir), map[string]string{"outside.txt": "o"})
			if err := os.Symlink("../outside.txt", filepath.Join(dir, "rel")); err != nil {
				t.Fatal(err)
			}
		}, "rel is a symlink to ../outside.txt, outside the output directory"},
		{"broken link", func(t *testing.T, dir string) {
			if err := os.Symlink("nowhere", filepath.Join(dir, "dangling")); err != nil {
				t.Fatal(err)
			}
		}, "dangling is a broken symlink"},
		{"link to directory", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"d/f": "f"})
			if err := os.Symlink("d", filepath.Join(dir, "dlink")); err != nil {
				t.Fatal(err)
			}
		}, "dlink is a symlink to d, which is a directory"},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "pipe is a named pipe"},
		{"backslash name", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{`a\b`: "x"})
		}, "unusable name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"ok.txt": "fine"})
			tc.setup(t, dir)
			_, err := c.AdoptTree(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AdoptTree = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
