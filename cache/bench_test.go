package cache

import (
	"crypto/rand"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	zeebo "github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/cogumi/cogumi/cache/b3tree"
)

// BenchmarkDigestFile hashes a 1 GiB file (in the page cache) with
// DigestFile and, for comparison, with lukechampine.com/blake3's Hasher fed
// 4 MiB reads (DigestReader) and github.com/zeebo/blake3 fed 1 MiB reads.
func BenchmarkDigestFile(b *testing.B) {
	if testing.Short() {
		b.Skip("writes a 1 GiB file")
	}
	const size = 1 << 30
	path := filepath.Join(b.TempDir(), "big.bin")
	writeRandomFile(b, path, size)
	b.Run("cogumi", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, n, err := DigestFile(path); err != nil || n != size {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("lukechampine-4MiB-reads", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := DigestReader(f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("zeebo-1MiB-reads", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			h := zeebo.New()
			if _, err := io.CopyBuffer(h, onlyReader{f}, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
			_ = h.Sum(nil)
		}
	})
}

// writeRandomFile writes size pseudo-random bytes to path.
func writeRandomFile(b *testing.B, path string, size int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	_, _ = rand.Read(buf)
	for off := 0; off < size; off += len(buf) {
		buf[0], buf[1] = byte(off>>22), byte(off>>30) // no two pieces alike
		if _, err := f.Write(buf[:min(len(buf), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatCacheLoad100K opens a stat cache file of 100,000 entries.
func BenchmarkStatCacheLoad100K(b *testing.B) {
	entries := make(map[string]statEntry, 100_000)
	for i := range 100_000 {
		p := fmt.Sprintf("/home/someone/src/workspace/data/pkg%04d/shard-%06d.jsonl", i/100, i)
		entries[p] = statEntry{size: int64(i), mtime: int64(i) << 20, ctime: int64(i) << 20, ino: uint64(i), dev: 2049, recorded: 1 << 60, digest: DigestBytes([]byte(p))}
	}
	path := filepath.Join(b.TempDir(), "stat.bin")
	if err := os.WriteFile(path, encodeStatCache(entries), 0o644); err != nil {
		b.Fatal(err)
	}
	info, _ := os.Stat(path)
	b.SetBytes(info.Size())
	for b.Loop() {
		s, err := OpenStatCache(path)
		if err != nil || s.Len() != 100_000 {
			b.Fatal(s.Len(), err)
		}
	}
}

// BenchmarkStatCacheHit is the per-file cost of a no-op build: one stat.
func BenchmarkStatCacheHit(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("content"), 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := OpenStatCache(filepath.Join(dir, "stat.bin"))
	if err != nil {
		b.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(time.Minute) }
	for b.Loop() {
		if _, _, err := s.Digest(path); err != nil {
			b.Fatal(err)
		}
	}
	if s.hashes.Load() != 1 {
		b.Fatalf("hashed %d times", s.hashes.Load())
	}
}

// BenchmarkDigestSources splits hashSegments' cost (issue 21's gap to
// b3sum): the same 512 KiB segments hashed from the page cache with pread
// (DigestFile), from a mapping of the file (no copy, page faults instead),
// from a mapping populated up front, and from memory (compute only).
func BenchmarkDigestSources(b *testing.B) {
	if testing.Short() {
		b.Skip("writes a 1 GiB file")
	}
	const size = 1 << 30
	path := filepath.Join(b.TempDir(), "big.bin")
	writeRandomFile(b, path, size)
	want, _, err := DigestFile(path)
	if err != nil {
		b.Fatal(err)
	}
	mapped := func(b *testing.B, flags int) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED|flags)
			if err != nil {
				b.Fatal(err)
			}
			if got := hashMemory(data, runtime.GOMAXPROCS(0)); got != want {
				b.Fatal("digest differs")
			}
			_ = unix.Munmap(data)
			f.Close()
		}
	}
	b.Run("pread", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, _, err := DigestFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mmap", func(b *testing.B) { mapped(b, 0) })
	b.Run("mmap-populate", func(b *testing.B) { mapped(b, unix.MAP_POPULATE) })
	b.Run("memory", func(b *testing.B) {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for b.Loop() {
			if got := hashMemory(data, runtime.GOMAXPROCS(0)); got != want {
				b.Fatal("digest differs")
			}
		}
	})
}

// hashMemory is hashSegments over bytes already addressable (no copy).
func hashMemory(data []byte, workers int) Digest {
	size := int64(len(data))
	nseg := (size - 1) / segmentSize
	cvs := make([][8]uint32, nseg)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int64(w); i < nseg; i += int64(workers) {
				cvs[i] = b3tree.SubtreeCV(data[i*segmentSize:(i+1)*segmentSize], uint64(i)*segmentChunks)
			}
		})
	}
	wg.Wait()
	var t b3tree.Stack
	for _, cv := range cvs {
		t.Push(cv, bits.TrailingZeros(segmentChunks))
	}
	return Digest(t.Finish(data[nseg*segmentSize:]))
}
