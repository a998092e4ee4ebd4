package lora_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/safetensors"
)

// TestMergeMatchesDirect merges a random adapter into F32 and BF16 bases
// and checks every weight against W + (alpha/r)·B·A computed here directly
// in float64, element by element: adapted weights are that value rounded
// to the base's dtype, every other tensor and file is byte-identical.
func TestMergeMatchesDirect(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			base := tinyBase(t, dt)
			const r, alpha = 4, 12.0
			projs := []string{"q_proj", "v_proj", "down_proj"}
			tensors := randomPairs(base, r, projs, 3)
			ad, err := lora.Open(writeAdapter(t, peftConfig(r, alpha, projs), tensors))
			if err != nil {
				t.Fatal(err)
			}
			defer ad.Close()
			dst := filepath.Join(t.TempDir(), "merged")
			rep, err := lora.Merge(context.Background(), base, ad, dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Modules) != 2*len(projs) || rep.Scale != alpha/r || rep.MaxAbsDelta == 0 {
				t.Fatalf("report %+v", rep)
			}
			merged, err := checkpoint.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer merged.Close()

			byName := map[string]tensor{}
			for _, x := range tensors {
				byName[x.name] = x
			}
			adapted := 0
			for _, ref := range base.Tensors() {
				got, _ := merged.Tensor(ref.Name)
				if got.DType != ref.DType || len(got.Shape) != len(ref.Shape) {
					t.Fatalf("%s: %s %v, base %s %v", ref.Name, got.DType, got.Shape, ref.DType, ref.Shape)
				}
				module := ref.Name[:len(ref.Name)-len(".weight")]
				A, ok := byName[peftName(module, "A")]
				if !ok {
					rb, _ := base.Bytes(ref.Name)
					mb, _ := merged.Bytes(ref.Name)
					if !bytes.Equal(rb, mb) {
						t.Errorf("%s is not adapted but changed", ref.Name)
					}
					continue
				}
				adapted++
				B := byName[peftName(module, "B")]
				W, M := decode(t, base, ref.Name), decode(t, merged, ref.Name)
				out, in := int(ref.Shape[0]), int(ref.Shape[1])
				changed := 0
				for o := 0; o < out; o++ {
					for j := 0; j < in; j++ {
						var s float64
						for k := 0; k < r; k++ {
							s += float64(B.data[o*r+k]) * float64(A.data[k*in+j])
						}
						exact := float64(W[o*in+j]) + alpha/r*s
						want := roundTo(float32(exact), dt)
						if math.Float32bits(M[o*in+j]) != math.Float32bits(want) {
							t.Fatalf("%s[%d,%d] = %v, want %v (exact %v)", ref.Name, o, j, M[o*in+j], want, exact)
						}
						// One rounding away from the exact value: within a
						// unit in the last place of the dtype.
						if d := math.Abs(float64(M[o*in+j]) - exact); d > ulp(float32(exact), dt) {
							t.Fatalf("%s[%d,%d]: %v is %g from the exact %v", ref.Name, o, j, M[o*in+j], d, exact)
						}
						if M[o*in+j] != W[o*in+j] {
							changed++
						}
					}
				}
				if changed < out*in/2 {
					t.Errorf("%s: only %d of %d weights changed", ref.Name, changed, out*in)
				}
			}
			if adapted != 2*len(projs) {
				t.Fatalf("%d tensors adapted, want %d", adapted, 2*len(projs))
			}
			for _, f := range []string{"config.json", "tokenizer.json"} {
				a, _ := os.ReadFile(filepath.Join(base.Dir(), f))
				b, _ := os.ReadFile(filepath.Join(dst, f))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs from the base's", f)
				}
			}
			var js lora.MergeReport
			b, _ := os.ReadFile(filepath.Join(dst, lora.MergeReportFile))
			if err := json.Unmarshal(b, &js); err != nil || js.Rank != r || js.Base != "//models:base" {
				t.Errorf("%s: %s (%v)", lora.MergeReportFile, b, err)
			}
		})
	}
}

func roundTo(f float32, dt safetensors.DType) float32 {
	if dt == safetensors.BF16 {
		return safetensors.BF16ToF32(safetensors.F32ToBF16(f))
	}
	return f
}

func ulp(f float32, dt safetensors.DType) float64 {
	bits := 23
	if dt == safetensors.BF16 {
		bits = 7
	}
	_, e := math.Frexp(float64(f))
	return math.Ldexp(1, e-1-bits)
}

// TestMergeRejectsMismatchedBase: an adapter trained for other shapes or
// more layers is refused before anything is written.
func TestMergeRejectsMismatchedBase(t *testing.T) {
	base := tinyBase(t, safetensors.F32)
	bad := []tensor{
		{peftName("model.layers.0.self_attn.q_proj", "A"), safetensors.F32, []int64{2, 128}, make([]float32, 256)},
		{peftName("model.layers.0.self_attn.q_proj", "B"), safetensors.F32, []int64{256, 2}, make([]float32, 512)},
	}
	far := []tensor{
		{peftName("model.layers.7.self_attn.q_proj", "A"), safetensors.F32, []int64{2, 256}, make([]float32, 512)},
		{peftName("model.layers.7.self_attn.q_proj", "B"), safetensors.F32, []int64{256, 2}, make([]float32, 512)},
	}
	for name, c := range map[string]struct {
		tensors []tensor
		want    string
	}{
		"shape":  {bad, "B·A is [256, 128] but the base's model.layers.0.self_attn.q_proj.weight is [256 256]: the adapter was trained on another model"},
		"layers": {far, "model.layers.7.self_attn.q_proj: the base"},
	} {
		t.Run(name, func(t *testing.T) {
			ad, err := lora.Open(writeAdapter(t, peftConfig(2, 4, []string{"q_proj"}), c.tensors))
			if err != nil {
				t.Fatal(err)
			}
			defer ad.Close()
			dst := filepath.Join(t.TempDir(), "merged")
			_, err = lora.Merge(context.Background(), base, ad, dst)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if entries, _ := os.ReadDir(dst); len(entries) != 0 {
				t.Errorf("left %d files in %s", len(entries), dst)
			}
		})
	}
}
