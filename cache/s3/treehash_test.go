package s3

import (
	"testing"

	"github.com/cogumi/cogumi/cache/b3tree"

	"lukechampine.com/blake3/guts"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
)

// TestTreeHash checks frame-wise hashing against the reference digest for
// sizes around frame and chunk boundaries.
func TestTreeHash(t *testing.T) {
	for _, frameSize := range []int64{minFrameSize, 1 << 20} {
		if !b3tree.Splittable(frameSize) {
			t.Fatalf("frames of %d are not splittable", frameSize)
		}
		for _, size := range []int64{0, 1, 1023, 1024, 1025, frameSize - 1, frameSize, frameSize + 1,
			3*frameSize - 5, 4 * frameSize, 7*frameSize + 1024} {
			data := cachetest.Pattern(uint64(size), int(size))
			var tree b3tree.Stack
			height := 0
			for n := frameSize / guts.ChunkSize; n > 1; n >>= 1 {
				height++
			}
			l := rawLayout(size, frameSize)
			var got cache.Digest
			if size == 0 {
				got = cache.Digest(tree.Finish(nil))
			}
			for f := range l.frames() {
				b := data[f.off : f.off+f.len]
				if f.index < l.numFrames()-1 {
					tree.Push(b3tree.SubtreeCV(b, uint64(f.off/guts.ChunkSize)), height)
				} else {
					got = cache.Digest(tree.Finish(b))
				}
			}
			if want := cache.DigestBytes(data); got != want {
				t.Errorf("frames of %d, %d bytes: %s, want %s", frameSize, size, got.Short(), want.Short())
			}
		}
	}
	for _, bad := range []int64{0, 1000, 3 << 20, 8 << 10} {
		if b3tree.Splittable(bad) {
			t.Errorf("frames of %d called splittable", bad)
		}
	}
}
