package cache

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"lukechampine.com/blake3/guts"
)

// segmentChunks is the size, in 1 KiB BLAKE3 chunks, of the pieces
// hashSegments hands to its workers: a power of two, a multiple of
// guts.MaxSIMD, small enough to stay in a core's L2 cache. 512 KiB measured
// best (256 KiB to 2 MiB are within 10%).
const (
	segmentChunks = 512
	segmentSize   = segmentChunks * guts.ChunkSize
)

// hashSegments returns the BLAKE3 digest of the first size bytes of r.
//
// BLAKE3 is a Merkle tree over 1 KiB chunks, and an aligned run of 2^k
// chunks is a complete subtree whose chaining value depends only on its bytes
// and its position. So every full segment but the last is hashed to its
// subtree's chaining value independently, by workers reading with ReadAt;
// the values are then merged in order exactly as the reference
// implementation's incremental hasher does (push), and the final partial
// segment, which holds the root's rightmost path, is hashed last. Unkeyed
// mode only. The tests check the result against github.com/zeebo/blake3.
func hashSegments(r io.ReaderAt, size int64, workers int) (Digest, error) {
	// Whole segments before the tail; the tail is never empty (unless the
	// input is), because the last chunk must be finalized as part of the
	// root path.
	var nseg int64
	if size > 0 {
		nseg = (size - 1) / segmentSize
	}
	cvs := make([][8]uint32, nseg)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, segmentSize)
			for i := int64(w); i < nseg; i += int64(workers) {
				if _, err := r.ReadAt(buf, i*segmentSize); err != nil {
					errs[w] = readError(err)
					return
				}
				cvs[i] = segmentCV(buf, uint64(i)*segmentChunks)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Digest{}, err
	}
	var t treeStack
	for _, cv := range cvs {
		t.push(cv, bits.TrailingZeros(segmentChunks))
	}
	tail := make([]byte, size-nseg*segmentSize)
	if _, err := r.ReadAt(tail, nseg*segmentSize); err != nil && !(err == io.EOF && len(tail) == 0) {
		return Digest{}, readError(err)
	}
	return t.finish(tail), nil
}

// readError explains a short read of a file whose size was known.
func readError(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("the file shrank while it was being hashed")
	}
	return err
}

// segmentCV returns the chaining value of the complete subtree formed by the
// segmentChunks chunks in buf, the first of which is chunk number counter.
func segmentCV(buf []byte, counter uint64) [8]uint32 {
	key := guts.IV
	const groups = segmentChunks / guts.MaxSIMD
	var cvs [groups][8]uint32
	for g := range groups {
		group := (*[guts.MaxSIMD * guts.ChunkSize]byte)(buf[g*guts.MaxSIMD*guts.ChunkSize:])
		cvs[g] = guts.ChainingValue(guts.CompressBuffer(group, len(group), &key, counter+uint64(g*guts.MaxSIMD), 0))
	}
	level := cvs[:]
	for len(level) > 1 {
		for i := range len(level) / 2 {
			level[i] = guts.ChainingValue(guts.ParentNode(level[2*i], level[2*i+1], &key, 0))
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

// treeStack holds the chaining values of the complete subtrees hashed so
// far, at most one per height, as in the reference implementation.
type treeStack struct {
	stack   [64][8]uint32
	counter uint64 // chunks hashed so far; bit i set: stack[i] is occupied
}

// push adds the chaining value of the next complete subtree, of 2^height
// chunks, merging equal-height subtrees as it goes.
func (t *treeStack) push(cv [8]uint32, height int) {
	key := guts.IV
	i := height
	for t.counter&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(t.stack[i], cv, &key, 0))
		i++
	}
	t.stack[i] = cv
	t.counter += 1 << height
}

// finish hashes tail, the rest of the input (at most one segment; empty only
// for an empty input), and returns the root digest.
func (t *treeStack) finish(tail []byte) Digest {
	key := guts.IV
	full := 0 // whole chunks before the last chunk
	if len(tail) > 0 {
		full = (len(tail) - 1) / guts.ChunkSize
	}
	off := 0
	for _, height := range guts.Eigentrees(t.counter, uint64(full)) {
		n := guts.ChunkSize << height
		t.push(guts.ChainingValue(guts.CompressEigentree(tail[off:off+n], &key, t.counter, 0)), height)
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
	var d Digest
	copy(d[:], words[:])
	return d
}
