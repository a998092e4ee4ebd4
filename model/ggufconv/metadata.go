package ggufconv

import (
	"fmt"
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
)

// metadata is what the key-value section of the file is made from.
type metadata struct {
	cfg   *checkpoint.Config
	vocab *checkpoint.Vocab
	ft    fileType
	// authorship holds general.name, general.size_label and the other
	// general.* keys of the model's origin.
	authorship *Authorship
	sampling   []kv   // general.sampling.*, from generation_config.json
	source     string // Options.SourceDigest
	quantize   []kv   // the quantize.imatrix.* keys, last
}

// kv is one metadata entry; values carry the exact GGUF type llama.cpp's
// loader expects (uint32 counts, float32 epsilon and RoPE base).
type kv struct {
	key   string
	value any
}

// entries lists the metadata: the converter's keys, with
// general.quantization_version and general.file_type last, where
// llama-quantize puts them (it re-sets both after copying the input's
// keys). A file cogumi quantises is then byte for byte what llama-quantize
// makes of cogumi's F32 file of the same checkpoint.
func (md *metadata) entries() ([]kv, error) {
	c := md.cfg
	u32 := func(field string, v int) (uint32, error) {
		if v < 0 || int64(v) > 1<<32-1 {
			return 0, fmt.Errorf("config.json %s = %d does not fit a uint32", field, v)
		}
		return uint32(v), nil
	}
	var firstErr error
	u := func(field string, v int) uint32 {
		x, err := u32(field, v)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return x
	}
	// Keys are the architecture's: llama.* for Llama and Mistral, qwen2.*
	// and qwen3.* for the Qwen families (TextModel.set_gguf_parameters).
	arch := c.Arch.GGUF
	k := func(name string) string { return arch + "." + name }
	out := []kv{
		{"general.architecture", arch},
		{"general.type", "model"},
	}
	out = append(out, md.sampling...)
	out = append(out, md.authorship.entries()...)
	if md.source != "" {
		out = append(out, kv{SourceDigestKey, md.source})
	}
	out = append(out, []kv{
		{k("block_count"), u("num_hidden_layers", c.NumHiddenLayers)},
		{k("context_length"), u("max_position_embeddings", c.MaxPositionEmbeddings)},
		{k("embedding_length"), u("hidden_size", c.HiddenSize)},
		{k("feed_forward_length"), u("intermediate_size", c.IntermediateSize)},
		{k("attention.head_count"), u("num_attention_heads", c.NumAttentionHeads)},
		{k("attention.head_count_kv"), u("num_key_value_heads", c.NumKeyValueHeads)},
	}...)
	out = append(out, ropeScaling(c)...)
	out = append(out,
		kv{k("rope.freq_base"), float32(c.RopeTheta)},
		kv{k("attention.layer_norm_rms_epsilon"), float32(c.RMSNormEps)},
	)
	if c.HeadDim > 0 {
		// The converter writes these only when config.json sets head_dim.
		out = append(out,
			kv{k("attention.key_length"), u("head_dim", c.HeadDim)},
			kv{k("attention.value_length"), u("head_dim", c.HeadDim)})
	}
	if c.Arch.LlamaKeys {
		// LlamaModel.set_gguf_parameters adds these; the Qwen models do
		// not (llama.cpp takes the RoPE dimension from the head size).
		out = append(out,
			kv{k("vocab_size"), u("vocab_size", c.VocabSize)},
			kv{k("rope.dimension_count"), u("head_dim", c.HeadDimension())})
	}
	out = append(out, kv{"general.alignment", uint32(Alignment)})
	out = append(out, md.tokenizer()...)
	out = append(out,
		kv{"general.quantization_version", uint32(QuantizationVersion)},
		kv{"general.file_type", md.ft.ftype})
	out = append(out, md.quantize...)
	return out, firstErr
}

// ropeScaling returns the rope.scaling keys the converter writes for
// linear and YaRN scaling. llama3 scaling has no keys: it is the
// rope_freqs.weight tensor (see ropeFreqs).
func ropeScaling(c *checkpoint.Config) []kv {
	rs := c.RopeScaling
	if rs == nil || rs.Factor == 0 {
		return nil
	}
	k := func(name string) string { return c.Arch.GGUF + ".rope.scaling." + name }
	switch strings.ToLower(rs.Type) {
	case "linear":
		return []kv{{k("type"), "linear"}, {k("factor"), float32(rs.Factor)}}
	case "yarn":
		out := []kv{{k("type"), "yarn"}, {k("factor"), float32(rs.Factor)}}
		if rs.OriginalMaxPositionEmbeddings > 0 && int64(rs.OriginalMaxPositionEmbeddings) <= 1<<32-1 {
			out = append(out, kv{k("original_context_length"), uint32(rs.OriginalMaxPositionEmbeddings)})
		}
		return out
	}
	return nil
}

// tokenizer returns the tokenizer.ggml.* entries: what
// _set_vocab_sentencepiece, _set_vocab_llama_hf or _set_vocab_gpt2 and
// gguf-py's SpecialVocab write.
func (md *metadata) tokenizer() []kv {
	v := md.vocab
	types := make([]int32, len(v.Types))
	for i, t := range v.Types {
		types[i] = int32(t)
	}
	out := []kv{
		{"tokenizer.ggml.model", v.Model},
		{"tokenizer.ggml.pre", v.Pre},
		{"tokenizer.ggml.tokens", v.Tokens},
	}
	if v.Scores != nil {
		out = append(out, kv{"tokenizer.ggml.scores", v.Scores})
	}
	out = append(out, kv{"tokenizer.ggml.token_type", types})
	if v.Model == "gpt2" {
		out = append(out, kv{"tokenizer.ggml.merges", v.Merges})
	}
	for _, id := range []struct {
		key string
		id  int
	}{
		{"tokenizer.ggml.bos_token_id", v.BOS},
		{"tokenizer.ggml.eos_token_id", v.EOS},
		{"tokenizer.ggml.unknown_token_id", v.UNK},
		{"tokenizer.ggml.padding_token_id", v.PAD},
	} {
		if id.id >= 0 {
			out = append(out, kv{id.key, uint32(id.id)})
		}
	}
	if v.AddBOS != nil {
		out = append(out, kv{"tokenizer.ggml.add_bos_token", *v.AddBOS})
	}
	if v.AddEOS != nil {
		out = append(out, kv{"tokenizer.ggml.add_eos_token", *v.AddEOS})
	}
	// gguf-py's add_chat_template: the named templates, their names, then
	// the default.
	var names []string
	for _, t := range v.NamedChatTemplates {
		out = append(out, kv{"tokenizer.chat_template." + t.Name, t.Template})
		names = append(names, t.Name)
	}
	if names != nil {
		out = append(out, kv{"tokenizer.chat_templates", names})
	}
	if v.ChatTemplate != "" {
		out = append(out, kv{"tokenizer.chat_template", v.ChatTemplate})
	}
	return out
}
