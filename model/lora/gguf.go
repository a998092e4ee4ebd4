package lora

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
)

// GGUFFile is the adapter's llama.cpp file in a lora artifact.
const GGUFFile = "adapter.gguf"

// ggufNames maps a projection to llama.cpp's tensor name after "blk.N."
// (gguf-py's tensor_mapping.py for MODEL_ARCH.LLAMA, as ggufconv names the
// base's weights).
func ggufNames() map[string]string {
	return map[string]string{
		"q_proj": "attn_q.weight", "k_proj": "attn_k.weight", "v_proj": "attn_v.weight", "o_proj": "attn_output.weight",
		"gate_proj": "ffn_gate.weight", "up_proj": "ffn_up.weight", "down_proj": "ffn_down.weight",
	}
}

// GGUFName returns the name of the base GGUF weight a pair adapts
// (blk.0.attn_q.weight); its tensors are that name plus ".lora_a" and
// ".lora_b".
func (p Pair) GGUFName() string {
	return "blk." + strconv.Itoa(p.Layer) + "." + ggufNames()[p.Proj]
}

// ropeHeads returns the number of heads whose rows llama.cpp's converter
// permutes for a pair's weight (n_head for Q, n_head_kv for K), or 0: 0
// always for the architectures llama.cpp runs with NEOX RoPE (Qwen), whose
// rows the converter leaves in Hugging Face's order.
func ropeHeads(p Pair, cfg checkpoint.Config) int {
	if !cfg.Arch.RopeInterleaved {
		return 0
	}
	switch p.Proj {
	case "q_proj":
		return cfg.NumAttentionHeads
	case "k_proj":
		if cfg.NumKeyValueHeads > 0 {
			return cfg.NumKeyValueHeads
		}
		return cfg.NumAttentionHeads
	}
	return 0
}

// PermuteSource returns the source row of output row o of a Q or K weight
// of n rows split into heads, as convert_hf_to_gguf.py's permute reorders
// them for llama.cpp's RoPE (rows [heads, 2, n/heads/2] with the last two
// axes swapped: output row (h, j, i) is input row (h, i, j)). ggufconv
// applies it to the base's Q and K; an adapter's B, whose rows are the
// weight's rows, must get the same order, or the adapter adds its update to
// the wrong rows (TestGGUFPermutationMatchesBase checks the two agree).
func PermuteSource(o, n, heads int) int {
	hd := n / heads
	h, rem := o/hd, o%hd
	j, i := rem/2, rem%2
	return h*hd + i*(hd/2) + j
}

// Base identifies the checkpoint an adapter was trained on.
type Base struct {
	Label  string // where it came from: //models:q4
	Digest string // what it is: cogumi's tree digest of its artifact (BLAKE3, hex)
}

// The metadata keys of an adapter's Base in its GGUF file. The digest is
// the one a model GGUF converted from the same checkpoint records
// (ggufconv.SourceDigestKey).
const (
	BaseLabelKey  = "cogumi.base.label"
	BaseDigestKey = "cogumi.base.digest"
)

// BaseOf reads the Base an adapter GGUF records; its fields are empty
// where it records none.
func BaseOf(f *gguf.File) Base {
	var b Base
	b.Label, _ = f.String(BaseLabelKey)
	b.Digest, _ = f.String(BaseDigestKey)
	return b
}

// WriteGGUF writes the adapter as a llama.cpp LoRA adapter at path: the
// metadata llama.cpp's llama_adapter_lora_init reads (general.architecture,
// the base GGUF's: "llama", "qwen2" or "qwen3"; general.type "adapter",
// adapter.type "lora", adapter.lora.alpha),
// and for every pair the F32 tensors <weight>.lora_a (ggml ne [in, r]: A as
// stored) and <weight>.lora_b (ne [r, out]: B, with Q's and K's rows
// permuted as the base GGUF's). cfg is the base's configuration; base,
// when its fields are set, says which checkpoint the adapter was trained
// on (BaseLabelKey, BaseDigestKey), which llama.cpp ignores.
func WriteGGUF(a *Adapter, cfg checkpoint.Config, path, name string, base Base) error {
	w, err := gguf.NewWriter(path, 0)
	if err != nil {
		return err
	}
	defer w.Abort()
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", cfg.Arch.GGUF},
		{"general.type", "adapter"},
		{"general.name", name},
		{"adapter.type", "lora"},
		{"adapter.lora.alpha", float32(a.cfg.Alpha)},
		{BaseLabelKey, base.Label},
		{BaseDigestKey, base.Digest},
	}
	for _, kv := range kvs {
		if s, ok := kv.v.(string); ok && s == "" {
			continue // an unnamed adapter, an unknown base
		}
		if err := w.SetKV(kv.k, kv.v); err != nil {
			return err
		}
	}
	r := uint64(a.cfg.R)
	for _, p := range a.pairs {
		if heads := ropeHeads(p, cfg); heads > 0 && p.Out%(2*heads) != 0 {
			return fmt.Errorf("lora adapter %s: %s: %d rows cannot be split into %d heads of pairs for llama.cpp's RoPE order", a.dir, p.Module, p.Out, heads)
		}
		if err := w.AddTensor(p.GGUFName()+".lora_a", quant.F32, []uint64{uint64(p.In), r}); err != nil {
			return err
		}
		if err := w.AddTensor(p.GGUFName()+".lora_b", quant.F32, []uint64{r, uint64(p.Out)}); err != nil {
			return err
		}
	}
	for _, p := range a.pairs {
		A, err := a.ReadA(p)
		if err != nil {
			return err
		}
		if err := w.WriteTensorData(p.GGUFName()+".lora_a", f32Bytes(A)); err != nil {
			return err
		}
		B, err := a.ReadB(p)
		if err != nil {
			return err
		}
		if heads := ropeHeads(p, cfg); heads > 0 {
			perm := make([]float32, len(B))
			rk := int(r)
			for o := 0; o < p.Out; o++ {
				src := PermuteSource(o, p.Out, heads)
				copy(perm[o*rk:(o+1)*rk], B[src*rk:(src+1)*rk])
			}
			B = perm
		}
		if err := w.WriteTensorData(p.GGUFName()+".lora_b", f32Bytes(B)); err != nil {
			return err
		}
	}
	return w.Close()
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
