package zpack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/zpack/internal/synth"
)

// sampleContainer holds every frame kind and every plane codec: BF16 and
// F16 planes (huff0 and zstd), a zero tensor (huff0 RLE blocks), F32 and
// the header as plain frames.
func sampleContainer(t testing.TB) (orig, comp []byte) {
	t.Helper()
	orig = safetensors(t,
		synth.Tensor{Name: "a", Dtype: "BF16", Data: gaussian16(t, 1200, 0.02, 0, 1, synth.BF16)},
		synth.Tensor{Name: "b", Dtype: "F16", Data: gaussian16(t, 801, 0.02, 0, 2, synth.F16)},
		synth.Tensor{Name: "c", Dtype: "F32", Data: f32Bytes(100, 3)},
		synth.Tensor{Name: "d", Dtype: "BF16", Data: make([]byte, 2000)})
	return orig, containerOf(t, orig, 500)
}

// codecCensus counts the plane codecs used in a container.
func codecCensus(t *testing.T, comp []byte) map[codec]int {
	t.Helper()
	h, err := parseContainerHeader(comp)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(comp[headerLen:]))
	census := map[codec]int{}
	remaining := h.size
	for {
		c, _, err := readFrame(r, remaining, newBufPool(1))
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			return census
		}
		remaining -= uint64(c.rawLen)
		for _, k := range c.codes {
			census[k]++
		}
	}
}

func decompressBytes(in []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := Decompress(context.Background(), &out, bytes.NewReader(in))
	return out.Bytes(), err
}

func TestCorruptContainerRejected(t *testing.T) {
	orig, comp := sampleContainer(t)
	if got, err := decompressBytes(comp); err != nil || !bytes.Equal(got, orig) {
		t.Fatalf("intact container: %v", err)
	}
	if census := codecCensus(t, comp); census[codecStored] == 0 || census[codecZstd] == 0 || census[codecHuff0] == 0 {
		t.Fatalf("sample does not use every codec: %v", census)
	}
	// Every truncation fails.
	for n := 0; n < len(comp); n++ {
		if _, err := decompressBytes(comp[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: got %v, want ErrCorrupt", n, len(comp), err)
		}
	}
	// Every single-byte change either fails (a length check, a decoder,
	// zstd's frame checksum or the final BLAKE3 catches it) or does not
	// change what is restored (a zstd window descriptor, say).
	accepted := 0
	for i := range comp {
		bad := bytes.Clone(comp)
		bad[i] ^= 0x5a
		got, err := decompressBytes(bad)
		switch {
		case err == nil && !bytes.Equal(got, orig):
			t.Fatalf("byte %d changed: wrong output accepted", i)
		case err == nil:
			accepted++
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("byte %d changed: got %v, want ErrCorrupt", i, err)
		}
	}
	if accepted > 8 {
		t.Errorf("%d single-byte changes went unnoticed", accepted)
	}
	if _, err := decompressBytes(append(bytes.Clone(comp), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: got %v", err)
	}
}

func TestCorruptHeaderMessages(t *testing.T) {
	_, comp := sampleContainer(t)
	tests := []struct {
		name   string
		mutate func(b []byte)
		want   string
	}{
		{"version", func(b []byte) { binary.LittleEndian.PutUint16(b[4:], 2) }, "version 2"},
		{"flags", func(b []byte) { binary.LittleEndian.PutUint16(b[6:], 1) }, "flags"},
		{"size larger", func(b []byte) { binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])+1) }, "restored"},
		{"size smaller", func(b []byte) { binary.LittleEndian.PutUint64(b[8:], 10) }, "left of the original"},
		{"checksum", func(b []byte) { b[20] ^= 1 }, "BLAKE3"},
		{"frame kind", func(b []byte) { b[headerLen] = 9 }, "not valid"},
		{"frame length", func(b []byte) { binary.LittleEndian.PutUint32(b[headerLen+1:], maxFrameRaw+1) }, "frame limit"},
		{"plane length", func(b []byte) { binary.LittleEndian.PutUint32(b[headerLen+6:], 1<<30) }, "payload bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(comp)
			tc.mutate(bad)
			_, err := decompressBytes(bad)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCorruptZstdRejected(t *testing.T) {
	data := []byte(strings.Repeat("zpack plain stream ", 5000))
	_, comp := roundTrip(t, data, Options{})
	for _, n := range []int{4, 10, len(comp) / 2, len(comp) - 1} {
		if _, err := decompressBytes(comp[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d of %d: got %v, want ErrCorrupt", n, len(comp), err)
		}
	}
	bad := bytes.Clone(comp)
	bad[len(bad)-2] ^= 0xff // inside the content checksum
	if _, err := decompressBytes(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged checksum: got %v, want ErrCorrupt", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestWriteErrorIsNotCorruption(t *testing.T) {
	_, comp := sampleContainer(t)
	_, zst := roundTrip(t, []byte(strings.Repeat("x", 100000)), Options{})
	for name, in := range map[string][]byte{"container": comp, "zstd": zst} {
		_, err := Decompress(context.Background(), failingWriter{}, bytes.NewReader(in))
		if err == nil || errors.Is(err, ErrCorrupt) || !errors.Is(err, io.ErrShortWrite) {
			t.Errorf("%s: got %v, want the writer's error", name, err)
		}
	}
}

// FuzzDecompress feeds arbitrary bytes to Decompress: it must return an
// error or the exact original (the checksum guarantees that), never panic
// or hang. Seeds in testdata/fuzz/FuzzDecompress are small containers of
// each frame kind and a .zst stream; regenerate them with
// ZPACK_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds.
func FuzzDecompress(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := decompressBytes(in)
		if err == nil && len(in) >= 4 && string(in[:4]) == containerMagic {
			h, _ := parseContainerHeader(in)
			if uint64(len(out)) != h.size {
				t.Fatalf("accepted container restored %d bytes, header says %d", len(out), h.size)
			}
		}
	})
}
