package cache

import (
	"bytes"
	"strings"
	"testing"

	zeebo "github.com/zeebo/blake3"
)

// hashSegments must agree with an independent implementation at every
// boundary: chunks, SIMD groups, segments, and powers of two of segments.
func TestHashSegmentsMatchesReference(t *testing.T) {
	const seg = segmentSize
	sizes := []int{0, 1, 1023, 1024, 1025, 16 << 10, 16<<10 + 1, seg - 1, seg, seg + 1,
		2 * seg, 2*seg + 1, 3*seg + 1023, 3*seg + 1024, 4 * seg, 4*seg + 1, 7*seg + 16<<10 + 1, 8 * seg, 33*seg + 5}
	data := make([]byte, sizes[len(sizes)-1])
	for i := range data {
		data[i] = byte(i*131 + i>>11)
	}
	for _, size := range sizes {
		want := Digest(zeebo.Sum256(data[:size]))
		for _, workers := range []int{1, 2, 3} {
			got, err := hashSegments(bytes.NewReader(data[:size]), int64(size), workers)
			if err != nil || got != want {
				t.Errorf("size %d, %d workers: %s, %v; want %s", size, workers, got.Short(), err, want.Short())
			}
		}
	}
}

func TestHashSegmentsShrunkFile(t *testing.T) {
	data := make([]byte, 3*segmentSize)
	for _, short := range []int{segmentSize, 3*segmentSize - 1} {
		_, err := hashSegments(bytes.NewReader(data[:short]), int64(len(data)), 2)
		if err == nil || !strings.Contains(err.Error(), "shrank") {
			t.Errorf("reading %d of %d bytes: %v", short, len(data), err)
		}
	}
}
