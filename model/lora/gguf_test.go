package lora_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/quant"
	"github.com/cogumi/cogumi/model/safetensors"
)

// TestGGUFAdapter writes an adapter of every projection and reads the file
// back: llama.cpp's metadata, one lora_a and lora_b per base weight named
// as ggufconv names the weight, ggml dims [in, r] and [r, out], F32, A as
// stored, B as stored for V, O and the MLP and row-permuted for Q and K.
func TestGGUFAdapter(t *testing.T) {
	base := tinyBase(t, safetensors.BF16)
	const r, alpha = 3, 7.5
	tensors := randomPairs(base, r, lora.Modules(), 5)
	ad, err := lora.Open(writeAdapter(t, peftConfig(r, alpha, lora.Modules()), tensors))
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	path := filepath.Join(t.TempDir(), lora.GGUFFile)
	if err := lora.WriteGGUF(ad, base.Config(), path, "code", lora.Base{}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for k, want := range map[string]string{"general.architecture": "llama", "general.type": "adapter", "adapter.type": "lora", "general.name": "code"} {
		if got, err := f.String(k); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", k, got, err, want)
		}
	}
	if got, err := f.Float32("adapter.lora.alpha"); err != nil || got != alpha {
		t.Errorf("adapter.lora.alpha = %v (%v)", got, err)
	}

	// The base GGUF's weight names, from the converter itself.
	rep, err := ggufconv.Convert(context.Background(), base, t.TempDir(), ggufconv.Options{Type: "F32"})
	if err != nil {
		t.Fatal(err)
	}
	var baseNames []string
	for _, tr := range rep.Tensors {
		baseNames = append(baseNames, tr.Name)
	}

	byName := map[string]tensor{}
	for _, x := range tensors {
		byName[x.name] = x
	}
	cfg := base.Config()
	n := 0
	for _, p := range ad.Pairs() {
		if !slices.Contains(baseNames, p.GGUFName()) {
			t.Fatalf("%s: %s is not a tensor of the base GGUF", p.Module, p.GGUFName())
		}
		ta, okA := f.Tensor(p.GGUFName() + ".lora_a")
		tb, okB := f.Tensor(p.GGUFName() + ".lora_b")
		if !okA || !okB {
			t.Fatalf("%s: lora_a %v, lora_b %v", p.GGUFName(), okA, okB)
		}
		n += 2
		if ta.Type != quant.F32 || tb.Type != quant.F32 ||
			!slices.Equal(ta.Shape, []uint64{uint64(p.In), r}) || !slices.Equal(tb.Shape, []uint64{r, uint64(p.Out)}) {
			t.Fatalf("%s: lora_a %s %v, lora_b %s %v", p.GGUFName(), ta.Type, ta.Shape, tb.Type, tb.Shape)
		}
		da, _ := f.TensorData(ta.Name)
		db, _ := f.TensorData(tb.Name)
		if !slices.Equal(f32s(da), byName[peftName(p.Module, "A")].data) {
			t.Errorf("%s differs from lora_A", ta.Name)
		}
		B, gotB := byName[peftName(p.Module, "B")].data, f32s(db)
		heads := 0
		switch p.Proj {
		case "q_proj":
			heads = cfg.NumAttentionHeads
		case "k_proj":
			heads = cfg.NumKeyValueHeads
		}
		for o := 0; o < p.Out; o++ {
			src := o
			if heads > 0 {
				src = lora.PermuteSource(o, p.Out, heads)
			}
			if !slices.Equal(gotB[o*r:(o+1)*r], B[src*r:(src+1)*r]) {
				t.Fatalf("%s row %d is not lora_B row %d", tb.Name, o, src)
			}
		}
		if heads > 0 && slices.Equal(gotB, B) {
			t.Errorf("%s is not permuted", tb.Name)
		}
	}
	if want := 2 * len(lora.Modules()) * cfg.NumHiddenLayers; n != want || len(f.Tensors) != want {
		t.Fatalf("%d lora tensors checked, file has %d, want %d", n, len(f.Tensors), want)
	}
}

// TestGGUFPermutationMatchesBase checks PermuteSource against what
// ggufconv does to the base's Q and K weights: row o of the GGUF weight is
// row PermuteSource(o) of the checkpoint's. The adapter's B must follow the
// same order, since B·A has the weight's rows.
func TestGGUFPermutationMatchesBase(t *testing.T) {
	base := tinyBase(t, safetensors.F32)
	dir := t.TempDir()
	rep, err := ggufconv.Convert(context.Background(), base, dir, ggufconv.Options{Type: "F32"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(filepath.Join(dir, rep.File))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := base.Config()
	for _, c := range []struct {
		hf, gg string
		heads  int
	}{
		{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", cfg.NumAttentionHeads},
		{"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", cfg.NumKeyValueHeads},
	} {
		hf := decode(t, base, c.hf)
		raw, err := f.TensorData(c.gg)
		if err != nil {
			t.Fatal(err)
		}
		gg := f32s(raw)
		ref, _ := base.Tensor(c.hf)
		rows, in := int(ref.Shape[0]), int(ref.Shape[1])
		moved := 0
		for o := 0; o < rows; o++ {
			src := lora.PermuteSource(o, rows, c.heads)
			if src != o {
				moved++
			}
			if !slices.Equal(gg[o*in:(o+1)*in], hf[src*in:(src+1)*in]) {
				t.Fatalf("%s row %d is not %s row %d", c.gg, o, c.hf, src)
			}
		}
		if moved == 0 {
			t.Fatal(fmt.Sprintf("%s: the permutation moved no row", c.gg))
		}
	}
}
