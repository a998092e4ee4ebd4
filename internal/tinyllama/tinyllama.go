// Package tinyllama writes tiny, deterministic Llama-architecture Hugging
// Face checkpoints for tests: config.json, safetensors weights (one file or
// two shards with an index), a real tokenizer (SentencePiece tokenizer.model
// or byte-level BPE tokenizer.json), tokenizer_config.json and
// generation_config.json. The defaults give a model of a few MB whose hidden
// and feed-forward sizes are multiples of 256, so that llama.cpp's K-quants
// apply without fallbacks.
//
// The weights are Gaussian-like (a sum of 12 uniforms, std 0.02), drawn from
// a PCG stream seeded by the seed and the tensor's name, so the same options
// give the same bytes on every platform and with any sharding.
package tinyllama

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/model/safetensors"
)

// Tokenizer selects the tokenizer a test model carries.
type Tokenizer string

// Tokenizers.
const (
	SentencePiece Tokenizer = "spm" // tokenizer.model, like TinyLlama and Llama 2
	BPE           Tokenizer = "bpe" // tokenizer.json, byte-level like Llama 3
)

// Arch selects the decoder family a test model is written as.
type Arch string

// Architectures.
const (
	Llama   Arch = "llama"   // LlamaForCausalLM
	Mistral Arch = "mistral" // MistralForCausalLM: Llama's tensors
	Qwen2   Arch = "qwen2"   // Qwen2ForCausalLM: q, k and v biases
	Qwen3   Arch = "qwen3"   // Qwen3ForCausalLM: per-head q_norm and k_norm
)

// Options shape the model. Zero values take the defaults noted.
type Options struct {
	Arch         Arch              // default Llama
	DType        safetensors.DType // F32, F16 or BF16 (default BF16)
	Tokenizer    Tokenizer         // default SentencePiece
	Shards       int               // 1 (default) or 2
	Seed         uint64
	Hidden       int // default 256
	Intermediate int // default 512
	Layers       int // default 2
	Heads        int // default 4
	KVHeads      int // default 2 (grouped-query attention)
	// HeadDim sets config.json's head_dim; default hidden / heads. Qwen3
	// has heads x head_dim != hidden on its small sizes.
	HeadDim      int
	MaxPositions int // default 256
	// PadVocab adds embedding rows beyond the tokenizer's vocabulary, as
	// models padded to a multiple of 64 have; config.json's vocab_size
	// counts them.
	PadVocab      int
	TieEmbeddings bool
	// TokenizerJSON and TokenizerConfig, when set, name a real tokenizer's
	// tokenizer.json and tokenizer_config.json, which the checkpoint
	// carries instead of a generated tokenizer (Tokenizer is then ignored);
	// the vocabulary size is the tokenizer's.
	TokenizerJSON, TokenizerConfig string
}

func (o *Options) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Hidden, 256)
	def(&o.Intermediate, 512)
	def(&o.Layers, 2)
	def(&o.Heads, 4)
	def(&o.KVHeads, 2)
	def(&o.MaxPositions, 256)
	def(&o.Shards, 1)
	if o.HeadDim == 0 && o.Heads > 0 {
		o.HeadDim = o.Hidden / o.Heads
	}
	if o.Arch == "" {
		o.Arch = Llama
	}
	if o.DType == "" {
		o.DType = safetensors.BF16
	}
	if o.Tokenizer == "" {
		o.Tokenizer = SentencePiece
	}
	if (o.TokenizerJSON == "") != (o.TokenizerConfig == "") {
		return fmt.Errorf("tinyllama: a given tokenizer needs both tokenizer.json and tokenizer_config.json")
	}
	switch {
	case !o.DType.IsFloat():
		return fmt.Errorf("tinyllama: dtype %q: want F32, F16 or BF16", o.DType)
	case o.Tokenizer != SentencePiece && o.Tokenizer != BPE:
		return fmt.Errorf("tinyllama: tokenizer %q: want %q or %q", o.Tokenizer, SentencePiece, BPE)
	case o.Shards != 1 && o.Shards != 2:
		return fmt.Errorf("tinyllama: %d shards: want 1 or 2", o.Shards)
	case o.Shards == 2 && o.Layers < 2:
		return fmt.Errorf("tinyllama: 2 shards need at least 2 layers")
	case o.Arch != Llama && o.Arch != Mistral && o.Arch != Qwen2 && o.Arch != Qwen3:
		return fmt.Errorf("tinyllama: architecture %q: want %q, %q, %q or %q", o.Arch, Llama, Mistral, Qwen2, Qwen3)
	case o.Hidden%o.Heads != 0 && o.HeadDim == o.Hidden/o.Heads:
		return fmt.Errorf("tinyllama: hidden %d is not a multiple of heads %d", o.Hidden, o.Heads)
	case o.Arch == Qwen2 && o.HeadDim != o.Hidden/o.Heads:
		return fmt.Errorf("tinyllama: Qwen2 has no head_dim: the head dimension is hidden / heads")
	case o.HeadDim <= 0 || o.Heads%o.KVHeads != 0 || o.HeadDim%2 != 0:
		return fmt.Errorf("tinyllama: head dim %d, heads %d, kv heads %d do not divide evenly", o.HeadDim, o.Heads, o.KVHeads)
	}
	return nil
}

// tensorSpec is one weight: name, shape, and how to fill it.
type tensorSpec struct {
	name  string
	shape []int64
	norm  bool // RMSNorm weight: around 1 rather than around 0
	shard int  // 0 or 1
}

func tensorSpecs(o Options, vocab int) []tensorSpec {
	h, ff, v := int64(o.Hidden), int64(o.Intermediate), int64(vocab)
	hd := int64(o.HeadDim)
	q, kv := hd*int64(o.Heads), hd*int64(o.KVHeads)
	specs := []tensorSpec{{name: "model.embed_tokens.weight", shape: []int64{v, h}}}
	for i := 0; i < o.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		shard := 0
		if o.Shards == 2 && i >= o.Layers/2 {
			shard = 1
		}
		add := func(name string, norm bool, shape ...int64) {
			specs = append(specs, tensorSpec{name: p + name, shape: shape, norm: norm, shard: shard})
		}
		add("input_layernorm.weight", true, h)
		add("self_attn.q_proj.weight", false, q, h)
		add("self_attn.k_proj.weight", false, kv, h)
		add("self_attn.v_proj.weight", false, kv, h)
		add("self_attn.o_proj.weight", false, h, q)
		if o.Arch == Qwen2 {
			add("self_attn.q_proj.bias", false, q)
			add("self_attn.k_proj.bias", false, kv)
			add("self_attn.v_proj.bias", false, kv)
		}
		if o.Arch == Qwen3 {
			add("self_attn.q_norm.weight", true, hd)
			add("self_attn.k_norm.weight", true, hd)
		}
		add("post_attention_layernorm.weight", true, h)
		add("mlp.gate_proj.weight", false, ff, h)
		add("mlp.up_proj.weight", false, ff, h)
		add("mlp.down_proj.weight", false, h, ff)
	}
	last := o.Shards - 1
	specs = append(specs, tensorSpec{name: "model.norm.weight", shape: []int64{h}, norm: true, shard: last})
	if !o.TieEmbeddings {
		specs = append(specs, tensorSpec{name: "lm_head.weight", shape: []int64{v, h}, shard: last})
	}
	return specs
}

// values draws a tensor's weights. A sum of 12 uniforms minus 6 has mean 0
// and variance 1 and needs only exact float64 additions, so, unlike a
// Box-Muller transform through math.Log, it gives the same bits everywhere.
func values(seed uint64, s tensorSpec) []float32 {
	hash := fnv.New64a()
	hash.Write([]byte(s.name))
	r := rand.New(rand.NewPCG(seed, hash.Sum64()))
	n := int64(1)
	for _, d := range s.shape {
		n *= d
	}
	out := make([]float32, n)
	for i := range out {
		var sum float64
		for range 12 {
			sum += float64(r.Uint64()>>11) * 0x1p-53
		}
		g := sum - 6
		if s.norm {
			out[i] = float32(1 + 0.05*g)
		} else {
			out[i] = float32(0.02 * g)
		}
	}
	return out
}

// Write creates dir (if needed) and writes the checkpoint into it.
func Write(dir string, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tinyllama: %w", err)
	}
	tok, err := writeTokenizer(dir, o)
	if err != nil {
		return err
	}
	tok.vocab += o.PadVocab
	specs := tensorSpecs(o, tok.vocab)
	files := []string{"model.safetensors"}
	if o.Shards == 2 {
		files = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	}
	weightMap := map[string]string{}
	var total int64
	for shard, file := range files {
		var decl []safetensors.Info
		var fill []tensorSpec
		for _, s := range specs {
			if s.shard == shard {
				decl = append(decl, safetensors.Info{Name: s.name, DType: o.DType, Shape: s.shape})
				fill = append(fill, s)
				weightMap[s.name] = file
			}
		}
		w, err := safetensors.NewWriter(filepath.Join(dir, file), decl, map[string]string{"format": "pt"})
		if err != nil {
			return fmt.Errorf("tinyllama: %w", err)
		}
		for _, s := range fill {
			v := values(o.Seed, s)
			b := make([]byte, len(v)*o.DType.Size())
			safetensors.EncodeF32(b, v, o.DType)
			total += int64(len(b))
			if err := w.WriteTensor(s.name, b); err != nil {
				w.Abort()
				return fmt.Errorf("tinyllama: %w", err)
			}
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("tinyllama: %w", err)
		}
	}
	if o.Shards == 2 {
		index := map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}
		if err := writeJSON(filepath.Join(dir, "model.safetensors.index.json"), index); err != nil {
			return err
		}
	}
	return writeConfigs(dir, o, tok)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("tinyllama: encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("tinyllama: %w", err)
	}
	return nil
}
