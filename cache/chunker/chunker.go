// Package chunker cuts a blob into content-defined chunks, so that two
// versions of a large file that share most of their bytes share most of
// their chunks: the remote cache stores and moves each chunk once.
//
// The cut points are FastCDC 2020 (Xia et al., "The Design of Fast
// Content-Defined Chunking for Data Deduplication Based Storage Systems",
// IEEE TPDS 2020): a gear rolling hash, normalized chunking with a stricter
// mask before the average size and a looser one after it, and no cut before
// the minimum or after the maximum size. The gear table is ours (splitmix64
// from seed 0, see gear), and the masks take the hash's top bits, so that
// every cut depends on the last 64 bytes.
//
// On top of that, StructureCuts gives structure cuts for safetensors and GGUF files:
// at the end of the header and at the start of every tensor (merging tensors
// shorter than a given length with the next one). An unchanged tensor
// is then an unchanged run of chunks wherever it moved in the file, and a
// changed header (metadata) touches only the header's chunks. These cuts
// make our chunks differ from a REAPI server's plain FastCDC chunks of the
// same bytes: the chunk lists are cogumi's own, not the REAPI split/splice
// messages' (the chunks of a plain file, with no structure, are the same as
// plain FastCDC 2020 with our gear table and masks).
package chunker

import (
	"fmt"
	"io"
	"math/bits"
)

// Params bounds the chunk sizes: no chunk is shorter than Min (except at a
// structure cut or the end of the blob) or longer than Max, and chunks
// average about Avg bytes on random content.
type Params struct {
	Min, Avg, Max int
}

// Default is what the remote cache uses: an average of 2 MiB (min 512 KiB,
// max 8 MiB). Measured on a TinyLlama-shaped checkpoint and a grown JSONL
// file (see cache/s3/doc.go): smaller chunks dedup a few percent more of
// unstructured files but cost a request each; with structure cuts, tensors
// dedup whole at any size.
var Default = Params{Min: 512 << 10, Avg: 2 << 20, Max: 8 << 20}

// Validate checks that p can chunk: 64 <= Min <= Avg <= Max <= 1 GiB, Avg a
// power of two.
func (p Params) Validate() error {
	if p.Min < 64 || p.Min > p.Avg || p.Avg > p.Max || p.Max > 1<<30 || p.Avg&(p.Avg-1) != 0 {
		return fmt.Errorf("chunker: invalid sizes min %d, avg %d, max %d (want 64 <= min <= avg <= max <= 1 GiB, avg a power of two)", p.Min, p.Avg, p.Max)
	}
	return nil
}

// masks returns FastCDC's normalized masks (level 2): maskS, used before
// the average size, has two more bits than log2(Avg), maskL two fewer.
func (p Params) masks() (maskS, maskL uint64) {
	b := bits.TrailingZeros(uint(p.Avg))
	top := func(n int) uint64 {
		n = max(1, min(n, 63))
		return ^uint64(0) << (64 - n)
	}
	return top(b + 2), top(b - 2)
}

// gear is the rolling hash's table: 256 pseudo-random words from splitmix64
// starting at 0. It is part of the chunk format: changing it changes every
// cut (a known-answer test guards it).
var gear = func() (g [256]uint64) {
	var x uint64
	for i := range g {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		g[i] = z ^ z>>31
	}
	return g
}()

// cut returns the length of the next chunk at the start of src (all of src
// when it is no longer than Min): FastCDC 2020's cut-point search.
func (p Params) cut(src []byte, maskS, maskL uint64) int {
	n := len(src)
	if n <= p.Min {
		return n
	}
	n = min(n, p.Max)
	src = src[:n]
	center := min(n, p.Avg)
	g := &gear
	var h uint64
	i := p.Min
	for _, b := range src[i:center] {
		h = h<<1 + g[b]
		i++
		if h&maskS == 0 {
			return i
		}
	}
	for _, b := range src[center:] {
		h = h<<1 + g[b]
		i++
		if h&maskL == 0 {
			return i
		}
	}
	return n
}

// Chunk is one chunk of a blob: Len bytes at Off.
type Chunk struct {
	Off, Len int64
}

// Split cuts the size bytes of r into chunks, with a cut at each of the
// offsets in cuts (sorted, within (0, size); others are ignored), and calls
// fn with every chunk in order and its bytes (valid only during the call).
// It reads r sequentially, a few Max-sized windows at a time.
func Split(r io.ReaderAt, size int64, p Params, cuts []int64, fn func(c Chunk, data []byte) error) error {
	return split(r, size, p, cuts, 4*int64(p.Max), nil, fn)
}

// split is Split reading windows of up to window bytes (at least Max),
// into buf if it is large enough (callers reuse one buffer for many splits,
// so that memory is not garbage to collect).
func split(r io.ReaderAt, size int64, p Params, cuts []int64, window int64, buf []byte, fn func(c Chunk, data []byte) error) error {
	if err := p.Validate(); err != nil {
		return err
	}
	maskS, maskL := p.masks()
	if need := min(max(window, int64(p.Max)), size); int64(cap(buf)) >= need {
		buf = buf[:need]
	} else {
		buf = make([]byte, need)
	}
	var bufOff int64 // offset of buf[0] in r
	var bufLen int   // valid bytes in buf
	off := int64(0)
	for off < size {
		end := size
		for len(cuts) > 0 && cuts[0] <= off {
			cuts = cuts[1:]
		}
		if len(cuts) > 0 && cuts[0] < end {
			end = cuts[0]
		}
		// Make buf hold [off, min(end, off+Max)).
		want := min(end, off+int64(p.Max))
		if off < bufOff || want > bufOff+int64(bufLen) {
			keep := 0
			if off >= bufOff && off < bufOff+int64(bufLen) {
				keep = copy(buf, buf[off-bufOff:bufLen])
			}
			n := min(int64(len(buf)-keep), size-off-int64(keep))
			if _, err := r.ReadAt(buf[keep:keep+int(n)], off+int64(keep)); err != nil && !(err == io.EOF && int64(keep)+n == size-off) {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("chunker: reading at %d: %w", off+int64(keep), err)
			}
			bufOff, bufLen = off, keep+int(n)
		}
		win := buf[off-bufOff : want-bufOff]
		n := p.cut(win, maskS, maskL)
		if err := fn(Chunk{Off: off, Len: int64(n)}, win[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// Chunks returns the chunks of data (structure cuts included), a
// convenience for tests and small blobs.
func Chunks(data []byte, p Params) ([]Chunk, error) {
	var out []Chunk
	r := bytesReaderAt(data)
	err := Split(r, int64(len(data)), p, StructureCuts(r, int64(len(data)), p.Min), func(c Chunk, _ []byte) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
