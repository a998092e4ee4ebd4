package zpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/model/zpack/internal/synth"
)

// writeFile writes data to a new file in a test directory.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// roundTrip compresses data with opts, decompresses it, checks the bytes
// are identical and returns the compression stats and the compressed file.
func roundTrip(t *testing.T, data []byte, opts Options) (Stats, []byte) {
	t.Helper()
	dir := t.TempDir()
	src := writeFile(t, dir, "in", data)
	zp := filepath.Join(dir, "in.zpk")
	st, err := CompressFile(context.Background(), src, zp, opts)
	if err != nil {
		t.Fatalf("compress: %v", err)
	}
	comp, err := os.ReadFile(zp)
	if err != nil {
		t.Fatal(err)
	}
	if st.CompressedBytes != int64(len(comp)) || st.OriginalBytes != int64(len(data)) {
		t.Errorf("stats say %d -> %d bytes, files are %d -> %d", st.OriginalBytes, st.CompressedBytes, len(data), len(comp))
	}
	out := filepath.Join(dir, "out")
	dst, err := DecompressFile(context.Background(), zp, out)
	if err != nil {
		t.Fatalf("decompress: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("round trip changed the bytes: %d in, %d out", len(data), len(got))
	}
	if dst.OriginalBytes != int64(len(data)) || dst.CompressedBytes != int64(len(comp)) {
		t.Errorf("decompress stats say %d <- %d bytes, want %d <- %d", dst.OriginalBytes, dst.CompressedBytes, len(data), len(comp))
	}
	return st, comp
}

// gaussian16 returns n 16-bit values from N(0, std²) as little-endian bytes.
func gaussian16(t testing.TB, n int, std, sparsity float64, seed uint64, conv func(float32) uint16) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := synth.Gaussian(&b, int64(n), std, sparsity, seed, conv); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func f32Bytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]byte, 0, 4*n)
	for range n {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(r.NormFloat64())))
	}
	return out
}

func safetensors(t testing.TB, tensors ...synth.Tensor) []byte {
	t.Helper()
	b, err := synth.Safetensors(tensors)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// containerOf compresses data in weight-aware mode and returns the bytes.
func containerOf(t testing.TB, data []byte, chunkValues int) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "in")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "in.zpk")
	if _, err := CompressFile(context.Background(), src, dst, Options{Weights: true, ChunkValues: chunkValues}); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
