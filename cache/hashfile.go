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
// per core, each hashing segments on one core with AVX-512 or AVX2: from a
// mapping of the file from 16 MiB on (hashMapped), else read with pread
// (hashSegments); the file's length is taken
// when it is opened (a file that grows meanwhile is hashed up to that length,
// one that shrinks is an error).
//
// Measured on the 2-core AMD EPYC development VM (AVX-512), hashing a 1 GiB
// file in the page cache (BenchmarkDigestFile, ns/op; the mmap rows from a
// one-off program, best of 12 runs):
//
//	this code: lukechampine.com/blake3 v1.4.1 guts, 2 goroutines, pread  0.12 s (8.9 GB/s)
//	lukechampine.com/blake3 v1.4.1 Hasher, 4 MiB reads (parallel Write)  0.19 s (5.6 GB/s)
//	lukechampine.com/blake3 v1.4.1 Hasher, whole file mmap'ed, one Write 0.29 s
//	github.com/zeebo/blake3 v0.2.4, 1 MiB reads (single-threaded)        0.30 s (3.6 GB/s)
//	github.com/zeebo/blake3 v0.2.4, whole file mmap'ed                   0.33 s
//	b3sum, 2 threads (figure from the issue)                             0.20 s
//
// zeebo/blake3 has no way to hash in parallel. lukechampine's Hasher does,
// but one goroutine does all the reading and the data then crosses to the
// other core, with a goroutine per 16 KiB. Those mmap rows lost to a
// different hasher, not to the mapping: with the same segments, a mapping
// saves the copy that pread makes of every byte. Issue 21, same loaded VM,
// 1 GiB, 5 runs interleaved with b3sum 1.3 (wall; user + system CPU):
//
//	segments with pread      0.45-0.53 s; 0.24-0.30 u + 0.16-0.27 s
//	segments on a mapping    0.36-0.50 s; 0.27-0.32 u + 0.05-0.09 s
//	b3sum (maps, 2 threads)  0.27-0.33 s; 0.20-0.25 u + 0.04-0.08 s
//
// The system time is now b3sum's; what remains (about 30% more user time)
// is lukechampine's kernel: its AVX-512 chunk compression is slower than
// b3sum's per core, and the parent nodes above each 16 chunks are
// compressed one at a time (BenchmarkSubtreeCV vs BenchmarkChunksOnly in
// cache/b3tree: about 12%), where b3sum compresses parents 16 at a time.
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
