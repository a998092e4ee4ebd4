package cache

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
)

// hashBufSize is the size of the writes that feed a streaming BLAKE3 hasher
// (DigestReader, copies into the cache). lukechampine.com/blake3 hashes the
// whole chunks of each Write in parallel, so writes must be large to keep
// every core busy, yet small enough to stay in cache between the read that
// fills them and the hashing: 4 MiB measured best (0.19 s for 1 GiB).
const hashBufSize = 4 << 20

// DigestFile returns the digest and size of the file at path (following
// symlinks). A regular file is hashed in 512 KiB segments by one goroutine
// per core, each hashing segments on one core with cache/b3tree's AVX-512
// kernels (lukechampine.com/blake3's AVX2 or generic code without
// AVX-512): from a mapping of the file from 16 MiB on (hashMapped), else
// read with pread (hashSegments); the file's length is taken when it is
// opened (a file that grows meanwhile is hashed up to that length, one that
// shrinks is an error).
//
// Issue 21 measured 1 GiB in the page cache on the 2-core development VM
// (Intel Xeon, Sapphire Rapids class, AVX-512), 15 runs interleaved with
// b3sum 1.2, median CPU time (user+sys, which the other engineers' load on
// this VM disturbs much less than wall time; load average 9.6-11.8):
//
//	                                                   2 threads  1 thread
//	b3tree's first kernels, a barrier per map window      0.335 s   0.337 s
//	b3tree's kernels now, no barrier                      0.279 s   0.276 s
//	b3sum (maps the whole file)                           0.294 s   0.294 s
//
// The first kernels transposed the 16 chunks' rows with 64 shuffles per
// block, all on the port the rounds also need (16% slower than the BLAKE3
// team's C and assembly in L2); the kernels now load them as that code
// does, and prefetch the next 16 chunks too (see b3tree/asm). The pages
// are mapped rather than read: pread costs a copy of every byte (0.36-0.45
// s of CPU time per GiB on one core, against 0.26 s mapped); MAP_POPULATE,
// MADV_POPULATE_READ, MADV_WILLNEED or MADV_HUGEPAGE instead of
// MADV_SEQUENTIAL, and windows of 16 to 128 MiB, all measured within the
// noise (+-15 ms) of each other.
func DigestFile(path string) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Digest{}, 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		// A pipe, a device, a /proc file: its size says nothing; stream it.
		d, n, err := DigestReader(f)
		if err != nil {
			return Digest{}, n, fmt.Errorf("hashing %s: %w", path, err)
		}
		return d, n, nil
	}
	// Advice only: a failure changes nothing but speed.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	size := info.Size()
	if size < 2*segmentSize {
		buf := make([]byte, size)
		if _, err := io.ReadFull(f, buf); err != nil {
			return Digest{}, 0, fmt.Errorf("hashing %s: %w", path, err)
		}
		return blake3.Sum256(buf), size, nil
	}
	if size >= mapMin {
		d, ok, err := hashMapped(f, size, runtime.GOMAXPROCS(0))
		if err != nil {
			return Digest{}, 0, fmt.Errorf("hashing %s: %w", path, err)
		}
		if ok {
			return d, size, nil
		}
	}
	d, err := hashSegments(f, size, runtime.GOMAXPROCS(0))
	if err != nil {
		return Digest{}, 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	return d, size, nil
}

// DigestReaderAt returns the BLAKE3 digest of the first size bytes of r,
// hashed in parallel like DigestFile (for a file already open).
func DigestReaderAt(r io.ReaderAt, size int64) (Digest, error) {
	if size < 2*segmentSize {
		buf := make([]byte, size)
		if _, err := r.ReadAt(buf, 0); err != nil && !(err == io.EOF && size == 0) {
			return Digest{}, readError(err)
		}
		return blake3.Sum256(buf), nil
	}
	if f, ok := r.(*os.File); ok && size >= mapMin {
		if d, ok, err := hashMapped(f, size, runtime.GOMAXPROCS(0)); ok {
			return d, err
		}
	}
	return hashSegments(r, size, runtime.GOMAXPROCS(0))
}
