package zpack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/zstd"
	"lukechampine.com/blake3"
)

const (
	containerMagic   = "CGZP"
	containerVersion = 1
	headerLen        = 4 + 2 + 2 + 8 + 32
	maxPlanes        = 3
	frameHeaderMax   = 1 + 4 + maxPlanes*5
)

// ErrCorrupt is wrapped by every error about a malformed or damaged
// compressed input, so callers can tell it from an I/O failure.
var ErrCorrupt = errors.New("zpack: corrupt input")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// readErr classifies a read failure: running out of input means the
// container is truncated (corrupt); anything else is an I/O error.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("truncated %s", what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

type containerHeader struct {
	size uint64
	sum  [32]byte
}

func (h containerHeader) marshal() []byte {
	b := make([]byte, 0, headerLen)
	b = append(b, containerMagic...)
	b = binary.LittleEndian.AppendUint16(b, containerVersion)
	b = binary.LittleEndian.AppendUint16(b, 0) // flags
	b = binary.LittleEndian.AppendUint64(b, h.size)
	return append(b, h.sum[:]...)
}

func parseContainerHeader(b []byte) (containerHeader, error) {
	var h containerHeader
	if len(b) < headerLen || string(b[:4]) != containerMagic {
		return h, corruptf("not a CGZP container")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != containerVersion {
		return h, corruptf("container version %d, this build reads version %d", v, containerVersion)
	}
	if f := binary.LittleEndian.Uint16(b[6:]); f != 0 {
		return h, corruptf("unknown container flags %#x", f)
	}
	h.size = binary.LittleEndian.Uint64(b[8:])
	copy(h.sum[:], b[16:48])
	return h, nil
}

// chunk is one frame on its way through the pipeline.
type chunk struct {
	kind  frameKind
	raw   []byte  // original bytes
	out   []byte  // frame bytes
	codes []codec // decompression: codec of each plane
	lens  []int   // decompression: payload length of each plane
	// rawLen is, in decompression, the original bytes the frame restores.
	rawLen int
}

// compressContainer writes the weight-aware container for src (size bytes)
// to dst, which must be a fresh file: the header is written last, at
// offset 0, once the checksum is known.
func compressContainer(ctx context.Context, src *os.File, size int64, dst *os.File, o Options) (Stats, error) {
	st := Stats{Format: FormatContainer, OriginalBytes: size}
	segs, err := planSegments(src, size)
	if err != nil {
		return st, err
	}
	enc, err := newEncoder(o)
	if err != nil {
		return st, err
	}
	defer enc.Close()
	encoders := make([]planeEncoder, o.Threads)
	planeBufs := make([][maxPlanes][]byte, o.Threads)
	for i := range encoders {
		encoders[i] = planeEncoder{enc: enc, level: o.Level}
	}
	encode := func(w int, dst []byte, k frameKind, raw []byte) ([]byte, error) {
		return encodeFrame(&encoders[w], &planeBufs[w], dst, k, raw)
	}
	hasher := blake3.New(32, nil)
	bw := bufio.NewWriterSize(dst, 1<<20)
	if _, err := bw.Write(make([]byte, headerLen)); err != nil {
		return st, fmt.Errorf("write container header: %w", err)
	}
	written, counts, err := compressChunks(ctx, src, segs, bw, o, hasher, encode)
	if err != nil {
		return st, err
	}
	st.PlainFrames, st.BF16Frames, st.F16Frames = counts[kindPlain], counts[kindBF16], counts[kindF16]
	if err := bw.WriteByte(byte(kindEnd)); err != nil {
		return st, fmt.Errorf("write container: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write container: %w", err)
	}
	h := containerHeader{size: uint64(size)}
	copy(h.sum[:], hasher.Sum(nil))
	if _, err := dst.WriteAt(h.marshal(), 0); err != nil {
		return st, fmt.Errorf("write container header: %w", err)
	}
	st.CompressedBytes = headerLen + written + 1
	return st, nil
}

// encodeFrame appends the frame for raw to dst: kind (uint8), original
// length (uint32), one (codec uint8, length uint32) pair per plane, then
// the planes' payloads in order.
func encodeFrame(e *planeEncoder, bufs *[maxPlanes][]byte, dst []byte, k frameKind, raw []byte) ([]byte, error) {
	lens, ok := planeLens(k, len(raw))
	if !ok {
		return dst, fmt.Errorf("frame of %d bytes cannot be %s", len(raw), k)
	}
	planes := make([][]byte, len(lens))
	if k == kindPlain {
		planes[0] = raw
	} else {
		for i, n := range lens {
			if cap(bufs[i]) < n {
				bufs[i] = make([]byte, n)
			}
			planes[i] = bufs[i][:n]
		}
		if k == kindBF16 {
			splitBF16(raw, planes[0], planes[1])
		} else {
			splitF16(raw, planes[0], planes[1], planes[2])
		}
	}
	dst = append(dst, byte(k))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(raw)))
	desc := len(dst)
	dst = append(dst, make([]byte, 5*len(planes))...)
	for i, p := range planes {
		start := len(dst)
		var c codec
		var err error
		dst, c, err = e.encodePlane(dst, p, roleOf(k, i))
		if err != nil {
			return dst, fmt.Errorf("plane %d: %w", i, err)
		}
		dst[desc+5*i] = byte(c)
		binary.LittleEndian.PutUint32(dst[desc+5*i+1:], uint32(len(dst)-start))
	}
	return dst, nil
}

// decompressContainer restores the original bytes of a container whose
// magic r has not consumed yet, writing them to w. The checksum is checked
// at the end: w has received unverified bytes when it fails, so callers
// that need all-or-nothing write to a temporary file (DecompressFile does).
func decompressContainer(ctx context.Context, w io.Writer, r *bufio.Reader, threads int) (Stats, error) {
	st := Stats{Format: FormatContainer}
	hb := make([]byte, headerLen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return st, readErr("container header", err)
	}
	h, err := parseContainerHeader(hb)
	if err != nil {
		return st, err
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(threads),
		zstd.WithDecoderMaxMemory(maxFrameRaw),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return st, fmt.Errorf("zstd decoder: %w", err)
	}
	defer dec.Close()
	decoders := make([]planeDecoder, threads)
	planeBufs := make([][maxPlanes][]byte, threads)
	raws, payloads := newBufPool(2*threads+2), newBufPool(2*threads+2)
	for i := range decoders {
		decoders[i] = planeDecoder{dec: dec}
	}
	hasher := blake3.New(32, nil)
	var declared, restored uint64
	read := int64(headerLen)
	frame := 0

	produce := func(ctx context.Context, emit func(*chunk) error) error {
		for ; ; frame++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			c, n, err := readFrame(r, h.size-declared, payloads)
			read += n
			if err != nil {
				return fmt.Errorf("frame %d at offset %d: %w", frame, read-n, err)
			}
			if c == nil {
				return expectEOF(r)
			}
			declared += uint64(c.rawLen)
			if err := emit(c); err != nil {
				return err
			}
		}
	}
	work := func(wk int, c *chunk) (*chunk, error) {
		err := decodeFrame(&decoders[wk], &planeBufs[wk], raws, c)
		payloads.put(c.out)
		c.out = nil
		if err != nil {
			return c, corruptf("%s frame: %v", c.kind, err)
		}
		return c, nil
	}
	consume := func(c *chunk) error {
		hasher.Write(c.raw)
		if _, err := w.Write(c.raw); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		restored += uint64(len(c.raw))
		raws.put(c.raw)
		switch c.kind {
		case kindPlain:
			st.PlainFrames++
		case kindBF16:
			st.BF16Frames++
		case kindF16:
			st.F16Frames++
		}
		return nil
	}
	if err := ordered(ctx, threads, 2*threads, produce, work, consume); err != nil {
		return st, err
	}
	st.OriginalBytes, st.CompressedBytes = int64(restored), read
	if restored != h.size {
		return st, corruptf("restored %d bytes, header says %d", restored, h.size)
	}
	if !bytes.Equal(hasher.Sum(nil), h.sum[:]) {
		return st, corruptf("BLAKE3 checksum mismatch: the restored bytes differ from the original")
	}
	return st, nil
}

// readFrame reads one frame's header and payload. It returns a nil chunk
// at the end marker. remaining bounds the frame's original length. The
// payload buffer grows as bytes arrive, so a frame that claims more than
// the input holds costs no more memory than the input itself.
func readFrame(r *bufio.Reader, remaining uint64, payloads bufPool) (*chunk, int64, error) {
	kb, err := r.ReadByte()
	if err != nil {
		return nil, 0, readErr("container (no end marker)", err)
	}
	k := frameKind(kb)
	if k == kindEnd {
		return nil, 1, nil
	}
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, 1, readErr("frame header", err)
	}
	n := binary.LittleEndian.Uint32(lb[:])
	if n == 0 || n > maxFrameRaw || uint64(n) > remaining {
		return nil, 5, corruptf("%s frame claims %d bytes (%d left of the original, frame limit %d)", k, n, remaining, maxFrameRaw)
	}
	lens, ok := planeLens(k, int(n))
	if !ok {
		return nil, 5, corruptf("frame kind %d with %d bytes is not valid", kb, n)
	}
	desc := make([]byte, 5*len(lens))
	if _, err := io.ReadFull(r, desc); err != nil {
		return nil, 5, readErr("plane table", err)
	}
	c := &chunk{kind: k, codes: make([]codec, len(lens)), lens: make([]int, len(lens))}
	total := 0
	for i, pl := range lens {
		c.codes[i] = codec(desc[5*i])
		m := binary.LittleEndian.Uint32(desc[5*i+1:])
		if uint64(m) > uint64(pl) || (c.codes[i] == codecStored && int(m) != pl) {
			return nil, 5 + int64(len(desc)), corruptf("plane %d: %d payload bytes for a %d-byte plane", i, m, pl)
		}
		c.lens[i] = int(m)
		total += int(m)
	}
	c.out, err = readN(r, total, payloads.take())
	if err != nil {
		return nil, 5 + int64(len(desc)+len(c.out)), readErr("frame payload", err)
	}
	c.rawLen = int(n)
	return c, 5 + int64(len(desc)+total), nil
}

// readN reads exactly n bytes into buf (reused if large enough), growing
// it in steps otherwise.
func readN(r io.Reader, n int, buf []byte) ([]byte, error) {
	const step = 4 << 20
	if cap(buf) >= n {
		m, err := io.ReadFull(r, buf[:n])
		return buf[:m], err
	}
	buf = buf[:0]
	for len(buf) < n {
		k := min(n-len(buf), step)
		buf = slices.Grow(buf, k)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// decodeFrame fills c.raw (of c.rawLen bytes, from raws) from the payload
// in c.out, using the worker's plane buffers.
func decodeFrame(d *planeDecoder, bufs *[maxPlanes][]byte, raws bufPool, c *chunk) error {
	lens, _ := planeLens(c.kind, c.rawLen)
	c.raw = raws.get(c.rawLen)
	planes := make([][]byte, len(lens))
	if c.kind == kindPlain {
		planes[0] = c.raw
	} else {
		for i, n := range lens {
			if cap(bufs[i]) < n {
				bufs[i] = make([]byte, n)
			}
			planes[i] = bufs[i][:n]
		}
	}
	src := c.out
	for i, p := range planes {
		if c.kind != kindPlain && c.codes[i] == codecStored {
			planes[i] = src[:len(p)] // readFrame checked the length; no copy
		} else if err := d.decodePlane(p, src[:c.lens[i]], c.codes[i]); err != nil {
			return fmt.Errorf("plane %d: %w", i, err)
		}
		src = src[c.lens[i]:]
	}
	switch c.kind {
	case kindBF16:
		mergeBF16(c.raw, planes[0], planes[1])
	case kindF16:
		return mergeF16(c.raw, planes[0], planes[1], planes[2])
	}
	return nil
}

func expectEOF(r *bufio.Reader) error {
	if _, err := r.ReadByte(); err != io.EOF {
		if err == nil {
			return corruptf("trailing bytes after the end marker")
		}
		return fmt.Errorf("read after end marker: %w", err)
	}
	return nil
}
