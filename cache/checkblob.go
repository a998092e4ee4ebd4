package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// LinkPath returns the file of the cache that Materialize links f to: its
// blob, or the blob's executable twin when f is executable.
func (c *Local) LinkPath(f FileEntry) string {
	if f.Executable {
		return c.execPath(f.Digest)
	}
	return c.BlobPath(f.Digest)
}

// CheckBlob checks that the cache's copies of f (its blob, and its
// executable twin when one exists) hold f's content and have the cache's
// modes, before they are linked or staged. digest hashes a file; it is
// meant to be a stat cache's Digest, so that only files that stat says may
// have changed are read. A blob whose content is not f's is removed (its
// results are misses from then on) and reported as a *CorruptError; a bad
// twin is removed and made again when needed; a wrong mode is put back.
func (c *Local) CheckBlob(f FileEntry, digest func(path string) (Digest, int64, error)) error {
	path := c.BlobPath(f.Digest)
	c.fixMode(path, blobMode)
	got, n, err := digest(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", f.Digest.Short(), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("checking blob %s: %w", f.Digest.Short(), err)
	}
	if got != f.Digest || n != f.Size {
		c.removeBlob(f.Digest)
		return &CorruptError{What: "blob " + f.Digest.String(), Reason: "its content changed in the cache (it hashes to " + got.Short() + "); removed"}
	}
	twin := c.execPath(f.Digest)
	if _, err := os.Lstat(twin); err == nil {
		c.fixMode(twin, execMode)
		if got, _, err := digest(twin); err != nil || got != f.Digest {
			_ = os.Remove(twin)
		}
	}
	return nil
}

// fixMode gives a file of the cache back the mode the cache gives it: an
// action or a user (root) may have changed it through a link.
func (c *Local) fixMode(path string, mode fs.FileMode) {
	if info, err := os.Lstat(path); err == nil && info.Mode().IsRegular() && info.Mode().Perm() != mode {
		_ = os.Chmod(path, mode)
	}
}
