package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// AdoptFile moves a regular file the caller owns (an action's output in its
// scratch directory) into the CAS and returns its digest and size. The file
// is first renamed into the cache's tmp/ (so nothing can change it while it
// is hashed), hashed, made read-only and renamed into place; if the blob is
// already stored the file is simply removed. A file with other hard links
// (for example one an action linked to an input or a source) is copied
// instead, so that no one else's file becomes a blob; so is one on another
// filesystem. Either way path no longer exists afterwards.
//
// The caller must make sure nothing is still writing the file (all of the
// action's processes have exited).
func (c *Local) AdoptFile(path string) (Digest, int64, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("storing output: %w", err)
	}
	if !info.Mode().IsRegular() {
		return Digest{}, 0, fmt.Errorf("storing output %s: not a regular file", path)
	}
	tmp, d, n, err := c.takeFile(path, info)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("storing output %s: %w", path, err)
	}
	if c.hasBlob(d, n) {
		_ = os.Remove(tmp)
		return d, n, nil
	}
	if err := c.install(tmp, c.BlobPath(d), blobMode); err != nil {
		return Digest{}, 0, fmt.Errorf("storing output %s: %w", path, err)
	}
	return d, n, nil
}

// takeFile moves (or, for a file with other links or on another filesystem,
// copies and removes) path into tmp/ and hashes it there.
func (c *Local) takeFile(path string, info fs.FileInfo) (tmp string, d Digest, n int64, err error) {
	if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Nlink == 1 {
		tmp, err = c.reserveTemp("adopt-*")
		if err != nil {
			return "", Digest{}, 0, err
		}
		err = os.Rename(path, tmp)
		if err == nil {
			d, n, err = DigestFile(tmp)
			if err != nil {
				_ = os.Remove(tmp)
				return "", Digest{}, 0, err
			}
			return tmp, d, n, nil
		}
		_ = os.Remove(tmp)
		if !errors.Is(err, syscall.EXDEV) {
			return "", Digest{}, 0, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", Digest{}, 0, err
	}
	defer f.Close()
	tmp, d, n, err = c.copyToTemp(f)
	if err != nil {
		return "", Digest{}, 0, err
	}
	if err := os.Remove(path); err != nil {
		_ = os.Remove(tmp)
		return "", Digest{}, 0, err
	}
	return tmp, d, n, nil
}

// reserveTemp creates an empty file in tmp/ and returns its unique name.
func (c *Local) reserveTemp(pattern string) (string, error) {
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// treeItem is one file found by AdoptTree.
type treeItem struct {
	rel    string // manifest path
	abs    string // where it is now
	exec   bool
	target int // for a symlink: index of the regular file it resolves to; else -1
	entry  FileEntry
}

// AdoptTree adopts every file under dir (see AdoptFile) and returns the
// manifest of the tree, with executable bits. A symlink whose target
// (resolved fully) is a regular file inside dir is stored as a copy of that
// file; a symlink leading outside dir, to a directory, or nowhere is an error
// naming it, and so is any file that is neither regular nor a symlink.
// Empty directories are not recorded. Files are hashed in parallel. On
// error, some files may already have been moved into the CAS.
func (c *Local) AdoptTree(dir string) (Manifest, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("storing outputs: %w", err)
	}
	items, err := scanTree(root)
	if err != nil {
		return Manifest{}, fmt.Errorf("storing outputs of %s: %w", dir, err)
	}
	if err := c.adoptItems(items); err != nil {
		return Manifest{}, err
	}
	m := Manifest{Files: make([]FileEntry, len(items))}
	for i, it := range items {
		e := it.entry
		if it.target >= 0 {
			e = items[it.target].entry
		}
		e.Path, e.Executable = it.rel, it.exec
		m.Files[i] = e
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("storing outputs of %s: %w", dir, err)
	}
	return m, nil
}

// adoptItems adopts the regular files among items, in parallel.
func (c *Local) adoptItems(items []treeItem) error {
	work := make(chan int)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				it := &items[i]
				it.entry.Digest, it.entry.Size, errs[i] = c.AdoptFile(it.abs)
			}
		}()
	}
	for i := range items {
		if items[i].target < 0 {
			work <- i
		}
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// scanTree lists the files under root, sorted by manifest path, resolving
// symlinks (see AdoptTree).
func scanTree(root string) ([]treeItem, error) {
	var items []treeItem
	links := map[string]string{} // manifest path of a symlink -> of its target
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root || e.IsDir() {
			return nil
		}
		rel, err := relSlash(root, p)
		if err != nil {
			return err
		}
		if err := validPath(rel); err != nil {
			return fmt.Errorf("output %s: unusable name: %w", rel, err)
		}
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			target, err := linkTarget(root, p, rel)
			if err != nil {
				return err
			}
			links[rel] = target
		case !e.Type().IsRegular():
			return fmt.Errorf("output %s is a %s, not a regular file", rel, describeMode(e.Type()))
		}
		info, err := os.Stat(p) // follows a symlink
		if err != nil {
			return err
		}
		items = append(items, treeItem{rel: rel, abs: p, exec: info.Mode()&0o111 != 0, target: -1})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel < items[j].rel })
	index := make(map[string]int, len(items))
	for i, it := range items {
		index[it.rel] = i
	}
	for i := range items {
		if t, ok := links[items[i].rel]; ok {
			j, ok := index[t]
			if !ok || items[j].target >= 0 {
				return nil, fmt.Errorf("output %s: symlink target %s was not found as a file", items[i].rel, t)
			}
			items[i].target = j
		}
	}
	return items, nil
}

// linkTarget resolves the symlink p (manifest path rel) and returns the
// manifest path of the regular file it leads to, which must be under root.
func linkTarget(root, p, rel string) (string, error) {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("output %s is a broken symlink: %w", rel, err)
	}
	target, err := relSlash(root, resolved)
	if err != nil || target == "." || target == ".." || strings.HasPrefix(target, "../") {
		dest, _ := os.Readlink(p)
		return "", fmt.Errorf("output %s is a symlink to %s, outside the output directory: write a copy of the file instead", rel, dest)
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("output %s: %w", rel, err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("output %s is a symlink to %s, which is a %s: only links to files are stored", rel, target, describeMode(info.Mode().Type()))
	}
	return target, nil
}

// relSlash returns p relative to root with '/' separators.
func relSlash(root, p string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// describeMode names a file type for messages.
func describeMode(t fs.FileMode) string {
	switch {
	case t.IsDir():
		return "directory"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}
