package s3

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
)

// buildObject lays data out as a zstd-frames object, as uploads do.
func buildObject(t testing.TB, data []byte, frameSize int64) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	var ib indexBuilder
	var obj []byte
	for off := int64(0); off < int64(len(data)); off += frameSize {
		raw := data[off:min(off+frameSize, int64(len(data)))]
		if c := enc.EncodeAll(raw, nil); len(c) < len(raw) {
			obj = append(obj, c...)
			ib.add(len(c), false)
		} else {
			obj = append(obj, raw...)
			ib.add(len(raw), true)
		}
	}
	return append(obj, ib.tail(cache.DigestBytes(data), int64(len(data)), frameSize)...)
}

// readObject parses and decodes an object completely.
func readObject(obj []byte, d cache.Digest, size int64) ([]byte, error) {
	if len(obj) < trailerSize {
		return nil, errLayout
	}
	total := int64(len(obj))
	tr, err := parseTrailer(obj[total-trailerSize:], d, size, total)
	if err != nil {
		return nil, err
	}
	l, err := parseIndex(obj[total-trailerSize-tr.indexLen():total-trailerSize], tr, total)
	if err != nil {
		return nil, err
	}
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxFrameSize))
	var out []byte
	for f := range l.frames() {
		stored := obj[f.storedOff:f.end]
		if f.raw {
			out = append(out, stored...)
			continue
		}
		b, err := dec.DecodeAll(stored, nil)
		if err != nil || int64(len(b)) != f.len {
			return nil, errLayout
		}
		out = append(out, b...)
	}
	return out, nil
}

func TestFramesRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, minFrameSize - 1, minFrameSize, minFrameSize + 1, 5*minFrameSize + 17} {
		data := cachetest.Pattern(uint64(size), size)
		obj := buildObject(t, data, minFrameSize)
		got, err := readObject(obj, cache.DigestBytes(data), int64(size))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: %v", size, err)
		}
		if max := maxObjectSize(int64(size), minFrameSize); int64(len(obj)) > max {
			t.Errorf("size %d: object of %d bytes, more than the bound %d", size, len(obj), max)
		}
	}
}

func TestHostileTrailer(t *testing.T) {
	data := cachetest.Pattern(9, 3*minFrameSize+5)
	d, size := cache.DigestBytes(data), int64(len(data))
	good := buildObject(t, data, minFrameSize)
	for _, tc := range []struct {
		name string
		edit func(tr []byte)
	}{
		{"magic", func(tr []byte) { tr[60] = 'X' }},
		{"version", func(tr []byte) { binary.LittleEndian.PutUint32(tr[52:], 2) }},
		{"digest", func(tr []byte) { tr[0] ^= 1 }},
		{"size", func(tr []byte) { binary.LittleEndian.PutUint64(tr[32:], uint64(size+1)) }},
		{"tiny frames", func(tr []byte) { binary.LittleEndian.PutUint32(tr[40:], 1) }},
		{"huge frames", func(tr []byte) { binary.LittleEndian.PutUint32(tr[40:], 1<<30) }},
		{"frame count", func(tr []byte) { binary.LittleEndian.PutUint32(tr[44:], 5) }},
		{"index crc", func(tr []byte) { tr[48] ^= 1 }},
	} {
		obj := bytes.Clone(good)
		tc.edit(obj[len(obj)-trailerSize:])
		if _, err := readObject(obj, d, size); !errors.Is(err, errLayout) {
			t.Errorf("%s: %v, want errLayout", tc.name, err)
		}
	}
	// Index entries that lie, with a matching CRC.
	for _, tc := range []struct {
		name  string
		entry uint32
	}{
		{"raw of the wrong length", rawFlag | 10},
		{"compressed as long as raw", minFrameSize},
		{"compressed empty", 0},
		{"past the end", rawFlag | minFrameSize + 1},
	} {
		obj := bytes.Clone(good)
		tail := obj[len(obj)-trailerSize:]
		index := obj[len(obj)-trailerSize-4*4 : len(obj)-trailerSize]
		binary.LittleEndian.PutUint32(index, tc.entry)
		binary.LittleEndian.PutUint32(tail[48:], crc32c(index))
		if _, err := readObject(obj, d, size); !errors.Is(err, errLayout) {
			t.Errorf("%s: %v, want errLayout", tc.name, err)
		}
	}
	if _, err := readObject(good[:len(good)/2], d, size); !errors.Is(err, errLayout) {
		t.Errorf("truncated: %v", err)
	}
}

// FuzzLayout: no trailer and index, however hostile, makes the parser
// panic or describe frames outside the object.
func FuzzLayout(f *testing.F) {
	data := cachetest.Pattern(10, 2*minFrameSize+3)
	f.Add(buildObject(f, data, minFrameSize), int64(len(data)))
	f.Add(buildObject(f, nil, minFrameSize), int64(0))
	d := cache.DigestBytes(data)
	f.Fuzz(func(t *testing.T, obj []byte, size int64) {
		total := int64(len(obj))
		if total < trailerSize {
			return
		}
		tr, err := parseTrailer(obj[total-trailerSize:], d, size, total)
		if err != nil {
			return
		}
		l, err := parseIndex(obj[total-trailerSize-tr.indexLen():total-trailerSize], tr, total)
		if err != nil {
			return
		}
		var n int64
		for fr := range l.frames() {
			if fr.storedOff < 0 || fr.end > total || fr.storedLen() > fr.len || fr.len <= 0 {
				t.Fatalf("frame %+v outside an object of %d bytes", fr, total)
			}
			n += fr.len
		}
		if n != size {
			t.Fatalf("frames hold %d bytes, want %d", n, size)
		}
	})
}

func TestPartSize(t *testing.T) {
	for _, size := range []int64{0, 16<<20 + 1, 1 << 30, 100 << 30, 1 << 40, 5 << 40, 48 << 40} {
		p, err := partSize(size, defaultFrameSize, defaultPartSize)
		if err != nil {
			t.Fatalf("%d: %v", size, err)
		}
		if parts := maxObjectSize(size, defaultFrameSize)/(p-defaultFrameSize) + 1; parts > maxParts || p-defaultFrameSize < minS3Part || p > maxPartSize {
			t.Errorf("size %d: part size %d makes %d parts", size, p, parts)
		}
	}
	if _, err := partSize(50<<40, defaultFrameSize, defaultPartSize); err == nil {
		t.Error("50 TiB accepted")
	}
}
