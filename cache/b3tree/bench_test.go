package b3tree

import (
	"testing"

	"lukechampine.com/blake3/guts"
)

// BenchmarkSubtreeCV hashes a 512 KiB segment (the local hasher's unit);
// BenchmarkChunksOnly does only its chunk compressions (16 chunks at a time,
// with their 16-chunk roots), the part the SIMD kernel covers: the
// difference is the parent nodes merged above the 16-chunk groups, one
// scalar compression each (issue 21's hashing gap).
func BenchmarkSubtreeCV(b *testing.B) {
	buf := make([]byte, 512<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		SubtreeCV(buf, 0)
	}
}

func BenchmarkChunksOnly(b *testing.B) {
	buf := make([]byte, 512<<10)
	key := guts.IV
	const group = guts.MaxSIMD * guts.ChunkSize
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		for g := 0; g < len(buf)/group; g++ {
			guts.CompressBuffer((*[group]byte)(buf[g*group:]), group, &key, uint64(g*guts.MaxSIMD), 0)
		}
	}
}

func BenchmarkParentNode(b *testing.B) {
	key := guts.IV
	var cv [8]uint32
	for b.Loop() {
		cv = guts.ChainingValue(guts.ParentNode(cv, cv, &key, 0))
	}
}

// BenchmarkSubtreeCVGeneric is BenchmarkSubtreeCV with
// lukechampine.com/blake3's kernels (the fallback without AVX-512).
func BenchmarkSubtreeCVGeneric(b *testing.B) {
	buf := make([]byte, 512<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		subtreeCVGeneric(buf, 0)
	}
}
