package engine

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/target"
)

// With the cache on another file system than the workspace, cogumi-out
// holds copies, not links: a no-op build must recognise them by their own
// stat and leave them alone (not copy every output again), and still
// notice one that was changed.
func TestNoopAcrossFilesystems(t *testing.T) {
	root := t.TempDir()
	var a, b syscall.Stat_t
	if syscall.Stat(root, &a) != nil || syscall.Stat("/dev/shm", &b) != nil || a.Dev == b.Dev {
		t.Skip("no second file system (/dev/shm) to test with")
	}
	shm, err := os.MkdirTemp("/dev/shm", "cogumi-test-*")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = cache.RemoveTree(shm) })
	c, err := cache.OpenLocal(filepath.Join(shm, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	targets := []*target.Target{runT("a", "echo hello > $OUT/o")}
	out := filepath.Join(root, "cogumi-out", "p", "a", "o")
	inode := func() uint64 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(out, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	build(t, root, c, targets, "//p:a")
	first := inode()
	build(t, root, c, targets, "//p:a")
	if inode() != first {
		t.Error("a no-op build copied the output again")
	}
	if err := os.WriteFile(out, []byte("bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ev := build(t, root, c, targets, "//p:a")["//p:a"]; ev.Result != Cached {
		t.Errorf("result %q, want the cached result linked again", ev.Result)
	}
	if got, _ := os.ReadFile(out); string(got) != "hello\n" {
		t.Errorf("cogumi-out holds %q after the rebuild", got)
	}
}
