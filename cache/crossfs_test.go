package cache

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// otherFilesystemDir returns a fresh directory on a filesystem other than
// the one holding ref, or skips the test.
func otherFilesystemDir(t *testing.T, ref string) string {
	t.Helper()
	var a, b syscall.Stat_t
	if syscall.Stat(ref, &a) != nil || syscall.Stat("/dev/shm", &b) != nil || a.Dev == b.Dev {
		t.Skip("no second filesystem (/dev/shm) to test with")
	}
	dir, err := os.MkdirTemp("/dev/shm", "cogumi-test-*")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = RemoveTree(dir) })
	return dir
}

func TestAcrossFilesystems(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t)
	other := otherFilesystemDir(t, c.Dir())
	writeFiles(t, other, map[string]string{"out/data.bin": "far away", "out/run*": "#!/bin/sh\n"})

	m, err := c.AdoptTree(filepath.Join(other, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || !c.HasBlob(ctx, m.Files[0].Digest, 8) {
		t.Fatalf("manifest = %+v", m)
	}
	if _, err := os.Stat(filepath.Join(other, "out", "data.bin")); !os.IsNotExist(err) {
		t.Error("adopted file still in place")
	}

	// Links cannot cross filesystems: Materialize copies, with the right modes.
	dst := filepath.Join(other, "materialized")
	if err := c.Materialize(m, dst); err != nil {
		t.Fatal(err)
	}
	if got, want := listTree(t, dst), map[string]string{"data.bin": "far away", "run*": "#!/bin/sh\n"}; !equalMaps(got, want) {
		t.Errorf("tree = %v, want %v", got, want)
	}
	for _, f := range m.Files {
		info, err := os.Stat(filepath.Join(dst, f.Path))
		want := os.FileMode(0o444)
		if f.Executable {
			want = 0o555
		}
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", f.Path, info.Mode(), err, want)
		}
	}
}
