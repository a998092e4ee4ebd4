package zpack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

// codec says how one plane of a frame is stored.
type codec uint8

const (
	codecStored codec = 0 // the plane's bytes as they are
	codecZstd   codec = 1 // one zstd frame
	codecHuff0  codec = 2 // huff0 blocks, see encodeHuff0
)

// huffBlock is the plane bytes per huff0 block (huff0 takes < 256 KiB).
const huffBlock = 128 << 10

// huff0 block modes.
const (
	huffStored = 0 // huffBlock (or fewer, last block) raw bytes follow
	huffCoded  = 1 // uint32 length, then a huff0 4X table and stream
	huffRLE    = 2 // one byte, repeated for the whole block
)

// planeEncoder codes planes; each worker goroutine owns one.
type planeEncoder struct {
	enc     *zstd.Encoder // shared, EncodeAll is safe for concurrent use
	level   zstd.EncoderLevel
	huff    huff0.Scratch
	scratch []byte
}

// encodePlane appends the coded form of p to dst and returns it with the
// codec used. A plain frame's bytes go to zstd. Exponent and mantissa
// planes go to huff0, which beat zstd on every such plane we measured
// (dense and pruned weights, at every level), except that a mantissa plane
// whose byte histogram is flat is stored without trying; at the better and
// best levels zstd is tried as well and the smaller kept. Payloads never
// exceed len(p): when coding does not help, the plane is stored.
func (e *planeEncoder) encodePlane(dst, p []byte, role planeRole) ([]byte, codec, error) {
	if len(p) == 0 {
		return dst, codecStored, nil
	}
	start := len(dst)
	c := codecZstd
	switch {
	case role == roleBytes:
		dst = e.enc.EncodeAll(p, dst)
	case role == roleMantissa && nearlyRandom(p):
		return append(dst, p...), codecStored, nil
	default:
		var err error
		if dst, err = e.encodeHuff0(dst, p); err != nil {
			return dst[:start], 0, err
		}
		c = codecHuff0
		if e.level >= zstd.SpeedBetterCompression {
			e.scratch = e.enc.EncodeAll(p, e.scratch[:0])
			if len(e.scratch) < len(dst)-start {
				dst = append(dst[:start], e.scratch...)
				c = codecZstd
			}
		}
	}
	if len(dst)-start < len(p) {
		return dst, c, nil
	}
	return append(dst[:start], p...), codecStored, nil
}

// randomBits is the order-0 entropy, in bits per byte, above which a
// mantissa plane is stored without trying zstd: entropy coding could save
// at most 1.25% of it, and zstd's attempt costs as much as coding the
// exponent plane. (It misses long repeats in a plane whose byte histogram
// is flat; weight mantissas have none worth finding.)
const randomBits = 7.9

// nearlyRandom reports whether p's byte histogram is so flat that its
// order-0 entropy exceeds randomBits.
func nearlyRandom(p []byte) bool {
	if len(p) < 1<<12 {
		return false
	}
	var c [4][256]uint32
	i := 0
	for ; i+4 <= len(p); i += 4 {
		c[0][p[i]]++
		c[1][p[i+1]]++
		c[2][p[i+2]]++
		c[3][p[i+3]]++
	}
	for ; i < len(p); i++ {
		c[0][p[i]]++
	}
	n := float64(len(p))
	var sum float64
	for b := range 256 {
		if k := float64(c[0][b] + c[1][b] + c[2][b] + c[3][b]); k > 0 {
			sum += k * math.Log2(k)
		}
	}
	return math.Log2(n)-sum/n > randomBits
}

// encodeHuff0 appends p coded as huff0 blocks of huffBlock bytes (the last
// one shorter). Each block is a mode byte and then: for huffStored the raw
// bytes; for huffRLE one byte; for huffCoded a uint32 length and that many
// bytes of huff0 4X output (table included, no table reuse between blocks).
func (e *planeEncoder) encodeHuff0(dst, p []byte) ([]byte, error) {
	e.huff.Reuse = huff0.ReusePolicyNone
	for off := 0; off < len(p); off += huffBlock {
		blk := p[off:min(off+huffBlock, len(p))]
		out, _, err := huff0.Compress4X(blk, &e.huff)
		switch {
		case errors.Is(err, huff0.ErrUseRLE):
			dst = append(dst, huffRLE, blk[0])
		case errors.Is(err, huff0.ErrIncompressible):
			dst = append(append(dst, huffStored), blk...)
		case err != nil:
			return dst, fmt.Errorf("huff0: %w", err)
		case len(out) >= len(blk):
			dst = append(append(dst, huffStored), blk...)
		default:
			dst = append(dst, huffCoded)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(out)))
			dst = append(dst, out...)
		}
	}
	return dst, nil
}

// planeDecoder decodes planes; each worker goroutine owns one.
type planeDecoder struct {
	dec  *zstd.Decoder // shared, DecodeAll is safe for concurrent use
	huff huff0.Scratch
}

// decodePlane fills p (whose length is the plane's exact size) from src.
func (d *planeDecoder) decodePlane(p, src []byte, c codec) error {
	switch c {
	case codecStored:
		if len(src) != len(p) {
			return fmt.Errorf("stored plane has %d bytes, want %d", len(src), len(p))
		}
		copy(p, src)
		return nil
	case codecZstd:
		out, err := d.dec.DecodeAll(src, p[:0:len(p)])
		if err != nil {
			return fmt.Errorf("zstd plane: %w", err)
		}
		if len(out) != len(p) {
			return fmt.Errorf("zstd plane decodes to %d bytes, want %d", len(out), len(p))
		}
		if len(p) > 0 && &out[0] != &p[0] {
			copy(p, out)
		}
		return nil
	case codecHuff0:
		return d.decodeHuff0(p, src)
	default:
		return fmt.Errorf("unknown plane codec %d", c)
	}
}

func (d *planeDecoder) decodeHuff0(p, src []byte) error {
	for off := 0; off < len(p); off += huffBlock {
		blk := p[off:min(off+huffBlock, len(p))]
		if len(src) < 1 {
			return fmt.Errorf("huff0 block at plane offset %d: missing", off)
		}
		mode := src[0]
		src = src[1:]
		switch mode {
		case huffStored:
			if len(src) < len(blk) {
				return fmt.Errorf("huff0 block at plane offset %d: stored block truncated", off)
			}
			copy(blk, src[:len(blk)])
			src = src[len(blk):]
		case huffRLE:
			if len(src) < 1 {
				return fmt.Errorf("huff0 block at plane offset %d: RLE byte missing", off)
			}
			for i := range blk {
				blk[i] = src[0]
			}
			src = src[1:]
		case huffCoded:
			if len(src) < 4 {
				return fmt.Errorf("huff0 block at plane offset %d: length truncated", off)
			}
			n := binary.LittleEndian.Uint32(src)
			src = src[4:]
			if uint64(n) > uint64(len(src)) {
				return fmt.Errorf("huff0 block at plane offset %d: %d bytes claimed, %d left", off, n, len(src))
			}
			s, rest, err := huff0.ReadTable(src[:n], &d.huff)
			if err != nil {
				return fmt.Errorf("huff0 block at plane offset %d: table: %w", off, err)
			}
			out, err := s.Decoder().Decompress4X(blk[:0:len(blk)], rest)
			if err != nil {
				return fmt.Errorf("huff0 block at plane offset %d: %w", off, err)
			}
			if len(out) != len(blk) {
				return fmt.Errorf("huff0 block at plane offset %d: decodes to %d bytes, want %d", off, len(out), len(blk))
			}
			if len(out) > 0 && &out[0] != &blk[0] {
				copy(blk, out)
			}
			src = src[n:]
		default:
			return fmt.Errorf("huff0 block at plane offset %d: unknown mode %d", off, mode)
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("huff0 plane: %d trailing bytes", len(src))
	}
	return nil
}
