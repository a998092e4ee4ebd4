package zpack

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// DefaultChunkValues is the number of 16-bit values per frame: 8 MiB of
// input per frame in both modes.
const DefaultChunkValues = 4 << 20

// maxFrameRaw bounds the original bytes one container frame may restore.
// Writers never exceed it and readers reject frames that claim more, so a
// corrupt length cannot make the reader allocate without bound.
const maxFrameRaw = 64 << 20

// Options control compression. The zero value is valid: zstd's default
// level, GOMAXPROCS threads, plain .zst output.
type Options struct {
	// Level is the zstd encoder level; zero means zstd.SpeedDefault.
	// See ParseLevel for how the levels compare with the zstd CLI's.
	Level zstd.EncoderLevel
	// Threads is the number of compression goroutines; zero or less
	// means runtime.GOMAXPROCS(0).
	Threads int
	// Weights selects the weight-aware container (see the package doc)
	// instead of a plain .zst stream.
	Weights bool
	// ChunkValues is the number of 16-bit values per frame; every frame,
	// plain or weight-aware, holds at most 2*ChunkValues bytes of input.
	// Zero means DefaultChunkValues (8 MiB frames). Memory grows with it
	// times Threads. At most 32 Mi.
	ChunkValues int
}

func (o Options) normalized() (Options, error) {
	if o.Level == 0 {
		o.Level = zstd.SpeedDefault
	}
	if o.Level < zstd.SpeedFastest || o.Level > zstd.SpeedBestCompression {
		return o, fmt.Errorf("zpack: invalid level %d", int(o.Level))
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.ChunkValues == 0 {
		o.ChunkValues = DefaultChunkValues
	}
	if o.ChunkValues < 1 || 2*o.ChunkValues > maxFrameRaw {
		return o, fmt.Errorf("zpack: chunk of %d values out of range [1, %d]", o.ChunkValues, maxFrameRaw/2)
	}
	return o, nil
}

// ParseLevel reads a compression level: one of klauspost/compress's names
// ("fastest", "default", "better", "best", any case) or a zstd CLI level
// 1-22, mapped with zstd.EncoderLevelFromZstd.
//
// How they compare with the zstd CLI (klauspost's own guidance, and what
// we measured on BF16 weights):
//
//	fastest  ≈ zstd -1           (CLI levels 1-2 map here)
//	default  ≈ zstd -3           (CLI levels 3-5)
//	better   ≈ zstd -7 / -8      (CLI levels 6-9), ~2-3x default's CPU
//	best     ≈ zstd -11          (CLI levels 10-22); CLI levels above 11
//	                              compress better than anything here
//
// So a rule asking for level 19 gets "best", which is about zstd -11: on
// weights that costs little ratio (zstd -19 keeps 77.8% of BF16 weights
// where -3 keeps 78.0%) and is many times faster.
func ParseLevel(s string) (zstd.EncoderLevel, error) {
	t := strings.TrimSpace(s)
	if ok, l := zstd.EncoderLevelFromString(t); ok {
		return l, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, fmt.Errorf("zpack: level %q: want fastest, default, better, best or a zstd level 1-22", s)
	}
	if n < 1 || n > 22 {
		return 0, fmt.Errorf("zpack: level %d: zstd levels are 1-22", n)
	}
	return zstd.EncoderLevelFromZstd(n), nil
}

// Format names what a compressed file holds.
type Format int

// The formats Decompress recognises.
const (
	FormatZstd      Format = iota + 1 // a standard .zst stream
	FormatContainer                   // a CGZP weight-aware container
)

func (f Format) String() string {
	switch f {
	case FormatZstd:
		return "zstd"
	case FormatContainer:
		return "container"
	default:
		return "unknown"
	}
}

// Stats describe one compression or decompression.
type Stats struct {
	Format Format
	// OriginalBytes and CompressedBytes are the sizes of the original
	// and the compressed file, whichever way the data went.
	OriginalBytes, CompressedBytes int64
	// Frames counts container frames by kind (zero for plain streams).
	PlainFrames, BF16Frames, F16Frames int
	Elapsed                            time.Duration
}

// Ratio is the compressed size over the original size (smaller is better).
func (s Stats) Ratio() float64 {
	if s.OriginalBytes == 0 {
		return 1
	}
	return float64(s.CompressedBytes) / float64(s.OriginalBytes)
}
