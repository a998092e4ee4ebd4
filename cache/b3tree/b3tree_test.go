package b3tree

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
)

// TestSubtreeCVKernels checks the AVX-512 kernels against
// lukechampine.com/blake3's on subtrees of every size the hashers use, at
// counters whose low word overflows within the subtree.
func TestSubtreeCVKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, chunks := range []int{16, 32, 64, 512, 4096} {
		for _, counter := range []uint64{0, uint64(chunks) * 7, 1<<32 - 8, 1<<40 + uint64(chunks)} {
			piece := buf[:chunks*ChunkSize]
			want := subtreeCVGeneric(piece, counter)
			got, ok := subtreeCVSIMD(piece, counter)
			if !ok {
				t.Skip("no AVX-512 on this CPU")
			}
			if got != want {
				t.Errorf("%d chunks at %d: got %x, want %x", chunks, counter, got, want)
			}
		}
	}
}

// TestSum256: Sum256 (and so Finish, with its subtrees on the AVX-512
// kernels and the chunks after them, fewer than 16, in one kernel call)
// against lukechampine.com/blake3 at sizes around the chunk, 16-chunk and
// power-of-two boundaries, with every count of chunks after the last
// 16-chunk boundary; then the same on lukechampine.com/blake3's kernels
// alone, the path of CPUs without AVX-512.
func TestSum256(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 3<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	sizes := []int{0, 1, 1023, 1024, 1025, 16 << 10, 16<<10 + 1, 64<<10 - 1, 64 << 10, 64<<10 + 1000, 1 << 20, 2<<20 + 12345, 3 << 20}
	for k := 0; k <= 16; k++ {
		sizes = append(sizes, k*ChunkSize+1, (k+1)*ChunkSize, 2<<20+k*ChunkSize+700, 512<<10+k*ChunkSize-1)
	}
	for _, simd := range []bool{haveAVX512, false} {
		old := haveAVX512
		haveAVX512 = simd
		for _, n := range sizes {
			if got, want := Sum256(buf[:n]), blake3.Sum256(buf[:n]); got != want {
				t.Errorf("%d bytes (AVX-512 kernels: %v): got %x, want %x", n, simd, got, want)
			}
		}
		haveAVX512 = old
	}
}

// TestSegments: pieces covering the input in any order, with gaps no
// piece covers and pieces not aligned to segments, give the digest of the
// whole input.
func TestSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const seg = 64 << 10
	for _, size := range []int{0, 1000, seg, seg + 1, 5*seg - 7, 40*seg + 12345} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		for _, cover := range []float64{0, 0.5, 1} {
			s := NewSegments(int64(size), seg)
			// Pieces of random lengths around the segment size, in random order.
			type piece struct{ off, n int }
			var pieces []piece
			for off := 0; off < size; {
				n := min(size-off, 1+rng.IntN(3*seg))
				pieces = append(pieces, piece{off, n})
				off += n
			}
			rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
			for _, p := range pieces {
				if rng.Float64() < cover {
					s.Cover(data[p.off:p.off+p.n], int64(p.off))
				}
			}
			got, err := s.Sum(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if want := blake3.Sum256(data); got != want {
				t.Errorf("%d bytes, %.0f%% covered: got %x, want %x", size, cover*100, got, want)
			}
		}
	}
	if _, err := NewSegments(10*seg, seg).Sum(bytes.NewReader(make([]byte, 5*seg))); err == nil {
		t.Error("Sum of a short input succeeded")
	}
}

// TestGuardPage: the kernels prefetch ahead of the rows they hash (up to
// the next 16 chunks) and must read nothing past their input: inputs that
// end where a PROT_NONE page begins, with no capacity beyond, as the last
// window of a mapped file does (unix.Mmap's slice), hash without a fault
// and to the reference digest.
func TestGuardPage(t *testing.T) {
	const room = 1 << 20
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, room+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Skip("no anonymous mapping:", err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[room:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range mem[:room] {
		mem[i] = byte(rng.Uint32())
	}
	for _, chunks := range []int{16, 32, 512} {
		piece := mem[room-chunks*ChunkSize : room : room]
		if got, want := SubtreeCV(piece, 5*uint64(chunks)), subtreeCVGeneric(piece, 5*uint64(chunks)); got != want {
			t.Errorf("subtree of %d chunks before the guard page: got %x, want %x", chunks, got, want)
		}
	}
	for _, n := range []int{1, 1023, 1024, 1025, 16<<10 - 1, 16 << 10, 16<<10 + 1, 512 << 10, 512<<10 + 17, room} {
		if got, want := Sum256(mem[room-n:room:room]), blake3.Sum256(mem[room-n:room:room]); got != want {
			t.Errorf("%d bytes before the guard page: got %x, want %x", n, got, want)
		}
	}
}
