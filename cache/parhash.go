package cache

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/cogumi/cogumi/cache/b3tree"

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
				cvs[i] = b3tree.SubtreeCV(buf, uint64(i)*segmentChunks)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Digest{}, err
	}
	var t b3tree.Stack
	for _, cv := range cvs {
		t.Push(cv, bits.TrailingZeros(segmentChunks))
	}
	tail := make([]byte, size-nseg*segmentSize)
	if _, err := r.ReadAt(tail, nseg*segmentSize); err != nil && !(err == io.EOF && len(tail) == 0) {
		return Digest{}, readError(err)
	}
	return Digest(t.Finish(tail)), nil
}

// readError explains a short read of a file whose size was known.
func readError(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("the file shrank while it was being hashed")
	}
	return err
}
