package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"lukechampine.com/blake3"
)

// Modes of stored files. Blobs are read-only; the executable twin of a blob
// (see Materialize) is read-only and executable.
const (
	blobMode = 0o444
	execMode = 0o555
	dirMode  = 0o755
)

// staleTemp is the age after which a leftover temporary file (from a crashed
// process) is removed when a cache is opened.
const staleTemp = 24 * time.Hour

// Local is the cache on the local disk. Its layout under Dir():
//
//	cas/<2 hex>/<64 hex>     blobs, mode 0444
//	cas/<2 hex>/<64 hex>.x   executable twin of a blob, mode 0555, made on demand
//	ac/<2 hex>/<64 hex>.json action results
//	tmp/                     files being written, renamed into place when complete
//	locks/<64 hex>.lock      per-action-key lock files (flock)
//	srcstat/                 stat caches (see StatCachePath)
//	CACHEDIR.TAG             marks the directory as a cogumi cache (see MarkerFile)
//
// Everything enters by rename from tmp/, so readers never see a partial
// entry, and several processes may share one cache. Local does not fsync:
// after a power failure an entry may be missing or short, which lookups catch
// because they compare sizes (VerifyBlob re-hashes when in doubt).
// A Local is safe for concurrent use.
type Local struct {
	dir string
}

// DefaultDir returns $XDG_CACHE_HOME/cogumi, or ~/.cache/cogumi when
// XDG_CACHE_HOME is unset or not absolute.
func DefaultDir() (string, error) {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "cogumi"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the default cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "cogumi"), nil
}

// OpenLocal opens (creating it if needed) the cache in dir.
func OpenLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening cache %s: %w", dir, err)
	}
	c := &Local{dir: abs}
	for _, sub := range []string{"cas", "ac", "tmp", "locks"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), dirMode); err != nil {
			return nil, fmt.Errorf("opening cache: %w", err)
		}
	}
	if err := c.mark(); err != nil {
		return nil, err
	}
	c.removeStaleTemps()
	return c, nil
}

// removeStaleTemps removes what crashed processes left in tmp/. It is best
// effort: a file it cannot remove is left for next time.
func (c *Local) removeStaleTemps() {
	tmp := filepath.Join(c.dir, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
}

// Dir returns the cache's (absolute) directory.
func (c *Local) Dir() string { return c.dir }

// BlobPath returns where blob d is (or would be) stored.
func (c *Local) BlobPath(d Digest) string {
	s := d.String()
	return filepath.Join(c.dir, "cas", s[:2], s)
}

// execPath returns where the executable twin of blob d is stored.
func (c *Local) execPath(d Digest) string { return c.BlobPath(d) + ".x" }

// actionPath returns where the result of action k is stored.
func (c *Local) actionPath(k ActionKey) string {
	s := k.String()
	return filepath.Join(c.dir, "ac", s[:2], s+".json")
}

// HasBlob reports whether blob d is stored as a regular file of size bytes.
func (c *Local) HasBlob(_ context.Context, d Digest, size int64) bool { return c.hasBlob(d, size) }

func (c *Local) hasBlob(d Digest, size int64) bool {
	info, err := os.Lstat(c.BlobPath(d))
	return err == nil && info.Mode().IsRegular() && info.Size() == size
}

// PutBytes stores b and returns its digest.
func (c *Local) PutBytes(_ context.Context, b []byte) (Digest, error) {
	d := DigestBytes(b)
	if c.hasBlob(d, int64(len(b))) {
		return d, nil
	}
	tmp, err := c.writeTemp(func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return Digest{}, fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	if err := c.install(tmp, c.BlobPath(d), blobMode); err != nil {
		return Digest{}, fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	return d, nil
}

// PutBlob stores size bytes read from r as blob d, checking that they hash
// to d; on a mismatch nothing is stored.
func (c *Local) PutBlob(_ context.Context, d Digest, size int64, r io.Reader) error {
	if size < 0 || size >= MaxBlobSize {
		return fmt.Errorf("storing blob %s: impossible size %d", d.Short(), size)
	}
	if c.hasBlob(d, size) {
		return nil
	}
	tmp, got, n, err := c.copyToTemp(io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	if got != d || n != size {
		_ = os.Remove(tmp)
		return fmt.Errorf("storing blob %s (%d bytes): received %d bytes hashing to %s", d.Short(), size, n, got.Short())
	}
	if err := c.install(tmp, c.BlobPath(d), blobMode); err != nil {
		return fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	return nil
}

// OpenBlob opens blob d for reading, or returns an ErrNotFound error.
// The content is not re-hashed (see VerifyBlob).
func (c *Local) OpenBlob(d Digest) (*os.File, error) {
	f, err := os.Open(c.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d.Short(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("opening blob %s: %w", d.Short(), err)
	}
	return f, nil
}

// ReadBlob is OpenBlob for the Store interface.
func (c *Local) ReadBlob(_ context.Context, d Digest) (io.ReadCloser, error) {
	f, err := c.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// VerifyBlob re-hashes blob d. A blob whose content does not match its name
// is removed (with its executable twin) and reported as a *CorruptError; a
// missing one as ErrNotFound.
func (c *Local) VerifyBlob(d Digest) error {
	got, _, err := DigestFile(c.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d.Short(), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("verifying blob %s: %w", d.Short(), err)
	}
	if got != d {
		c.removeBlob(d)
		return &CorruptError{What: "blob " + d.String(), Reason: "content hashes to " + got.String() + "; removed"}
	}
	if info, err := os.Lstat(c.execPath(d)); err == nil {
		twin, _, err := DigestFile(c.execPath(d))
		if err != nil || twin != d || !info.Mode().IsRegular() {
			_ = os.Remove(c.execPath(d))
		}
	}
	return nil
}

// removeBlob removes blob d and its executable twin, best effort.
func (c *Local) removeBlob(d Digest) {
	_ = os.Remove(c.BlobPath(d))
	_ = os.Remove(c.execPath(d))
	_ = os.Remove(c.chunkIndexPath(d))
}

// writeTemp creates a file in tmp/, lets write fill it and returns its path.
func (c *Local) writeTemp(write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "put-*")
	if err != nil {
		return "", err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// copyToTemp copies r into a new file in tmp/, hashing as it goes.
func (c *Local) copyToTemp(r io.Reader) (path string, d Digest, n int64, err error) {
	h := blake3.New(32, nil)
	path, err = c.writeTemp(func(w io.Writer) error {
		buf := make([]byte, hashBufSize)
		var err error
		n, err = io.CopyBuffer(io.MultiWriter(w, h), onlyReader{r}, buf)
		return err
	})
	if err != nil {
		return "", Digest{}, 0, err
	}
	return path, sumOf(h), n, nil
}

// install gives the complete file tmp its final mode and renames it to dst,
// creating dst's directory if needed. An existing dst (another process put
// the same content) is replaced, which is harmless.
func (c *Local) install(tmp, dst string, mode fs.FileMode) error {
	if err := os.Chmod(tmp, mode); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	err := os.Rename(tmp, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), dirMode); err == nil {
			err = os.Rename(tmp, dst)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
