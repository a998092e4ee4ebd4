package b3tree

import (
	"errors"
	"io"
	"math/bits"
)

// Segments hashes an input of known size whose bytes arrive in pieces, in
// any order, from several goroutines (a download of content-defined chunks):
// each piece hashes at once the aligned segments it wholly holds, while it
// is in memory; Sum then reads and hashes the segments no piece held (those
// across pieces' boundaries) and the tail, and merges all into the digest
// of the whole input.
type Segments struct {
	size  int64
	shift uint        // log2 of the segment size
	cvs   [][8]uint32 // of each segment before the tail
	have  []bool      // cvs[i] is set
}

// NewSegments prepares to hash size bytes in segments of segSize bytes (a
// Splittable size).
func NewSegments(size int64, segSize int) *Segments {
	if !Splittable(int64(segSize)) {
		panic("b3tree: segment size is not a power of two of at least 16 chunks")
	}
	var n int64
	if size > 0 {
		n = (size - 1) / int64(segSize) // the tail is never empty
	}
	return &Segments{size: size, shift: uint(bits.TrailingZeros(uint(segSize))), cvs: make([][8]uint32, n), have: make([]bool, n)}
}

// Cover hashes the segments wholly inside data, the input's bytes at off.
// Calls for pieces that do not overlap may run concurrently.
func (s *Segments) Cover(data []byte, off int64) {
	seg := int64(1) << s.shift
	for i := (off + seg - 1) >> s.shift; i < int64(len(s.cvs)) && (i+1)<<s.shift <= off+int64(len(data)); i++ {
		start := i<<s.shift - off
		s.cvs[i] = SubtreeCV(data[start:start+seg], uint64(i<<s.shift)/ChunkSize)
		s.have[i] = true
	}
}

// Sum reads from r the segments no Cover call held and the tail, and
// returns the digest of the whole input. Call it after every Cover call
// has returned.
func (s *Segments) Sum(r io.ReaderAt) ([32]byte, error) {
	seg := int64(1) << s.shift
	var buf []byte
	var t Stack
	for i := range s.cvs {
		if !s.have[i] {
			if buf == nil {
				buf = make([]byte, seg)
			}
			if _, err := r.ReadAt(buf, int64(i)<<s.shift); err != nil {
				return [32]byte{}, shortRead(err)
			}
			s.cvs[i] = SubtreeCV(buf, uint64(int64(i)<<s.shift)/ChunkSize)
		}
		t.Push(s.cvs[i], int(s.shift)-bits.TrailingZeros(ChunkSize))
	}
	tail := make([]byte, s.size-int64(len(s.cvs))<<s.shift)
	if _, err := r.ReadAt(tail, int64(len(s.cvs))<<s.shift); err != nil && !(err == io.EOF && len(tail) == 0) {
		return [32]byte{}, shortRead(err)
	}
	return t.Finish(tail), nil
}

// shortRead explains a short read of an input whose size was known.
func shortRead(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the input is shorter than its size")
	}
	return err
}
