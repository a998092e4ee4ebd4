package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"lukechampine.com/blake3"

	"github.com/cogumi/cogumi/internal/atomicfile"
)

// racyMargin is how long after a file's last change (mtime or ctime) its
// digest starts being trusted. A file changed again within the timestamp
// granularity of its filesystem (up to 2 s on FAT, 1 s on some NFS and HFS+,
// a clock tick on ext4) after it was hashed could keep the same stat, so a
// digest recorded less than racyMargin after the file's change is used for
// this build but checked again next time, as git does with "racily clean"
// entries.
const racyMargin = 2 * time.Second

// statCacheMagic starts a stat cache file; the version is part of it.
const statCacheMagic = "cogumi srcstat v1\n"

// statEntryFixed is the encoded size of a statEntry without its path.
const statEntryFixed = 6*8 + 32

// StatCache remembers the digests of source files by what stat says about
// them (size, mtime, ctime, inode, device), so that a no-op build reads no
// file content. It is keyed by absolute path; symlinks are followed (the
// target is stat'ed and hashed), so a Hugging Face snapshot directory of
// links into a blob store works. Safe for concurrent use.
type StatCache struct {
	path string
	now  func() time.Time // the clock; tests move it

	mu      sync.Mutex
	entries map[string]statEntry
	dirty   bool

	hashes atomic.Int64 // files hashed, for tests
}

// statEntry is what StatCache remembers of one file.
type statEntry struct {
	size, mtime, ctime int64 // ns since the epoch for times
	ino, dev           uint64
	recorded           int64 // ns since the epoch when hashing began
	digest             Digest
}

// StatCachePath returns the file that holds the stat cache of the
// workspace at root (an absolute path): <cache>/srcstat/<hash of root>.bin.
func (c *Local) StatCachePath(root string) string {
	d := DigestBytes([]byte(root))
	return filepath.Join(c.dir, "srcstat", d.String()[:32]+".bin")
}

// OpenStatCache loads the stat cache kept in path. A missing, unreadable
// or corrupt file gives an empty cache: it only costs re-hashing.
func OpenStatCache(path string) (*StatCache, error) {
	if path == "" {
		return nil, fmt.Errorf("opening stat cache: no path")
	}
	s := &StatCache{path: path, now: time.Now, entries: map[string]statEntry{}}
	if data, err := os.ReadFile(path); err == nil {
		if entries, ok := decodeStatCache(data); ok {
			s.entries = entries
		}
	}
	return s, nil
}

// Len returns the number of remembered files.
func (s *StatCache) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Digest returns the digest and size of the file at absPath (following
// symlinks). If stat shows the file unchanged since it was last hashed, the
// remembered digest is returned without reading the file; otherwise it is
// hashed and remembered.
func (s *StatCache) Digest(absPath string) (Digest, int64, error) {
	if !filepath.IsAbs(absPath) {
		return Digest{}, 0, fmt.Errorf("hashing %s: not an absolute path", absPath)
	}
	st, err := statFile(absPath)
	if err != nil {
		return Digest{}, 0, err
	}
	s.mu.Lock()
	e, ok := s.entries[absPath]
	s.mu.Unlock()
	if ok && e.sameFile(st) && e.trusted() {
		return e.digest, e.size, nil
	}
	// Hash, and remember only if the file did not change meanwhile.
	for try := 0; ; try++ {
		start := s.now()
		d, n, err := DigestFile(absPath)
		s.hashes.Add(1)
		if err != nil {
			return Digest{}, 0, err
		}
		after, err := statFile(absPath)
		if err != nil {
			return Digest{}, 0, err
		}
		if !st.sameFile(after) || n != st.size {
			if try < 2 {
				st = after
				continue
			}
			return d, n, nil // changing under us: use it, but don't remember it
		}
		st.recorded, st.digest = start.UnixNano(), d
		s.mu.Lock()
		s.entries[absPath] = st
		s.dirty = true
		s.mu.Unlock()
		return d, n, nil
	}
}

// Unchanged returns the digest remembered for absPath when info (from an
// Lstat of absPath or of a hard link to the same file) shows the file as it
// was when it was hashed, or vouched for by Remember. It reads nothing: a
// no-op build checks its linked outputs with it.
func (s *StatCache) Unchanged(absPath string, info os.FileInfo) (Digest, bool) {
	sys, ok := info.Sys().(*syscall.Stat_t)
	if !ok || !info.Mode().IsRegular() {
		return Digest{}, false
	}
	st := statEntry{size: info.Size(), mtime: sys.Mtim.Nano(), ctime: sys.Ctim.Nano(), ino: sys.Ino, dev: uint64(sys.Dev)}
	s.mu.Lock()
	e, ok := s.entries[absPath]
	s.mu.Unlock()
	if !ok || !e.sameFile(st) || !e.trusted() {
		return Digest{}, false
	}
	return e.digest, true
}

// Remember records the file at absPath, as stat shows it now, as holding d,
// without hashing it. Only for files whose content the caller has just
// verified and controls, whose stat changed for a reason other than a
// write: a CAS blob that cogumi has just hard-linked (a new link changes
// its ctime) after checking it. The entry is trusted at once.
func (s *StatCache) Remember(absPath string, d Digest) error {
	st, err := statFile(absPath)
	if err != nil {
		return err
	}
	st.recorded, st.digest = vouched, d
	s.mu.Lock()
	s.entries[absPath] = st
	s.dirty = true
	s.mu.Unlock()
	return nil
}

// vouched is the recording time of entries made by Remember: later than
// any file change, so trusted.
const vouched = math.MaxInt64

// statFile stats path (following symlinks), which must be a regular file.
func statFile(path string) (statEntry, error) {
	info, err := os.Stat(path)
	if err != nil {
		return statEntry{}, fmt.Errorf("hashing: %w", err)
	}
	if !info.Mode().IsRegular() {
		return statEntry{}, fmt.Errorf("hashing %s: not a regular file", path)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return statEntry{}, fmt.Errorf("hashing %s: no stat information", path)
	}
	return statEntry{
		size:  info.Size(),
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
		ino:   st.Ino,
		dev:   uint64(st.Dev),
	}, nil
}

// sameFile reports whether e and st describe the same, unchanged file.
func (e statEntry) sameFile(st statEntry) bool {
	return e.size == st.size && e.mtime == st.mtime && e.ctime == st.ctime && e.ino == st.ino && e.dev == st.dev
}

// trusted reports whether the file had stopped changing (by racyMargin)
// when it was hashed.
func (e statEntry) trusted() bool {
	limit := e.recorded - int64(racyMargin)
	return e.mtime < limit && e.ctime < limit
}

// Save writes the cache back to its file, atomically, if anything changed.
func (s *StatCache) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	data := encodeStatCache(s.entries)
	if err := atomicfile.WriteFile(s.path, data, 0o644); err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	s.dirty = false
	return nil
}

// encodeStatCache writes the file format: the magic, the entry count, each
// entry (uvarint path length, path, six little-endian 64-bit fields, digest),
// and the BLAKE3 of all that.
func encodeStatCache(entries map[string]statEntry) []byte {
	n := len(statCacheMagic) + binary.MaxVarintLen64 + 32
	for p := range entries {
		n += binary.MaxVarintLen64 + len(p) + statEntryFixed
	}
	buf := make([]byte, 0, n)
	buf = append(buf, statCacheMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	le := binary.LittleEndian
	for p, e := range entries {
		buf = binary.AppendUvarint(buf, uint64(len(p)))
		buf = append(buf, p...)
		buf = le.AppendUint64(buf, uint64(e.size))
		buf = le.AppendUint64(buf, uint64(e.mtime))
		buf = le.AppendUint64(buf, uint64(e.ctime))
		buf = le.AppendUint64(buf, e.ino)
		buf = le.AppendUint64(buf, e.dev)
		buf = le.AppendUint64(buf, uint64(e.recorded))
		buf = append(buf, e.digest[:]...)
	}
	sum := blake3.Sum256(buf)
	return append(buf, sum[:]...)
}

// decodeStatCache reads what encodeStatCache wrote; ok is false for
// anything else.
func decodeStatCache(data []byte) (entries map[string]statEntry, ok bool) {
	if len(data) < len(statCacheMagic)+1+32 || !bytes.HasPrefix(data, []byte(statCacheMagic)) {
		return nil, false
	}
	body, sum := data[:len(data)-32], data[len(data)-32:]
	if blake3.Sum256(body) != [32]byte(sum) {
		return nil, false
	}
	body = body[len(statCacheMagic):]
	count, k := binary.Uvarint(body)
	if k <= 0 || count > uint64(len(body))/statEntryFixed {
		return nil, false
	}
	// One string holds every path: one allocation instead of one per entry.
	str := string(body)
	pos := k
	entries = make(map[string]statEntry, count)
	le := binary.LittleEndian
	for range count {
		plen, k := binary.Uvarint(body[pos:])
		if k <= 0 || plen > uint64(len(body)-pos-k) || uint64(len(body)-pos-k)-plen < statEntryFixed {
			return nil, false
		}
		pos += k
		p := str[pos : pos+int(plen)]
		pos += int(plen)
		f := body[pos : pos+statEntryFixed]
		var e statEntry
		e.size = int64(le.Uint64(f[0:]))
		e.mtime = int64(le.Uint64(f[8:]))
		e.ctime = int64(le.Uint64(f[16:]))
		e.ino = le.Uint64(f[24:])
		e.dev = le.Uint64(f[32:])
		e.recorded = int64(le.Uint64(f[40:]))
		copy(e.digest[:], f[48:])
		pos += statEntryFixed
		entries[p] = e
	}
	if pos != len(body) {
		return nil, false
	}
	return entries, true
}
