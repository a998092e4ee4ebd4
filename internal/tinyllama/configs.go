package tinyllama

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cogumi/cogumi/model/safetensors"
)

// tokInfo is what the configuration files need to know of the tokenizer.
type tokInfo struct {
	vocab          int
	bos, eos       int
	bosText        string
	eosText        string
	unkText        string // "" for BPE, which has no unknown token
	addedDecoder   map[string]any
	tokenizerClass string
	// givenConfig is a real tokenizer's tokenizer_config.json, copied as
	// it is; nil for a generated tokenizer.
	givenConfig []byte
}

func addedEntry(content string) map[string]any {
	return map[string]any{"content": content, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true}
}

func writeTokenizer(dir string, o Options) (tokInfo, error) {
	if o.TokenizerJSON != "" {
		return copyTokenizer(dir, o.TokenizerJSON, o.TokenizerConfig)
	}
	if o.Tokenizer == SentencePiece {
		pieces := spmPieces()
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), sentencePieceModel(pieces), 0o644); err != nil {
			return tokInfo{}, fmt.Errorf("tinyllama: %w", err)
		}
		return tokInfo{
			vocab: len(pieces), bos: 1, eos: 2, bosText: "<s>", eosText: "</s>", unkText: "<unk>",
			addedDecoder:   map[string]any{"0": addedEntry("<unk>"), "1": addedEntry("<s>"), "2": addedEntry("</s>")},
			tokenizerClass: "LlamaTokenizer",
		}, nil
	}
	tokens, merges := bpeVocab()
	js, err := tokenizerJSON(tokens, merges)
	if err != nil {
		return tokInfo{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), js, 0o644); err != nil {
		return tokInfo{}, fmt.Errorf("tinyllama: %w", err)
	}
	sp := bpeSpecials()
	info := tokInfo{
		vocab: len(tokens) + len(sp), bos: len(tokens), eos: len(tokens) + 1,
		bosText: sp[0], eosText: sp[1], addedDecoder: map[string]any{},
		tokenizerClass: "PreTrainedTokenizerFast",
	}
	for i, s := range sp {
		info.addedDecoder[strconv.Itoa(len(tokens)+i)] = addedEntry(s)
	}
	return info, nil
}

// copyTokenizer copies a real tokenizer into dir and reads what config.json
// needs from it: the vocabulary size (the highest id, plus one) and the ids
// of the tokens tokenizer_config.json names as BOS and EOS.
func copyTokenizer(dir, tokenizerJSON, tokenizerConfig string) (tokInfo, error) {
	js, err := os.ReadFile(tokenizerJSON)
	if err != nil {
		return tokInfo{}, fmt.Errorf("tinyllama: %w", err)
	}
	tc, err := os.ReadFile(tokenizerConfig)
	if err != nil {
		return tokInfo{}, fmt.Errorf("tinyllama: %w", err)
	}
	var doc struct {
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return tokInfo{}, fmt.Errorf("tinyllama: %s: %w", tokenizerJSON, err)
	}
	var cfg struct {
		BOS any `json:"bos_token"`
		EOS any `json:"eos_token"`
	}
	if err := json.Unmarshal(tc, &cfg); err != nil {
		return tokInfo{}, fmt.Errorf("tinyllama: %s: %w", tokenizerConfig, err)
	}
	ids := maps.Clone(doc.Model.Vocab)
	for _, a := range doc.AddedTokens {
		ids[a.Content] = a.ID
	}
	info := tokInfo{bos: -1, eos: -1, givenConfig: tc}
	for _, id := range ids {
		info.vocab = max(info.vocab, id+1)
	}
	if s, ok := cfg.BOS.(string); ok {
		info.bos, info.bosText = ids[s], s
	}
	if s, ok := cfg.EOS.(string); ok {
		info.eos, info.eosText = ids[s], s
	}
	for name, b := range map[string][]byte{"tokenizer.json": js, "tokenizer_config.json": tc} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return tokInfo{}, fmt.Errorf("tinyllama: %w", err)
		}
	}
	return info, nil
}

func torchDType(d safetensors.DType) string {
	switch d {
	case safetensors.F32:
		return "float32"
	case safetensors.F16:
		return "float16"
	}
	return "bfloat16"
}

// llamaConfig is config.json, in the field order transformers writes.
type llamaConfig struct {
	Architectures         []string `json:"architectures"`
	AttentionBias         bool     `json:"attention_bias"`
	AttentionDropout      float64  `json:"attention_dropout"`
	BOSTokenID            *int     `json:"bos_token_id"`
	EOSTokenID            *int     `json:"eos_token_id"`
	HeadDim               int      `json:"head_dim"`
	HiddenAct             string   `json:"hidden_act"`
	HiddenSize            int      `json:"hidden_size"`
	InitializerRange      float64  `json:"initializer_range"`
	IntermediateSize      int      `json:"intermediate_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	MLPBias               bool     `json:"mlp_bias"`
	ModelType             string   `json:"model_type"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`
	PretrainingTP         int      `json:"pretraining_tp"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeScaling           any      `json:"rope_scaling"`
	RopeTheta             float64  `json:"rope_theta"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	TorchDType            string   `json:"torch_dtype"`
	TransformersVersion   string   `json:"transformers_version"`
	UseCache              bool     `json:"use_cache"`
	VocabSize             int      `json:"vocab_size"`
}

func writeConfigs(dir string, o Options, tok tokInfo) error {
	cfg := llamaConfig{
		Architectures: []string{"LlamaForCausalLM"}, BOSTokenID: tokenID(tok.bos), EOSTokenID: tokenID(tok.eos),
		HeadDim: o.HeadDim, HiddenAct: "silu", HiddenSize: o.Hidden, InitializerRange: 0.02,
		IntermediateSize: o.Intermediate, MaxPositionEmbeddings: o.MaxPositions, ModelType: "llama",
		NumAttentionHeads: o.Heads, NumHiddenLayers: o.Layers, NumKeyValueHeads: o.KVHeads,
		PretrainingTP: 1, RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: o.TieEmbeddings,
		TorchDType: torchDType(o.DType), TransformersVersion: "4.44.0", UseCache: true, VocabSize: tok.vocab,
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), archConfig(cfg, o)); err != nil {
		return err
	}
	if tok.givenConfig != nil {
		return writeGeneration(dir, tok)
	}
	tc := map[string]any{
		"add_bos_token": true, "add_eos_token": false, "bos_token": tok.bosText, "eos_token": tok.eosText,
		"clean_up_tokenization_spaces": false, "model_max_length": o.MaxPositions,
		"tokenizer_class": tok.tokenizerClass, "added_tokens_decoder": tok.addedDecoder,
	}
	if tok.unkText != "" {
		tc["unk_token"] = tok.unkText
		tc["pad_token"] = nil
		tc["legacy"] = false
		tc["sp_model_kwargs"] = map[string]any{}
	}
	if err := writeJSON(filepath.Join(dir, "tokenizer_config.json"), tc); err != nil {
		return err
	}
	return writeGeneration(dir, tok)
}

// tokenID is a special token's id as config.json holds it: null when the
// tokenizer names no such token (Qwen's names no BOS), never -1, which
// transformers warns about and gguf-py refuses.
func tokenID(id int) *int {
	if id < 0 {
		return nil
	}
	return &id
}

func writeGeneration(dir string, tok tokInfo) error {
	gen := map[string]any{"_from_model_config": true, "bos_token_id": tokenID(tok.bos), "eos_token_id": tokenID(tok.eos), "transformers_version": "4.44.0"}
	return writeJSON(filepath.Join(dir, "generation_config.json"), gen)
}

// archConfig turns Llama's config.json into the one transformers writes
// for o.Arch: its architectures and model_type, and the fields that class
// has instead of Llama's (keys sorted, as transformers writes them).
func archConfig(cfg llamaConfig, o Options) any {
	if o.Arch == Llama {
		return cfg
	}
	b, _ := json.Marshal(cfg)
	var m map[string]any
	_ = json.Unmarshal(b, &m) // a struct of plain fields marshals and reads back
	m["model_type"] = string(o.Arch)
	delete(m, "pretraining_tp")
	delete(m, "mlp_bias")
	switch o.Arch {
	case Mistral:
		m["architectures"] = []string{"MistralForCausalLM"}
		delete(m, "attention_bias")
		m["sliding_window"] = nil
	case Qwen2:
		// Qwen2 always has q, k and v biases: its config has no
		// attention_bias, and no head_dim.
		m["architectures"] = []string{"Qwen2ForCausalLM"}
		delete(m, "attention_bias")
		delete(m, "head_dim")
		m["sliding_window"], m["use_sliding_window"], m["max_window_layers"] = o.MaxPositions, false, o.Layers
		m["rms_norm_eps"], m["rope_theta"] = 1e-6, 1000000.0
	case Qwen3:
		m["architectures"] = []string{"Qwen3ForCausalLM"}
		m["sliding_window"], m["use_sliding_window"], m["max_window_layers"] = nil, false, o.Layers
		m["rms_norm_eps"], m["rope_theta"] = 1e-6, 1000000.0
	}
	return m
}
