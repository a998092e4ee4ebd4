package ggufconv_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/quant"
)

// tinyWithRope writes a tiny checkpoint whose config.json has the given
// rope_theta and rope_scaling.
func tinyWithRope(t *testing.T, theta float64, scaling map[string]any) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rope")
	if err := tinyllama.Write(dir, tinyllama.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["rope_theta"], cfg["rope_scaling"] = theta, scaling
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestLlama3RopeFreqs checks the rope_freqs.weight tensor that llama.cpp's
// converter adds for Llama 3.1's scaled RoPE, against its formula computed
// here in float64.
func TestLlama3RopeFreqs(t *testing.T) {
	m := tinyWithRope(t, 500000, map[string]any{
		"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
		"original_max_position_embeddings": 8192,
	})
	rep, f, _ := convert(t, m, ggufconv.Options{Type: "Q8_0"})
	ti, ok := f.Tensor("rope_freqs.weight")
	if !ok || ti.Type != quant.F32 || len(ti.Shape) != 1 || ti.Shape[0] != 32 {
		t.Fatalf("rope_freqs.weight: %+v (present %v)", ti, ok)
	}
	if _, ok := f.Get("llama.rope.scaling.type"); ok {
		t.Error("llama3 scaling has no rope.scaling keys in llama.cpp's converter")
	}
	expectKV(t, f, "llama.rope.freq_base", float32(500000))
	data, _ := f.TensorData("rope_freqs.weight")
	const dim, base, factor, low, high, old = 64, 500000.0, 8.0, 1.0, 4.0, 8192.0
	for i := 0; i < dim/2; i++ {
		freq := 1 / math.Pow(base, float64(2*i)/dim)
		wavelen := 2 * math.Pi / freq
		want := 1.0
		switch {
		case wavelen < old/high:
		case wavelen > old/low:
			want = factor
		default:
			smooth := (old/wavelen - low) / (high - low)
			want = 1 / ((1-smooth)/factor + smooth)
		}
		got := math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		if math.Abs(float64(got)-want) > 1e-5*want {
			t.Errorf("rope_freqs[%d] = %v, want %v", i, got, want)
		}
	}
	// The size label counts it, as gguf-py counts every tensor.
	var n int64
	for _, tr := range rep.Tensors {
		if tr.Name == "rope_freqs.weight" && tr.Source == "" {
			n = tr.Bytes
		}
	}
	if n != 128 {
		t.Errorf("report lists rope_freqs.weight with %d bytes", n)
	}
}

func TestLinearRopeScaling(t *testing.T) {
	m := tinyWithRope(t, 10000, map[string]any{"type": "linear", "factor": 4.0})
	_, f, _ := convert(t, m, ggufconv.Options{Type: "F16"})
	expectKV(t, f, "llama.rope.scaling.type", "linear")
	expectKV(t, f, "llama.rope.scaling.factor", float32(4))
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		t.Error("linear scaling has no rope_freqs tensor")
	}
}
