package b3tree

import (
	"math/rand/v2"
	"testing"

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
// kernels) against lukechampine.com/blake3 at sizes around the chunk,
// 16-chunk and power-of-two boundaries.
func TestSum256(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 3<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, n := range []int{0, 1, 1023, 1024, 1025, 16 << 10, 16<<10 + 1, 64<<10 - 1, 64 << 10, 64<<10 + 1000, 1 << 20, 2<<20 + 12345, 3 << 20} {
		if got, want := Sum256(buf[:n]), blake3.Sum256(buf[:n]); got != want {
			t.Errorf("%d bytes: got %x, want %x", n, got, want)
		}
	}
}
