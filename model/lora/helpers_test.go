package lora_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/safetensors"
)

// tinyBase writes and opens a random tiny Llama (hidden 256, 4 heads, 2 kv
// heads, 2 layers) stored as dtype.
func tinyBase(t *testing.T, dtype safetensors.DType) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	if err := tinyllama.Write(dir, tinyllama.Options{Seed: 1, DType: dtype, Tokenizer: tinyllama.BPE}); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// tensor is one tensor of a test adapter.
type tensor struct {
	name  string
	dtype safetensors.DType
	shape []int64
	data  []float32
}

func peftName(module, ab string) string {
	return "base_model.model." + module + ".lora_" + ab + ".weight"
}

// randomPairs makes random A and B (B nonzero, unlike a fresh PEFT init)
// for the projections of every layer of m.
func randomPairs(m *checkpoint.Model, r int, projs []string, seed uint64) []tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []tensor
	cfg := m.Config()
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		for _, p := range projs {
			group := "self_attn"
			if p == "gate_proj" || p == "up_proj" || p == "down_proj" {
				group = "mlp"
			}
			module := fmt.Sprintf("model.layers.%d.%s.%s", i, group, p)
			w, _ := m.Tensor(module + ".weight")
			o, in := w.Shape[0], w.Shape[1]
			a := make([]float32, int64(r)*in)
			b := make([]float32, o*int64(r))
			for j := range a {
				a[j] = float32(rng.NormFloat64() * 0.05)
			}
			for j := range b {
				b[j] = float32(rng.NormFloat64() * 0.05)
			}
			out = append(out,
				tensor{peftName(module, "A"), safetensors.F32, []int64{int64(r), in}, a},
				tensor{peftName(module, "B"), safetensors.F32, []int64{o, int64(r)}, b})
		}
	}
	return out
}

// writeAdapter writes a PEFT adapter directory: cfg as adapter_config.json
// (a map, so that tests can write what PEFT would never write) and the
// tensors.
func writeAdapter(t *testing.T, cfg map[string]any, tensors []tensor) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lora.ConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	infos := make([]safetensors.Info, len(tensors))
	for i, x := range tensors {
		infos[i] = safetensors.Info{Name: x.name, DType: x.dtype, Shape: x.shape}
	}
	w, err := safetensors.NewWriter(filepath.Join(dir, lora.WeightsFile), infos, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tensors {
		buf := make([]byte, len(x.data)*x.dtype.Size())
		if !safetensors.EncodeF32(buf, x.data, x.dtype) {
			// Non-float dtypes: raw zero bytes of the right size.
			buf = make([]byte, int(numElems(x.shape))*x.dtype.Size())
		}
		if err := w.WriteTensor(x.name, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func numElems(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// peftConfig is adapter_config.json as the lora rule writes it.
func peftConfig(r int, alpha float64, modules []string) map[string]any {
	return map[string]any{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
		"bias": "none", "fan_in_fan_out": false, "target_modules": modules,
		"base_model_name_or_path": "//models:base", "inference_mode": true,
	}
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func decode(t *testing.T, m *checkpoint.Model, name string) []float32 {
	t.Helper()
	ref, ok := m.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	raw, err := m.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, numElems(ref.Shape))
	if !safetensors.DecodeF32(out, raw, ref.DType) {
		t.Fatalf("%s: dtype %s", name, ref.DType)
	}
	return out
}
