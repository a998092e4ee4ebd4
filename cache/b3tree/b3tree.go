// Package b3tree hashes BLAKE3 in pieces: BLAKE3 is a Merkle tree over
// 1 KiB chunks, and an aligned run of 2^k chunks is a complete subtree whose
// chaining value depends only on its bytes and its position. Workers hash
// such pieces in parallel (the local cache's file hasher, the remote cache's
// frame downloads) and a Stack merges their values in order into the same
// digest as hashing the whole input at once.
package b3tree

import (
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// ChunkSize is BLAKE3's chunk size in bytes.
const ChunkSize = guts.ChunkSize

// Splittable reports whether pieces of size bytes are complete subtrees
// that SubtreeCV can hash: a power of two of at least guts.MaxSIMD chunks.
func Splittable(size int64) bool {
	n := size / guts.ChunkSize
	return size%guts.ChunkSize == 0 && n >= guts.MaxSIMD && n&(n-1) == 0
}

// SubtreeCV returns the chaining value of the complete subtree formed by
// buf (a Splittable length), whose first chunk is chunk number counter.
func SubtreeCV(buf []byte, counter uint64) [8]uint32 {
	if cv, ok := subtreeCVSIMD(buf, counter); ok {
		return cv
	}
	return subtreeCVGeneric(buf, counter)
}

// subtreeCVGeneric is SubtreeCV with lukechampine.com/blake3's kernels.
func subtreeCVGeneric(buf []byte, counter uint64) [8]uint32 {
	key := guts.IV
	const group = guts.MaxSIMD * guts.ChunkSize
	cvs := make([][8]uint32, len(buf)/group)
	for g := range cvs {
		cvs[g] = guts.ChainingValue(guts.CompressBuffer((*[group]byte)(buf[g*group:]), group, &key, counter+uint64(g*guts.MaxSIMD), 0))
	}
	for len(cvs) > 1 {
		for i := range len(cvs) / 2 {
			cvs[i] = guts.ChainingValue(guts.ParentNode(cvs[2*i], cvs[2*i+1], &key, 0))
		}
		cvs = cvs[:len(cvs)/2]
	}
	return cvs[0]
}

// Stack holds the chaining values of the complete subtrees hashed so far,
// at most one per height, as in the reference implementation.
type Stack struct {
	stack   [64][8]uint32
	counter uint64 // chunks hashed so far; bit i set: stack[i] is occupied
}

// Push adds the chaining value of the next complete subtree, of 2^height
// chunks, merging equal-height subtrees as it goes.
func (t *Stack) Push(cv [8]uint32, height int) {
	key := guts.IV
	i := height
	for t.counter&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(t.stack[i], cv, &key, 0))
		i++
	}
	t.stack[i] = cv
	t.counter += 1 << height
}

// Finish hashes tail, the rest of the input (empty only for an empty input,
// because the last chunk is on the root's path), and returns the digest.
func (t *Stack) Finish(tail []byte) [32]byte {
	key := guts.IV
	full := 0 // whole chunks before the last chunk
	if len(tail) > 0 {
		full = (len(tail) - 1) / guts.ChunkSize
	}
	off := 0
	for _, height := range guts.Eigentrees(nil, t.counter, uint64(full)) {
		n := guts.ChunkSize << height
		if Splittable(int64(n)) {
			t.Push(SubtreeCV(tail[off:off+n], t.counter), height)
		} else {
			t.Push(guts.ChainingValue(guts.CompressEigentree(tail[off:off+n], &key, t.counter, 0)), height)
		}
		off += n
	}
	node := guts.CompressChunk(tail[off:], &key, t.counter, 0)
	for i := bits.TrailingZeros64(t.counter); i < bits.Len64(t.counter); i++ {
		if t.counter&(1<<i) != 0 {
			node = guts.ParentNode(t.stack[i], guts.ChainingValue(node), &key, 0)
		}
	}
	node.Flags |= guts.FlagRoot
	words := guts.WordsToBytes(guts.CompressNode(node))
	var d [32]byte
	copy(d[:], words[:])
	return d
}

// Sum256 returns the BLAKE3-256 digest of buf, hashed on one core: the
// largest complete subtrees with SubtreeCV, then the rest.
func Sum256(buf []byte) [32]byte {
	var t Stack
	return t.Finish(buf)
}
