package cache

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// storeTree puts files (path -> content, "*" suffix for executable) into c
// and returns their manifest.
func storeTree(t *testing.T, c *Local, files map[string]string) Manifest {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	m, err := c.AdoptTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// listTree returns path -> content of every file under dir, with "*" after
// the path of executable files and "@" after the path of symlinks.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if info.Mode()&os.ModeSymlink != 0 {
			got[rel+"@"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if info.Mode()&0o111 != 0 {
			rel += "*"
		}
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMaterialize(t *testing.T) {
	c := openTestCache(t)
	files := map[string]string{"a.txt": "a", "bin/tool*": "#!/bin/sh\necho tool\n", "d/e/f.txt": "f", "same.txt": "a"}
	m := storeTree(t, c, files)
	out := filepath.Join(t.TempDir(), "cogumi-out", "pkg", "target")
	if err := c.Materialize(m, out); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, out); !equalMaps(got, files) {
		t.Errorf("tree = %v, want %v", got, files)
	}
	for _, f := range m.Files {
		p := filepath.Join(out, filepath.FromSlash(f.Path))
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		blob := c.BlobPath(f.Digest)
		wantMode := os.FileMode(0o444)
		if f.Executable {
			blob, wantMode = c.execPath(f.Digest), 0o555
		}
		blobInfo, err := os.Stat(blob)
		if err != nil || !os.SameFile(info, blobInfo) {
			t.Errorf("%s is not a hard link to %s (%v)", f.Path, blob, err)
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", f.Path, info.Mode().Perm(), wantMode)
		}
	}
	if b, err := exec.Command(filepath.Join(out, "bin", "tool")).Output(); err != nil || string(b) != "tool\n" {
		t.Errorf("running the materialized tool: %q, %v", b, err)
	}
	// The plain blob of an executable file stays 0444.
	tool, _ := m.Lookup("bin/tool")
	if info, err := os.Stat(c.BlobPath(tool.Digest)); err != nil || info.Mode().Perm() != 0o444 {
		t.Errorf("blob of the tool: %v, %v", info, err)
	}

	// Materializing again replaces everything: old files disappear, even
	// read-only ones and directories the user made read-only.
	if err := os.WriteFile(filepath.Join(out, "d", "stray.txt"), []byte("stray"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(out, "d"), 0o555); err != nil {
		t.Fatal(err)
	}
	next := map[string]string{"a.txt": "new a", "z*": "z"}
	if err := c.Materialize(storeTree(t, c, next), out); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, out); !equalMaps(got, next) {
		t.Errorf("tree after replace = %v, want %v", got, next)
	}
	// Nothing is left beside it.
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil || len(entries) != 1 {
		t.Errorf("beside the output: %v, %v", entries, err)
	}
	// An empty manifest gives an empty directory.
	if err := c.Materialize(Manifest{}, out); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, out); len(got) != 0 {
		t.Errorf("empty manifest left %v", got)
	}
}

func TestMaterializeReplacesSymlinkWithoutFollowing(t *testing.T) {
	c := openTestCache(t)
	victim := t.TempDir()
	writeFiles(t, victim, map[string]string{"keep.txt": "keep"})
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Symlink(victim, out); err != nil {
		t.Fatal(err)
	}
	if err := c.Materialize(storeTree(t, c, map[string]string{"a": "a"}), out); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, victim); !equalMaps(got, map[string]string{"keep.txt": "keep"}) {
		t.Errorf("the symlink's target changed: %v", got)
	}
	if info, err := os.Lstat(out); err != nil || !info.IsDir() {
		t.Errorf("out: %v, %v", info, err)
	}
}

func TestRemoveStaleTrees(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	dir := t.TempDir()
	name := func(pid int, rest string) string { return ".x" + newTreeMark + strconv.Itoa(pid) + "-" + rest }
	keep := []string{"x", name(os.Getpid(), "1"), name(1, "2"), ".x.cogumi-new-nopid"}
	gone := []string{name(dead.Process.Pid, "3"), name(dead.Process.Pid, "4.old")}
	for _, n := range append(append([]string(nil), keep...), gone...) {
		writeFiles(t, filepath.Join(dir, n), map[string]string{"sub/f": "f"})
		if err := os.Chmod(filepath.Join(dir, n, "sub"), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	RemoveStaleTrees(dir)
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
	for _, n := range gone {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s (of a dead process) kept", n)
		}
	}
}

func TestMaterializeErrors(t *testing.T) {
	c := openTestCache(t)
	out := filepath.Join(t.TempDir(), "out")
	good := storeTree(t, c, map[string]string{"a": "a"})
	if err := c.Materialize(good, out); err != nil {
		t.Fatal(err)
	}
	missing := Manifest{Files: []FileEntry{{Path: "b", Digest: DigestBytes([]byte("not stored")), Size: 10}}}
	if err := c.Materialize(missing, out); !errors.Is(err, ErrNotFound) {
		t.Errorf("Materialize(missing blob) = %v, want ErrNotFound", err)
	}
	if got := listTree(t, out); !equalMaps(got, map[string]string{"a": "a"}) {
		t.Errorf("failed Materialize changed the output: %v", got)
	}
	for _, bad := range []string{"../escape", "/abs"} {
		if err := c.Materialize(Manifest{Files: []FileEntry{{Path: bad, Digest: good.Files[0].Digest, Size: 1}}}, out); err == nil {
			t.Errorf("Materialize(%q) succeeded", bad)
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	writeFiles(t, filepath.Dir(file), map[string]string{"file": "x"})
	if err := c.Materialize(good, file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Materialize over a file = %v", err)
	}
}

func TestSwapIn(t *testing.T) {
	for name, swap := range map[string]func(tmp, dst string) (string, error){
		"exchange": swapIn,
		"renames":  swapByRenames,
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst, tmp := filepath.Join(parent, "dst"), filepath.Join(parent, "tmp")
			writeFiles(t, tmp, map[string]string{"f": "first"})
			old, err := swap(tmp, dst)
			if err != nil || old != "" {
				t.Fatalf("swap into nothing = %q, %v", old, err)
			}
			writeFiles(t, tmp, map[string]string{"f": "second"})
			old, err = swap(tmp, dst)
			if err != nil {
				t.Fatal(err)
			}
			if got := listTree(t, dst); got["f"] != "second" {
				t.Errorf("dst = %v", got)
			}
			if got := listTree(t, old); got["f"] != "first" {
				t.Errorf("old = %v", got)
			}
		})
	}
}

// equalMaps reports whether a and b hold the same pairs.
func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
