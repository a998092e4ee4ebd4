package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Find returns the single directory at or below dir that holds a
// config.json: the checkpoint inside an artifact, wherever the producing
// rule put it. Symbolic links are followed, because Hugging Face snapshot
// directories are links into a blob store; a link cycle is walked once.
// No checkpoint, or more than one, is an error listing what was found.
func Find(dir string) (string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("checkpoint: %s is not a directory", dir)
	}
	var found []string
	seen := make(map[fileID]bool)
	if err := walk(dir, seen, &found); err != nil {
		return "", err
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("checkpoint: no config.json at or below %s: not a Hugging Face checkpoint directory", dir)
	case 1:
		return found[0], nil
	}
	rel := make([]string, len(found))
	for i, f := range found {
		if r, err := filepath.Rel(dir, f); err == nil {
			f = r
		}
		rel[i] = f
	}
	return "", fmt.Errorf("checkpoint: %d directories below %s hold a config.json (%s); a model input must hold exactly one checkpoint",
		len(found), dir, strings.Join(rel, ", "))
}

// fileID identifies a directory by device and inode, so that two paths to
// the same directory (through links) are walked once.
type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true
}

func walk(dir string, seen map[fileID]bool, found *[]string) error {
	st, err := os.Stat(dir) // follows links
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if id, ok := idOf(st); ok {
		if seen[id] {
			return nil
		}
		seen[id] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Name() == "config.json" {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				*found = append(*found, filepath.Clean(dir))
			}
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if errors.Is(err, os.ErrNotExist) {
				continue // a dangling link holds no checkpoint
			}
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			isDir = fi.IsDir()
		}
		if isDir {
			if err := walk(p, seen, found); err != nil {
				return err
			}
		}
	}
	return nil
}
