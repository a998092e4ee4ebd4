package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Config is the part of a Hugging Face config.json that cogumi's model
// rules use. Missing optional fields get the defaults of transformers'
// LlamaConfig, so that a checkpoint means here what it means to PyTorch.
type Config struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`     // default: NumAttentionHeads
	HeadDim               int      `json:"head_dim"`                // 0 when absent; see HeadDimension
	MaxPositionEmbeddings int      `json:"max_position_embeddings"` // default 2048
	RMSNormEps            float64  `json:"rms_norm_eps"`            // default 1e-6
	RopeTheta             float64  `json:"rope_theta"`              // default 10000
	// RopeScaling is config.json's rope_scaling (or, with transformers 5, a
	// non-default rope_parameters); nil when RoPE is not scaled.
	RopeScaling       *RopeScaling `json:"rope_scaling"`
	VocabSize         int          `json:"vocab_size"`
	TieWordEmbeddings bool         `json:"tie_word_embeddings"`
	// TorchDType is torch_dtype ("bfloat16", ...), or dtype as transformers 5
	// spells it.
	TorchDType    string   `json:"torch_dtype"`
	BOSTokenID    *int     `json:"bos_token_id"`
	EOSTokenIDs   TokenIDs `json:"eos_token_id"` // a number or a list in config.json
	PadTokenID    *int     `json:"pad_token_id"`
	HiddenAct     string   `json:"hidden_act"`
	AttentionBias bool     `json:"attention_bias"`
	MLPBias       bool     `json:"mlp_bias"`
	SlidingWindow *int     `json:"sliding_window"` // Mistral; llama.cpp ignores it
	// Arch is the family the architecture (or model_type) names: which
	// tensors the checkpoint holds and how llama.cpp converts them.
	Arch Arch `json:"-"`
}

// RopeScaling describes scaled RoPE (Llama 3.1's "llama3", "linear", ...).
type RopeScaling struct {
	Type                          string  `json:"rope_type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// TokenIDs holds config.json's eos_token_id: a number, a list or null.
type TokenIDs []int

// UnmarshalJSON accepts a number, a list of numbers or null.
func (t *TokenIDs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = nil
		return nil
	case len(b) > 0 && b[0] == '[':
		var ids []int
		if err := json.Unmarshal(b, &ids); err != nil {
			return fmt.Errorf("want a token id or a list of them: %w", err)
		}
		*t = ids
		return nil
	}
	var id int
	if err := json.Unmarshal(b, &id); err != nil {
		return fmt.Errorf("want a token id or a list of them: %w", err)
	}
	*t = TokenIDs{id}
	return nil
}

// HeadDimension returns head_dim, or hidden_size / num_attention_heads when
// config.json does not set it.
func (c *Config) HeadDimension() int {
	if c.HeadDim > 0 {
		return c.HeadDim
	}
	return c.HiddenSize / c.NumAttentionHeads
}

// Architecture returns the first entry of architectures, or "" if none.
func (c *Config) Architecture() string {
	if len(c.Architectures) == 0 {
		return ""
	}
	return c.Architectures[0]
}

// readConfig reads and validates dir/config.json.
func readConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("checkpoint: %w", err)
	}
	return parseConfig(path, b)
}

func parseConfig(path string, b []byte) (Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %s: %s", path, fmt.Sprintf(format, args...))
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Config{}, bad("field %q should be %s, not a JSON %s", te.Field, te.Type, te.Value)
		}
		return Config{}, bad("not valid JSON: %v", err)
	}
	// Fields that transformers 5 moved or renamed.
	var extra struct {
		DType          string          `json:"dtype"`
		RopeParameters json.RawMessage `json:"rope_parameters"`
	}
	_ = json.Unmarshal(b, &extra) // the document parsed above; type errors are ignored here
	if c.TorchDType == "" {
		c.TorchDType = extra.DType
	}
	if len(extra.RopeParameters) > 0 && !bytes.Equal(extra.RopeParameters, []byte("null")) {
		var rp struct {
			RopeScaling
			RopeTheta float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(extra.RopeParameters, &rp); err != nil {
			return Config{}, bad("rope_parameters: %v", err)
		}
		if c.RopeTheta == 0 {
			c.RopeTheta = rp.RopeTheta
		}
		if c.RopeScaling == nil && rp.Type != "" && rp.Type != "default" {
			c.RopeScaling = &rp.RopeScaling
		}
	}
	if c.RopeScaling != nil && c.RopeScaling.Type == "" {
		// Older configs spell it "type".
		var old struct {
			RopeScaling struct {
				Type string `json:"type"`
			} `json:"rope_scaling"`
		}
		_ = json.Unmarshal(b, &old)
		c.RopeScaling.Type = old.RopeScaling.Type
	}

	arch, err := lookupArch(c.Architecture(), c.ModelType)
	if err != nil {
		return Config{}, bad("%v", err)
	}
	c.Arch = arch
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.MaxPositionEmbeddings == 0 {
		c.MaxPositionEmbeddings = 2048
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads}, {"vocab_size", c.VocabSize},
	} {
		if f.v <= 0 {
			return Config{}, bad("%s is %d; it must be set and positive", f.name, f.v)
		}
	}
	if c.HeadDim < 0 {
		return Config{}, bad("head_dim is %d; it must be positive", c.HeadDim)
	}
	if c.HeadDim == 0 && c.HiddenSize%c.NumAttentionHeads != 0 {
		return Config{}, bad("hidden_size %d is not a multiple of num_attention_heads %d (and head_dim is not set)", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return Config{}, bad("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HeadDimension()%2 != 0 {
		return Config{}, bad("head dimension %d is odd; RoPE needs pairs", c.HeadDimension())
	}
	return c, nil
}
