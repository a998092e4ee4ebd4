package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Materialize makes dir hold exactly the files of m, as read-only hard links
// into the CAS: a file costs no space and no copying.
//
// Executable bits: a hard link shares its mode with the blob, and blobs are
// 0444. An executable file is therefore linked to the blob's executable twin,
// <blob>.x, a 0555 copy (a reflink where the filesystem can) made the first
// time it is needed. So every file in dir has mode 0444 or 0555, as its
// manifest entry says, and chmod on one of them changes the cache: users must
// not make them writable. Where a link cannot be made (another filesystem,
// too many links to one blob, a filesystem without hard links) the file is
// copied (reflinked where possible) instead, with the same mode.
//
// dir is replaced as a whole: the new tree is built in a sibling temporary
// directory, then swapped in with one atomic rename (RENAME_EXCHANGE where
// the kernel has it; else two renames, leaving dir missing for an instant)
// and the old tree is removed. A symlink at dir is replaced, not followed.
// Nothing is written outside dir, the sibling temporary directory and the
// cache. Missing blobs are an ErrNotFound error, and dir is left as it was.
func (c *Local) Materialize(m Manifest, dir string) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	parent, base := filepath.Split(abs)
	if base == "" {
		return fmt.Errorf("materializing %s: not a directory that can be replaced", dir)
	}
	if info, err := os.Lstat(abs); err == nil && !info.IsDir() && info.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("materializing %s: it exists and is not a directory", dir)
	}
	if err := os.MkdirAll(parent, dirMode); err != nil {
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, fmt.Sprintf(".%s%s%d-*", base, newTreeMark, os.Getpid()))
	if err != nil {
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	if err := c.fillTree(m, tmp); err != nil {
		_ = RemoveTree(tmp)
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, dirMode); err != nil { // MkdirTemp made it 0700
		_ = RemoveTree(tmp)
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	old, err := swapIn(tmp, abs)
	if err != nil {
		_ = RemoveTree(tmp)
		return fmt.Errorf("materializing %s: %w", dir, err)
	}
	if old != "" {
		if err := RemoveTree(old); err != nil {
			return fmt.Errorf("materializing %s: removing the previous contents: %w", dir, err)
		}
	}
	return nil
}

// newTreeMark names the trees Materialize builds beside dir (and, once
// swapped, the old trees it removes): .<base>.cogumi-new-<pid>-<random>.
const newTreeMark = ".cogumi-new-"

// RemoveStaleTrees removes from dir the trees that Materialize calls of
// processes that no longer exist left there (a build killed while it linked
// outputs): half-built new trees and swapped-out old ones. Those of running
// processes are left alone. It is best effort: what it cannot remove stays.
func RemoveStaleTrees(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		i := strings.LastIndex(de.Name(), newTreeMark)
		if !strings.HasPrefix(de.Name(), ".") || i < 0 || !de.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(de.Name()[i+len(newTreeMark):], "-")
		pid, err := strconv.Atoi(pidText)
		if err == nil && pid > 0 && pid != os.Getpid() && unix.Kill(pid, 0) == unix.ESRCH {
			_ = RemoveTree(filepath.Join(dir, de.Name()))
		}
	}
}

// fillTree links (or copies) every file of m into the empty directory root.
func (c *Local) fillTree(m Manifest, root string) error {
	made := map[string]bool{root: true}
	for _, f := range m.Files {
		if !c.hasBlob(f.Digest, f.Size) {
			return fmt.Errorf("file %s: blob %s of %d bytes: %w", f.Path, f.Digest.Short(), f.Size, ErrNotFound)
		}
		dst := filepath.Join(root, filepath.FromSlash(f.Path))
		if d := filepath.Dir(dst); !made[d] {
			if err := os.MkdirAll(d, dirMode); err != nil {
				return err
			}
			made[d] = true
		}
		src, mode := c.BlobPath(f.Digest), fs.FileMode(blobMode)
		if f.Executable {
			var err error
			if src, err = c.execBlob(f.Digest, f.Size); err != nil {
				return fmt.Errorf("file %s: %w", f.Path, err)
			}
			mode = execMode
		}
		if err := os.Link(src, dst); err != nil {
			if err := CloneFile(src, dst, mode); err != nil {
				return fmt.Errorf("file %s: %w", f.Path, err)
			}
		}
	}
	return nil
}

// execBlob returns the path of the executable twin of blob d, making it if
// needed.
func (c *Local) execBlob(d Digest, size int64) (string, error) {
	path := c.execPath(d)
	if info, err := os.Lstat(path); err == nil && info.Mode().IsRegular() && info.Size() == size && info.Mode().Perm() == execMode {
		return path, nil
	}
	tmp, err := c.reserveTemp("exec-*")
	if err != nil {
		return "", fmt.Errorf("making executable copy of blob %s: %w", d.Short(), err)
	}
	if err := os.Remove(tmp); err != nil {
		return "", fmt.Errorf("making executable copy of blob %s: %w", d.Short(), err)
	}
	if err := CloneFile(c.BlobPath(d), tmp, execMode); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("making executable copy of blob %s: %w", d.Short(), err)
	}
	if err := c.install(tmp, path, execMode); err != nil {
		return "", fmt.Errorf("making executable copy of blob %s: %w", d.Short(), err)
	}
	return path, nil
}

// CloneFile creates dst (which must not exist) with mode and the content of
// src: a reflink where the filesystem supports one, else a copy.
func CloneFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		_, err = io.Copy(out, in)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, mode)
	}
	if err != nil {
		_ = os.Remove(dst)
	}
	return err
}

// swapIn puts the directory tmp at dst. If something was at dst, it returns
// the path where it now is, for the caller to remove.
func swapIn(tmp, dst string) (old string, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return tmp, nil
	case errors.Is(err, unix.ENOENT):
		// Nothing at dst yet.
		return "", os.Rename(tmp, dst)
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOTSUP):
		return swapByRenames(tmp, dst)
	default:
		return "", err
	}
}

// swapByRenames is swapIn where RENAME_EXCHANGE is missing: it moves the old
// tree aside, then renames the new one in (dst is missing for an instant).
func swapByRenames(tmp, dst string) (old string, err error) {
	old = tmp + ".old"
	if err := os.Rename(dst, old); errors.Is(err, fs.ErrNotExist) {
		old = ""
	} else if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return "", err
	}
	return old, nil
}

// RemoveTree removes path and everything under it, making directories
// writable where that is what stops it (trees of read-only files are fine).
func RemoveTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	_ = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
