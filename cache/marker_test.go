package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenLocalMarksItsOwnDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := OpenLocal(dir); err != nil {
		t.Fatal(err)
	}
	if !hasMarker(dir) {
		t.Fatalf("a new cache has no %s", MarkerFile)
	}
	if err := CheckCacheDir(dir); err != nil {
		t.Fatal(err)
	}
}

func TestOpenLocalMarksAnUnmarkedOldCache(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"cas", "ac", "workspaces", "scratch"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckCacheDir(dir); err != nil {
		t.Fatalf("a cache made before markers: %v", err)
	}
	if _, err := OpenLocal(dir); err != nil {
		t.Fatal(err)
	}
	if !hasMarker(dir) {
		t.Fatalf("an old cache was not marked when opened")
	}
}

func TestForeignDirectoryIsNotACache(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocal(dir); err != nil {
		t.Fatal(err)
	}
	if hasMarker(dir) {
		t.Fatalf("a directory holding a user's files was marked as a cache")
	}
	var nc *NotCacheError
	if err := CheckCacheDir(dir); !errors.As(err, &nc) || len(nc.Foreign) != 1 || nc.Foreign[0] != "thesis.tex" {
		t.Fatalf("CheckCacheDir = %v, want a NotCacheError naming thesis.tex", err)
	}
	// Another tool's CACHEDIR.TAG does not make it cogumi's.
	if err := os.WriteFile(filepath.Join(dir, MarkerFile), []byte("Signature: 8a477f597d28d172789f06886806bc55\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckCacheDir(dir); !errors.As(err, &nc) {
		t.Fatalf("CheckCacheDir with another tool's tag = %v, want a NotCacheError", err)
	}
}
