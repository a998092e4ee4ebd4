package checkpoint

import (
	"fmt"
	"strings"
)

// Arch describes one decoder family cogumi runs: every family is Llama's
// pre-norm decoder (RMSNorm, rotary attention with grouped-query heads, a
// SwiGLU MLP) with the differences below. It is the one place that says
// which tensors a checkpoint of the family has (see Arch.Tensors) and how
// llama.cpp's converter names and lays them out.
type Arch struct {
	// ModelType is config.json's model_type; Architecture its
	// architectures[0] (the transformers class).
	ModelType, Architecture string
	// GGUF is llama.cpp's general.architecture for the family (its
	// converter writes Mistral as llama) and the prefix of its keys.
	GGUF string
	// QKVBias: the q, k and v projections always carry biases (Qwen2);
	// the o projection has none. Llama and Mistral have biases only when
	// config.json sets attention_bias (then on q, k, v and o).
	QKVBias bool
	// QKNorm: each head's query and key pass through an RMSNorm over
	// head_dim (q_norm, k_norm) after the projection and before RoPE
	// (Qwen3).
	QKNorm bool
	// AttentionBiasKey: config.json's attention_bias adds biases to q, k,
	// v and o (Llama, Mistral; Qwen3 sets it false).
	AttentionBiasKey bool
	// MLPBiasKey: config.json's mlp_bias adds biases to gate, up and down.
	MLPBiasKey bool
	// RopeInterleaved: llama.cpp runs the family with its "normal"
	// (interleaved-pair) RoPE, so the converter permutes the rows of Q and
	// K from Hugging Face's half-split layout. The Qwen families run with
	// NEOX RoPE, which is Hugging Face's layout: no permutation.
	RopeInterleaved bool
	// LlamaKeys: the converter writes LlamaModel's extra keys
	// (vocab_size and rope.dimension_count) and rope_freqs.weight for
	// llama3 RoPE scaling; the Qwen converters write TextModel's keys only.
	LlamaKeys bool
}

// Archs lists the supported families.
func Archs() []Arch {
	return []Arch{
		{ModelType: "llama", Architecture: "LlamaForCausalLM", GGUF: "llama", AttentionBiasKey: true, MLPBiasKey: true, RopeInterleaved: true, LlamaKeys: true},
		// Mistral has Llama's tensors and hyper-parameters plus a sliding
		// window that llama.cpp ignores; llama.cpp converts it as llama.
		{ModelType: "mistral", Architecture: "MistralForCausalLM", GGUF: "llama", RopeInterleaved: true, LlamaKeys: true},
		{ModelType: "qwen2", Architecture: "Qwen2ForCausalLM", GGUF: "qwen2", QKVBias: true},
		{ModelType: "qwen3", Architecture: "Qwen3ForCausalLM", GGUF: "qwen3", QKNorm: true, AttentionBiasKey: true},
	}
}

// supportedList names the families for messages:
// "LlamaForCausalLM (model_type llama), ...".
func supportedList() string {
	var b strings.Builder
	for i, a := range Archs() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (model_type %s)", a.Architecture, a.ModelType)
	}
	return b.String()
}

// lookupArch finds the family of a config.json: by its architecture when
// it names one, else by model_type.
func lookupArch(architecture, modelType string) (Arch, error) {
	for _, a := range Archs() {
		if architecture != "" && a.Architecture == architecture || architecture == "" && a.ModelType == modelType {
			return a, nil
		}
	}
	if architecture == "" {
		return Arch{}, fmt.Errorf("no architectures and model_type %q is not supported; cogumi handles %s", modelType, supportedList())
	}
	return Arch{}, fmt.Errorf("architecture %s (model_type %q) is not supported; cogumi handles %s", architecture, modelType, supportedList())
}

// TensorSpec is one tensor a checkpoint of an architecture must hold.
type TensorSpec struct {
	Name  string
	Shape []int64
	// Layer is the decoder layer, -1 outside the layers.
	Layer int
}

// AttentionBiases reports which attention projections carry a bias under
// c: q/k/v (Qwen2 always; Llama and Mistral with attention_bias) and o
// (only with attention_bias).
func (c *Config) AttentionBiases() (qkv, o bool) {
	a := c.Arch
	withKey := a.AttentionBiasKey && c.AttentionBias
	return a.QKVBias || withKey, withKey
}

// MLPBiases reports whether gate, up and down carry biases.
func (c *Config) MLPBiases() bool { return c.Arch.MLPBiasKey && c.MLPBias }

// Tensors lists every tensor a checkpoint with this configuration holds,
// with its shape: the embeddings, each layer's norms, projections, biases
// and per-head norms, the final norm and (unless tied) the output head.
func (c *Config) Tensors() []TensorSpec {
	h, hd := int64(c.HiddenSize), int64(c.HeadDimension())
	q, kv, ff, v := int64(c.NumAttentionHeads)*hd, int64(c.NumKeyValueHeads)*hd, int64(c.IntermediateSize), int64(c.VocabSize)
	qkvBias, oBias := c.AttentionBiases()
	mlpBias := c.MLPBiases()
	out := []TensorSpec{{"model.embed_tokens.weight", []int64{v, h}, -1}}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		add := func(name string, shape ...int64) { out = append(out, TensorSpec{p + name, shape, i}) }
		add("input_layernorm.weight", h)
		add("self_attn.q_proj.weight", q, h)
		add("self_attn.k_proj.weight", kv, h)
		add("self_attn.v_proj.weight", kv, h)
		add("self_attn.o_proj.weight", h, q)
		if qkvBias {
			add("self_attn.q_proj.bias", q)
			add("self_attn.k_proj.bias", kv)
			add("self_attn.v_proj.bias", kv)
		}
		if oBias {
			add("self_attn.o_proj.bias", h)
		}
		if c.Arch.QKNorm {
			add("self_attn.q_norm.weight", hd)
			add("self_attn.k_norm.weight", hd)
		}
		add("post_attention_layernorm.weight", h)
		add("mlp.gate_proj.weight", ff, h)
		add("mlp.up_proj.weight", ff, h)
		add("mlp.down_proj.weight", h, ff)
		if mlpBias {
			add("mlp.gate_proj.bias", ff)
			add("mlp.up_proj.bias", ff)
			add("mlp.down_proj.bias", h)
		}
	}
	out = append(out, TensorSpec{"model.norm.weight", []int64{h}, -1})
	if !c.TieWordEmbeddings {
		out = append(out, TensorSpec{"lm_head.weight", []int64{v, h}, -1})
	}
	return out
}
