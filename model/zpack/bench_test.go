package zpack

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/model/zpack/internal/synth"
)

// benchFile writes 64 MiB of Gaussian BF16 weights (std 0.02) as a
// safetensors file. The whole-size comparison with the zstd CLI is
// cmd/zpackbench.
func benchFile(b *testing.B) (dir, src string, size int64) {
	b.Helper()
	const n = 32 << 20
	data := safetensors(b, synth.Tensor{Name: "w", Dtype: "BF16", Shape: []int64{n}, Data: gaussian16(b, n, 0.02, 0, 1, synth.BF16)})
	dir = b.TempDir()
	src = filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, src, int64(len(data))
}

func benchCompress(b *testing.B, weights bool) {
	dir, src, size := benchFile(b)
	dst := filepath.Join(dir, "out")
	b.SetBytes(size)
	b.ResetTimer()
	var st Stats
	for b.Loop() {
		var err error
		if st, err = CompressFile(context.Background(), src, dst, Options{Weights: weights}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100*st.Ratio(), "%kept")
}

func benchDecompress(b *testing.B, weights bool) {
	dir, src, size := benchFile(b)
	comp := filepath.Join(dir, "comp")
	if _, err := CompressFile(context.Background(), src, comp, Options{Weights: weights}); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "out")
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := DecompressFile(context.Background(), comp, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompressPlain(b *testing.B)     { benchCompress(b, false) }
func BenchmarkCompressWeights(b *testing.B)   { benchCompress(b, true) }
func BenchmarkDecompressPlain(b *testing.B)   { benchDecompress(b, false) }
func BenchmarkDecompressWeights(b *testing.B) { benchDecompress(b, true) }
