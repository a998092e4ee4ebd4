package s3

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"

	"github.com/cogumi/cogumi/cache"
)

// Object formats, the value of the cogumi-format metadata.
const (
	// formatRaw: the object's bytes are the blob's bytes.
	formatRaw = "raw"
	// formatFrames: independent zstd frames, an index and a trailer (see doc.go).
	formatFrames = "zstd-frames-v1"
)

// Layout constants of formatFrames.
const (
	trailerSize   = 64
	indexEntry    = 4
	framesMagic   = "cogumiZF"
	framesVersion = 1
	// rawFlag marks an index entry whose frame is stored uncompressed.
	rawFlag = 1 << 31
	// minFrameSize and maxFrameSize bound what a reader accepts (writers
	// use 8 MiB), so that a hostile trailer can neither make a reader
	// allocate gigabytes for its few frames in flight nor issue millions of
	// tiny requests.
	minFrameSize = 64 << 10
	maxFrameSize = 64 << 20
	// maxIndexLen bounds the index a reader fetches: 16M frames, 128 TiB in
	// frames of 8 MiB, more than any S3 object.
	maxIndexLen = 64 << 20
)

// crc32c checksums the index (CRC-32C, the checksum S3 itself offers).
// MakeTable returns the same shared table on every call for Castagnoli.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// trailer is the fixed-size end of a formatFrames object.
type trailer struct {
	digest     cache.Digest
	size       int64 // of the blob (original bytes)
	frameSize  int64 // of every frame's original bytes but the last
	frameCount int64
	indexCRC   uint32
}

// marshal writes t as the 64 bytes that end an object:
//
//	0  [32]byte digest     BLAKE3 of the original bytes
//	32 uint64   size       original bytes
//	40 uint32   frame size original bytes per frame (the last may be shorter)
//	44 uint32   frame count
//	48 uint32   CRC-32C of the index
//	52 uint32   version (1)
//	56 [8]byte  magic "cogumiZF"
//
// All integers are little-endian.
func (t trailer) marshal() []byte {
	b := make([]byte, trailerSize)
	copy(b, t.digest[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(t.size))
	binary.LittleEndian.PutUint32(b[40:], uint32(t.frameSize))
	binary.LittleEndian.PutUint32(b[44:], uint32(t.frameCount))
	binary.LittleEndian.PutUint32(b[48:], t.indexCRC)
	binary.LittleEndian.PutUint32(b[52:], framesVersion)
	copy(b[56:], framesMagic)
	return b
}

// frameCount returns how many frames of frameSize hold size bytes.
func frameCount(size, frameSize int64) int64 {
	return (size + frameSize - 1) / frameSize
}

// frame is where one frame's bytes are, in the blob and in the object.
type frame struct {
	index          int64
	off, len       int64 // original bytes
	storedOff, end int64 // the object's byte range [storedOff, end)
	raw            bool  // stored uncompressed
}

// storedLen is the number of bytes the frame occupies in the object.
func (f frame) storedLen() int64 { return f.end - f.storedOff }

// layout describes one stored object: where each frame is. It keeps the
// index as stored (4 bytes a frame), not a slice of frames, so that even a
// multi-terabyte blob's layout is small.
type layout struct {
	format     string
	size       int64 // original bytes
	objectSize int64
	frameSize  int64
	index      []byte // formatFrames only
}

// rawLayout describes a formatRaw object of size bytes, cut into frames of
// frameSize so that it is fetched with the same parallel ranged GETs.
func rawLayout(size, frameSize int64) *layout {
	return &layout{format: formatRaw, size: size, objectSize: size, frameSize: frameSize}
}

// numFrames returns the number of frames.
func (l *layout) numFrames() int64 { return frameCount(l.size, l.frameSize) }

// frames yields the frames in order.
func (l *layout) frames() iter.Seq[frame] {
	return func(yield func(frame) bool) {
		var stored int64
		for i := range l.numFrames() {
			off := i * l.frameSize
			f := frame{index: i, off: off, len: min(l.frameSize, l.size-off), raw: true}
			n := f.len
			if l.index != nil {
				e := binary.LittleEndian.Uint32(l.index[i*indexEntry:])
				f.raw, n = e&rawFlag != 0, int64(e&^rawFlag)
			}
			f.storedOff, f.end = stored, stored+n
			stored += n
			if !yield(f) {
				return
			}
		}
	}
}

// errLayout marks a trailer or index that cannot be trusted; the caller
// reports it as a *cache.CorruptError.
var errLayout = errors.New("invalid object")

// parseTrailer checks the last trailerSize bytes of an object of objectSize
// bytes that should hold blob d of size bytes.
func parseTrailer(b []byte, d cache.Digest, size, objectSize int64) (trailer, error) {
	if len(b) != trailerSize {
		return trailer{}, fmt.Errorf("%w: object of %d bytes is too short for a trailer", errLayout, objectSize)
	}
	if string(b[56:]) != framesMagic {
		return trailer{}, fmt.Errorf("%w: no cogumi trailer (magic %q); truncated or overwritten", errLayout, b[56:])
	}
	if v := binary.LittleEndian.Uint32(b[52:]); v != framesVersion {
		return trailer{}, fmt.Errorf("%w: trailer version %d, want %d (written by a newer cogumi?)", errLayout, v, framesVersion)
	}
	var t trailer
	copy(t.digest[:], b)
	t.size = int64(binary.LittleEndian.Uint64(b[32:]))
	t.frameSize = int64(binary.LittleEndian.Uint32(b[40:]))
	t.frameCount = int64(binary.LittleEndian.Uint32(b[44:]))
	t.indexCRC = binary.LittleEndian.Uint32(b[48:])
	switch {
	case t.digest != d:
		return trailer{}, fmt.Errorf("%w: trailer names blob %s", errLayout, t.digest)
	case t.size != size || t.size < 0:
		return trailer{}, fmt.Errorf("%w: trailer says %d bytes, metadata %d", errLayout, t.size, size)
	case t.frameSize < minFrameSize || t.frameSize > maxFrameSize:
		return trailer{}, fmt.Errorf("%w: impossible frame size %d", errLayout, t.frameSize)
	case t.frameCount != frameCount(t.size, t.frameSize):
		return trailer{}, fmt.Errorf("%w: %d frames cannot hold %d bytes in frames of %d", errLayout, t.frameCount, t.size, t.frameSize)
	case t.indexLen() > maxIndexLen:
		return trailer{}, fmt.Errorf("%w: index of %d frames is larger than the limit of %d bytes", errLayout, t.frameCount, maxIndexLen)
	case t.indexLen()+trailerSize > objectSize:
		return trailer{}, fmt.Errorf("%w: object of %d bytes is too short for an index of %d frames", errLayout, objectSize, t.frameCount)
	}
	return t, nil
}

// indexLen returns the byte length of t's index.
func (t trailer) indexLen() int64 { return t.frameCount * indexEntry }

// parseIndex checks the index of an object with trailer t and returns the
// layout. Every frame must lie inside the object, the frames and the index
// must fill it exactly, and a compressed frame must be shorter than its
// original bytes (the writer stores a frame raw otherwise).
func parseIndex(index []byte, t trailer, objectSize int64) (*layout, error) {
	if int64(len(index)) != t.indexLen() {
		return nil, fmt.Errorf("%w: index of %d bytes, want %d", errLayout, len(index), t.indexLen())
	}
	if crc32c(index) != t.indexCRC {
		return nil, fmt.Errorf("%w: index checksum mismatch", errLayout)
	}
	l := &layout{format: formatFrames, size: t.size, objectSize: objectSize, frameSize: t.frameSize, index: index}
	var stored int64
	for f := range l.frames() {
		if f.raw && f.storedLen() != f.len || !f.raw && (f.storedLen() == 0 || f.storedLen() >= f.len) {
			return nil, fmt.Errorf("%w: frame %d of %d bytes stored in %d bytes (raw=%v)", errLayout, f.index, f.len, f.storedLen(), f.raw)
		}
		stored = f.end
	}
	if stored+t.indexLen()+trailerSize != objectSize {
		return nil, fmt.Errorf("%w: frames, index and trailer make %d bytes, object has %d", errLayout, stored+t.indexLen()+trailerSize, objectSize)
	}
	return l, nil
}

// indexBuilder accumulates index entries as frames are stored in order.
type indexBuilder struct {
	entries []byte
	stored  int64
}

// add records the next frame: n stored bytes, raw or compressed.
func (b *indexBuilder) add(n int, raw bool) {
	e := uint32(n)
	if raw {
		e |= rawFlag
	}
	b.entries = binary.LittleEndian.AppendUint32(b.entries, e)
	b.stored += int64(n)
}

// tail returns the index and trailer that end the object of blob d.
func (b *indexBuilder) tail(d cache.Digest, size, frameSize int64) []byte {
	t := trailer{
		digest:     d,
		size:       size,
		frameSize:  frameSize,
		frameCount: int64(len(b.entries) / indexEntry),
		indexCRC:   crc32c(b.entries),
	}
	return append(append([]byte(nil), b.entries...), t.marshal()...)
}

// maxObjectSize bounds the object that holds a blob of size bytes in
// frames of frameSize: a frame is never stored larger than its original.
func maxObjectSize(size, frameSize int64) int64 {
	return size + frameCount(size, frameSize)*indexEntry + trailerSize
}
