package awq

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/safetensors"
)

// calTensor is one tensor of a test calibration file.
type calTensor struct {
	name  string
	shape []int64
	data  []float32
}

func writeCalibration(t testing.TB, dir string, layers int, tensors []calTensor) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var infos []safetensors.Info
	for _, c := range tensors {
		infos = append(infos, safetensors.Info{Name: c.name, DType: safetensors.F32, Shape: c.shape})
	}
	path := filepath.Join(dir, CalibrationFile)
	w, err := safetensors.NewWriter(path, infos, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tensors {
		b := make([]byte, 4*len(c.data))
		safetensors.EncodeF32(b, c.data, safetensors.F32)
		if err := w.WriteTensor(c.name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(map[string]any{"version": 1, "layers": layers, "rows": 0})
	if err := os.WriteFile(filepath.Join(dir, CalibrationInfo), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// synthInput draws rows whose channels have very different magnitudes
// (log-normal, with a few outlier channels 20x larger), as real LLM
// activations do: the case AWQ exists for.
func synthInput(r *rand.Rand, name string, rows, in int) []calTensor {
	mag := make([]float64, in)
	for c := range mag {
		mag[c] = math.Exp(r.NormFloat64())
		if r.IntN(32) == 0 {
			mag[c] *= 20
		}
	}
	x := make([]float32, rows*in)
	mean := make([]float32, in)
	for i := 0; i < rows; i++ {
		for c := 0; c < in; c++ {
			v := float32(mag[c] * r.NormFloat64())
			x[i*in+c] = v
			mean[c] += float32(math.Abs(float64(v)) / float64(rows))
		}
	}
	return []calTensor{
		{name + ".input_mean_abs", []int64{int64(in)}, mean},
		{name + ".input_rows", []int64{int64(rows), int64(in)}, x},
	}
}

func synthCalibration(cfg checkpoint.Config, rows int, seed uint64) []calTensor {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []calTensor
	q := cfg.NumAttentionHeads * cfg.HeadDimension()
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		out = append(out, synthInput(r, p+"self_attn.q_proj", rows, cfg.HiddenSize)...)
		out = append(out, synthInput(r, p+"self_attn.o_proj", rows, q)...)
		out = append(out, synthInput(r, p+"mlp.gate_proj", rows, cfg.HiddenSize)...)
		out = append(out, synthInput(r, p+"mlp.down_proj", rows, cfg.IntermediateSize)...)
	}
	return out
}

func openTiny(t testing.TB, o tinyllama.Options) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinyllama.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func openCal(t testing.TB, path string) *Calibration {
	t.Helper()
	c, err := OpenCalibration(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// weights reads every tensor of a checkpoint as float32.
func weights(t testing.TB, dir string) map[string][]float32 {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string][]float32{}
	for _, ref := range m.Tensors() {
		n := 1
		for _, d := range ref.Shape {
			n *= int(d)
		}
		rows := 1
		if len(ref.Shape) > 1 {
			rows = int(ref.Shape[0])
		}
		v := make([]float32, n)
		if err := m.ReadF32Rows(ref.Name, 0, rows, v); err != nil {
			t.Fatal(err)
		}
		out[ref.Name] = v
	}
	return out
}

// matvec returns W x for W [out, len(x)].
func matvec(w, x []float32) []float64 {
	in := len(x)
	y := make([]float64, len(w)/in)
	for r := range y {
		var s float64
		for c, v := range x {
			s += float64(w[r*in+c]) * float64(v)
		}
		y[r] = s
	}
	return y
}

func rmsNorm(x, g []float32, eps float64) []float32 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	k := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(float64(v) * k * float64(g[i]))
	}
	return out
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// closeRel fails unless a and b agree within tol relative to b's norm.
func closeRel(t *testing.T, what string, a, b []float64, tol float64) {
	t.Helper()
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	if rel := math.Sqrt(d / n); !(rel <= tol) {
		t.Errorf("%s: scaled model differs from the original by %.3g relative (tolerance %g)", what, rel, tol)
	}
}

func silu(v float64) float64 { return v / (1 + math.Exp(-v)) }

// sublayers computes, for input x of a layer, the outputs that the
// scaling touches: q, k and v of RMSNorm(x), o_proj applied to v (attention
// mixes value rows linearly across tokens, which commutes with a
// per-channel scale, so o(v(.)) is the path to check), and the MLP
// down(silu(gate(n)) * up(n)) of the post-attention norm.
func sublayers(w map[string][]float32, layer int, x []float32, eps float64) map[string][]float64 {
	p := fmt.Sprintf("model.layers.%d.", layer)
	// linear is W x plus the bias where the checkpoint has one (Qwen2's
	// q, k and v).
	linear := func(name string, x []float32) []float64 {
		y := matvec(w[p+name+".weight"], x)
		for i, b := range w[p+name+".bias"] {
			y[i] += float64(b)
		}
		return y
	}
	n1 := rmsNorm(x, w[p+"input_layernorm.weight"], eps)
	v := linear("self_attn.v_proj", n1)
	out := map[string][]float64{
		"q": linear("self_attn.q_proj", n1),
		"k": linear("self_attn.k_proj", n1),
	}
	if len(v)*len(x) == len(w[p+"self_attn.o_proj.weight"]) {
		// No GQA: o's scales are folded into v_proj's rows, so v itself
		// changes and o(v) is what must not.
		out["o(v)"] = matvec(w[p+"self_attn.o_proj.weight"], f32(v))
	} else {
		out["v"] = v
	}
	n2 := rmsNorm(x, w[p+"post_attention_layernorm.weight"], eps)
	g, u := matvec(w[p+"mlp.gate_proj.weight"], n2), matvec(w[p+"mlp.up_proj.weight"], n2)
	h := make([]float64, len(g))
	for i := range g {
		h[i] = silu(g[i]) * u[i]
	}
	out["down(silu(gate)*up)"] = matvec(w[p+"mlp.down_proj.weight"], f32(h))
	return out
}

// TestFoldingIsExact: the scaled checkpoint computes the same function as
// the original (F32), for every group, including o folded into v_proj
// (no GQA) and down folded into up_proj; and every group was really scaled.
//
// The Qwen architectures fold the same way: Qwen2's v_proj bias is divided
// with v_proj's rows, its q and k biases stay (q, k and v, biases
// included, must not change), and Qwen3's q_norm and k_norm, which see
// q_proj's and k_proj's unchanged outputs, stay as they are.
func TestFoldingIsExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    tinyllama.Options
	}{
		{"kv4", tinyllama.Options{KVHeads: 4}}, // o folds into v_proj
		{"kv2", tinyllama.Options{KVHeads: 2}}, // GQA: o is skipped
		{"qwen2-kv4", tinyllama.Options{Arch: tinyllama.Qwen2, KVHeads: 4}},
		{"qwen3-kv4", tinyllama.Options{Arch: tinyllama.Qwen3, KVHeads: 4, HeadDim: 128, TieEmbeddings: true}},
	} {
		kv := tc.o.KVHeads
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.DType, o.Seed = safetensors.F32, 3
			m := openTiny(t, o)
			cfg := m.Config()
			cal := openCal(t, writeCalibration(t, filepath.Join(t.TempDir(), "cal"), cfg.NumHiddenLayers, synthCalibration(cfg, 64, 1)))
			out := filepath.Join(t.TempDir(), "out")
			var log strings.Builder
			rep, err := Run(context.Background(), m, cal, out, Options{Target: TargetQ4_K, Bits: 4, Grid: 10, Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(log.String())
			for _, g := range rep.Groups {
				switch {
				case g.Group == "o" && kv != cfg.NumAttentionHeads:
					if !strings.Contains(g.Skipped, "grouped-query attention") {
						t.Errorf("layer %d o: want skipped for GQA, got %+v", g.Layer, g)
					}
				case !g.Scaled:
					t.Errorf("layer %d %s: not scaled, so this test proves nothing about its folding", g.Layer, g.Group)
				}
			}
			before, after := weights(t, m.Dir()), weights(t, out)
			r := rand.New(rand.NewPCG(9, 9))
			for layer := 0; layer < cfg.NumHiddenLayers; layer++ {
				for trial := 0; trial < 3; trial++ {
					x := make([]float32, cfg.HiddenSize)
					for i := range x {
						x[i] = float32(r.NormFloat64())
					}
					want := sublayers(before, layer, x, cfg.RMSNormEps)
					got := sublayers(after, layer, x, cfg.RMSNormEps)
					for k := range want {
						closeRel(t, fmt.Sprintf("layer %d %s", layer, k), got[k], want[k], 1e-5)
					}
				}
				// The weights did change: the test would catch a no-op.
				q := fmt.Sprintf("model.layers.%d.self_attn.q_proj.weight", layer)
				if same(before[q], after[q]) {
					t.Errorf("%s is unchanged", q)
				}
			}
			for name, v := range before {
				unchanged := !strings.HasPrefix(name, "model.layers.") || strings.HasSuffix(name, "q_norm.weight") || strings.HasSuffix(name, "k_norm.weight") ||
					strings.HasSuffix(name, "q_proj.bias") || strings.HasSuffix(name, "k_proj.bias")
				if unchanged && !same(v, after[name]) {
					t.Errorf("%s changed; it must not", name)
				}
				if strings.HasSuffix(name, "v_proj.bias") && kv == cfg.NumAttentionHeads && same(v, after[name]) {
					t.Errorf("%s is unchanged, though o was folded into v_proj's rows", name)
				}
			}
			if _, err := os.Stat(filepath.Join(out, ReportFile)); err != nil {
				t.Error(err)
			}
		})
	}
}

func same(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBadInputs: every bad input gets a clear error naming what is wrong.
func TestBadInputs(t *testing.T) {
	m := openTiny(t, tinyllama.Options{DType: safetensors.F32, Seed: 1})
	cfg := m.Config()
	good := synthCalibration(cfg, 16, 1)
	run := func(t *testing.T, cal []calTensor, layers int, o Options) error {
		c := openCal(t, writeCalibration(t, filepath.Join(t.TempDir(), "cal"), layers, cal))
		out := filepath.Join(t.TempDir(), "out")
		_, err := Run(context.Background(), m, c, out, o)
		if err != nil {
			if _, serr := os.Stat(filepath.Join(out, "model.safetensors")); serr == nil {
				t.Errorf("a failed run left a checkpoint behind")
			}
		}
		return err
	}
	ok := Options{Target: TargetQ4_0, Bits: 4, Grid: 2}
	without := func(drop string) []calTensor {
		var out []calTensor
		for _, c := range good {
			if c.name != drop {
				out = append(out, c)
			}
		}
		return out
	}
	reshaped := func(name string, shape []int64) []calTensor {
		out := append([]calTensor(nil), good...)
		for i, c := range out {
			if c.name == name {
				n := 1
				for _, d := range shape {
					n *= int(d)
				}
				out[i] = calTensor{name, shape, make([]float32, n)}
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		cal    []calTensor
		layers int
		opts   Options
		want   string
	}{
		{"missing layer", without("model.layers.1.mlp.down_proj.input_rows"), 2, ok,
			`has no tensor "model.layers.1.mlp.down_proj.input_rows"`},
		{"mean shape", reshaped("model.layers.0.mlp.gate_proj.input_mean_abs", []int64{128}), 2, ok,
			`"model.layers.0.mlp.gate_proj.input_mean_abs" has shape [128], but the model's linear has 256 inputs: want [256]`},
		{"rows shape", reshaped("model.layers.0.self_attn.q_proj.input_rows", []int64{16, 255}), 2, ok,
			`"model.layers.0.self_attn.q_proj.input_rows" has shape [16 255], but the model's linear has 256 inputs: want [rows, 256]`},
		{"layer count", good, 3, ok, "covers 3 layers, but the model"},
		{"bits", good, 2, Options{Target: TargetQ4_0, Bits: 3}, "bits = 3 is not supported"},
		{"target", good, 2, Options{Target: "Q3_K", Bits: 4}, `target "Q3_K" is not supported; use one of Q4_0, Q4_K, g128`},
		{"grid", good, 2, Options{Target: TargetQ4_0, Bits: 4, Grid: -1}, "grid = -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t, tc.cal, tc.layers, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("no calibration file", func(t *testing.T) {
		_, err := FindCalibration(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "holds no calibration.safetensors") {
			t.Errorf("got %v", err)
		}
	})
}

// TestG128 checks the AutoAWQ quantiser on known values.
func TestG128(t *testing.T) {
	src := make([]float32, 128)
	for i := range src {
		src[i] = float32(i) / 127 * 1.5625
	}
	// min -0.3125, max 1.5625: scale 1.875/15 = 0.125 exactly, and
	// min/scale = -2.5 exactly, whose round half to even gives zero 2.
	src[0] = -0.3125
	dst := make([]float32, 128)
	if err := (g128{}).roundTrip(dst, src, nil); err != nil {
		t.Fatal(err)
	}
	const scale = float32(0.125)
	for i, v := range src {
		q := min(max(float32(math.RoundToEven(float64(v/scale)))+2, 0), 15)
		if want := (q - 2) * scale; dst[i] != want {
			t.Fatalf("dst[%d] = %v, want %v", i, dst[i], want)
		}
		if d := math.Abs(float64(dst[i] - v)); d > float64(scale)/2+1e-6 && i != 0 {
			t.Errorf("dst[%d] = %v is %v from %v: more than half a step", i, dst[i], d, v)
		}
	}
}
