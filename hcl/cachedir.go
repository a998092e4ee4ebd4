package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// cacheDirAdvice says what to do instead of a refused cache directory.
const cacheDirAdvice = "give the cache a directory of its own (for example .cogumi-cache in the workspace), or leave the setting out for the default ($XDG_CACHE_HOME/cogumi)"

// CheckCacheDir refuses a local cache directory that cogumi must not fill
// with its files nor let `clean --cache` delete: the workspace root or a
// directory above it (the filesystem root among them), the home directory
// or one above it, and anything inside cogumi-out, which builds replace
// and clean removes. root is the workspace root ("" outside a workspace);
// both paths are absolute.
func CheckCacheDir(root, dir string) error {
	dir = realPath(dir)
	if root != "" {
		root = realPath(root)
	}
	home := ""
	if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
		home = realPath(h)
	}
	var why string
	switch out := filepath.Join(root, "cogumi-out"); {
	case filepath.Dir(dir) == dir:
		why = "is the filesystem root"
	case root != "" && dir == root:
		why = "is the workspace root"
	case root != "" && within(root, dir):
		why = "is above the workspace root " + root
	case home != "" && dir == home:
		why = "is the home directory"
	case home != "" && within(home, dir):
		why = "is above the home directory " + home
	case root != "" && (dir == out || within(dir, out)):
		why = "is inside cogumi-out, which builds replace and cogumi clean removes"
	default:
		return nil
	}
	return fmt.Errorf("the cache directory %s %s: cogumi would mix its cache with those files, and clean --cache could not delete it; %s", dir, why, cacheDirAdvice)
}

// within reports whether path p is strictly inside directory dir.
func within(p, dir string) bool {
	return p != dir && strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// realPath resolves the links in an absolute path when it exists, so that
// a link to the workspace is recognised; otherwise it only cleans it.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
