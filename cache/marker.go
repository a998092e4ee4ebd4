package cache

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MarkerFile marks a directory as a cogumi cache. `cogumi clean --cache`
// deletes only a directory that has it, so a cache setting that points at
// the wrong place ("." or a user's folder) cannot make it delete that
// place. It follows the Cache Directory Tagging Specification
// (https://bford.info/cachedir/), so backup tools skip the cache too.
const MarkerFile = "CACHEDIR.TAG"

// markerText is the marker's content: the specification's signature line,
// then cogumi's name, which tells a cogumi cache from another tool's.
const markerText = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This file marks a cache directory created by cogumi.\n" +
	"# For information about cache directory tags see https://bford.info/cachedir/\n"

// isLayoutEntry reports whether name is an entry cogumi makes at the top of
// a cache directory (OpenLocal's directories, the engine's per-workspace
// state and scratch space, the staged Python runtime, the toolchain
// versions). A directory holding nothing else was made by cogumi, even
// before caches had a marker.
func isLayoutEntry(name string) bool {
	switch name {
	case MarkerFile, "cas", "ac", "tmp", "locks", "srcstat", "scratch", "workspaces", "python", "toolchains.json":
		return true
	}
	return false
}

// NotCacheError reports a directory that is not (recognisably) a cogumi
// cache: it has no marker and holds entries cogumi does not make.
type NotCacheError struct {
	Dir     string
	Foreign []string // entries cogumi does not make, sorted
}

func (e *NotCacheError) Error() string {
	shown := e.Foreign
	more := ""
	if len(shown) > 3 {
		shown, more = shown[:3], fmt.Sprintf(" and %d more", len(e.Foreign)-3)
	}
	return fmt.Sprintf("%s is not a cogumi cache: it has no %s and holds %s%s, which cogumi does not make",
		e.Dir, MarkerFile, strings.Join(shown, ", "), more)
}

// CheckCacheDir reports whether dir is a cogumi cache: nil when it has
// cogumi's marker, or no marker but nothing besides cogumi's own layout (a
// cache made before caches had markers, or an empty directory); a
// *NotCacheError otherwise. A missing dir is an fs.ErrNotExist error.
func CheckCacheDir(dir string) error {
	if hasMarker(dir) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading cache directory: %w", err)
	}
	var foreign []string
	for _, e := range entries {
		if !isLayoutEntry(e.Name()) {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return &NotCacheError{Dir: dir, Foreign: foreign}
	}
	return nil
}

// hasMarker reports whether dir holds cogumi's marker file.
func hasMarker(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, MarkerFile))
	return err == nil && bytes.Equal(b, []byte(markerText))
}

// mark writes the marker into the cache when the directory is cogumi's
// (see CheckCacheDir) and lacks it. A directory that holds other files is
// left unmarked, so that clean --cache refuses to delete it.
func (c *Local) mark() error {
	if hasMarker(c.dir) || CheckCacheDir(c.dir) != nil {
		return nil
	}
	tmp, err := c.writeTemp(func(w io.Writer) error {
		_, err := io.WriteString(w, markerText)
		return err
	})
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.dir, MarkerFile))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("marking %s as a cogumi cache: %w", c.dir, err)
	}
	return nil
}
