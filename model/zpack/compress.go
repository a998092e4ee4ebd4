package zpack

import (
	"context"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// newEncoder returns the zstd encoder both modes share between their
// worker goroutines (EncodeAll is safe for concurrent use).
func newEncoder(o Options) (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(o.Level),
		zstd.WithEncoderConcurrency(o.Threads),
		// Without this, levels up to default store blocks that have no
		// matches raw, which is every block of a weight tensor: 100% of
		// the size where zstd -3 keeps 78%.
		zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return enc, nil
}

// chunkEncoder appends the coded form of one chunk of the original to dst.
// worker identifies the calling goroutine, for per-worker scratch state.
type chunkEncoder func(worker int, dst []byte, k frameKind, raw []byte) ([]byte, error)

// compressChunks reads src's segments in order, in chunks of at most
// 2*o.ChunkValues bytes, codes them with encode on o.Threads goroutines and
// writes the results to w in order. It feeds the original to hasher (when
// not nil) and returns the bytes written and the chunks coded per kind.
// At most about 3*o.Threads chunks are in memory at once.
func compressChunks(ctx context.Context, src *os.File, segs []segment, w io.Writer, o Options, hasher hash.Hash, encode chunkEncoder) (int64, map[frameKind]int, error) {
	chunkBytes := int64(2 * o.ChunkValues)
	depth := 2 * o.Threads
	raws, outs := newBufPool(depth+o.Threads+2), newBufPool(depth+2)
	var written int64
	counts := map[frameKind]int{}
	var end int64
	if n := len(segs); n > 0 {
		end = segs[n-1].off + segs[n-1].n
	}

	produce := func(ctx context.Context, emit func(*chunk) error) error {
		sr := io.NewSectionReader(src, 0, end)
		for _, s := range segs {
			for off := int64(0); off < s.n; off += chunkBytes {
				if err := ctx.Err(); err != nil {
					return err
				}
				raw := raws.get(int(min(chunkBytes, s.n-off)))
				if _, err := io.ReadFull(sr, raw); err != nil {
					return fmt.Errorf("read %s at offset %d: %w", src.Name(), s.off+off, err)
				}
				if hasher != nil {
					hasher.Write(raw)
				}
				if err := emit(&chunk{kind: s.kind, raw: raw}); err != nil {
					return err
				}
			}
		}
		var one [1]byte
		if n, _ := src.ReadAt(one[:], end); n != 0 {
			return fmt.Errorf("%s grew while it was being compressed", src.Name())
		}
		return nil
	}
	work := func(wk int, c *chunk) (*chunk, error) {
		out, err := encode(wk, outs.get(len(c.raw) + frameHeaderMax)[:0], c.kind, c.raw)
		if err != nil {
			return c, fmt.Errorf("compress %s frame: %w", c.kind, err)
		}
		raws.put(c.raw)
		c.raw, c.out = nil, out
		return c, nil
	}
	consume := func(c *chunk) error {
		if _, err := w.Write(c.out); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		written += int64(len(c.out))
		outs.put(c.out)
		counts[c.kind]++
		return nil
	}
	err := ordered(ctx, o.Threads, depth, produce, work, consume)
	return written, counts, err
}

// compressZstd writes a standard .zst stream: one zstd frame (with content
// size and checksum) per chunk of 2*o.ChunkValues bytes, coded in parallel.
// The zstd CLI reads concatenated frames as one stream. An empty input
// gives one empty frame.
func compressZstd(ctx context.Context, in *os.File, size int64, out *os.File, o Options) (Stats, error) {
	st := Stats{Format: FormatZstd, OriginalBytes: size}
	enc, err := newEncoder(o)
	if err != nil {
		return st, err
	}
	defer enc.Close()
	if size == 0 {
		b := enc.EncodeAll(nil, nil)
		if _, err := out.Write(b); err != nil {
			return st, fmt.Errorf("write output: %w", err)
		}
		st.CompressedBytes = int64(len(b))
		return st, nil
	}
	encode := func(_ int, dst []byte, _ frameKind, raw []byte) ([]byte, error) {
		return enc.EncodeAll(raw, dst), nil
	}
	written, _, err := compressChunks(ctx, in, []segment{{0, size, kindPlain}}, out, o, nil, encode)
	st.CompressedBytes = written
	return st, err
}
