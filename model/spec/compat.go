// Package spec holds llama.cpp's rules for speculative decoding, ported
// from the llama.cpp that the pinned node-llama-cpp bundles (commit
// 80fb11ac, common/speculative.cpp and src/llama-vocab.cpp), so that a
// build can refuse a draft model llama.cpp would refuse at load time.
package spec

import (
	"errors"
	"fmt"

	"github.com/cogumi/cogumi/model/gguf"
)

// llama.cpp's tolerances (common/speculative.cpp).
const (
	// MaxVocabSizeDifference is SPEC_VOCAB_MAX_SIZE_DIFFERENCE: how many
	// more tokens one vocabulary may have than the other.
	MaxVocabSizeDifference = 128
	// CheckStartTokenID is SPEC_VOCAB_CHECK_START_TOKEN_ID: the texts of
	// tokens from this id on, up to the smaller vocabulary's size, must be
	// equal.
	CheckStartTokenID = 5
)

// NoToken is LLAMA_TOKEN_NULL.
const NoToken = -1

// Vocab is what llama.cpp compares of two vocabularies.
type Vocab struct {
	Model  string // tokenizer.ggml.model
	Pre    string // tokenizer.ggml.pre
	Type   string // llama.cpp's vocabulary type: SPM, BPE, WPM, UGM, RWKV, PLAMO2, NONE
	AddBOS bool
	AddEOS bool
	BOS    int
	EOS    int
	Tokens []string
}

// llama3Pre are the BPE pre-tokenizers for which llama.cpp sets add_bos
// when the file does not say (src/llama-vocab.cpp, pre_type LLAMA3).
var llama3Pre = map[string]bool{"llama3": true, "llama-v3": true, "llama-bpe": true, "falcon3": true,
	"falcon-h1": true, "pixtral": true, "midm-2.0": true, "lfm2": true, "jina-v5-nano": true}

// VocabOf reads the vocabulary of a GGUF file as llama_vocab::load does:
// the type and default special tokens from tokenizer.ggml.model, then the
// ids and add_bos/add_eos flags the file sets.
func VocabOf(f *gguf.File) (Vocab, error) {
	var v Vocab
	var err error
	if v.Model, err = f.String("tokenizer.ggml.model"); err != nil {
		return v, fmt.Errorf("no vocabulary: %w", err)
	}
	v.Pre, _ = f.String("tokenizer.ggml.pre")
	switch v.Model {
	case "no_vocab", "none":
		v.Type, v.BOS, v.EOS = "NONE", NoToken, NoToken
	case "llama":
		v.Type, v.BOS, v.EOS, v.AddBOS = "SPM", 1, 2, true
	case "bert":
		v.Type, v.BOS, v.EOS, v.AddBOS = "WPM", 101, NoToken, true
	case "gpt2", "hybriddna", "whitespace":
		v.Type, v.BOS, v.EOS, v.AddBOS = "BPE", 11, 11, llama3Pre[v.Pre]
	case "gemma4":
		v.Type, v.BOS, v.EOS = "BPE", NoToken, NoToken
	case "t5":
		v.Type, v.BOS, v.EOS, v.AddEOS = "UGM", NoToken, 1, true
	case "rwkv":
		v.Type, v.BOS, v.EOS = "RWKV", NoToken, NoToken
	case "plamo2":
		v.Type, v.BOS, v.EOS = "PLAMO2", 1, 2
	default:
		return v, fmt.Errorf("tokenizer.ggml.model %q is not a vocabulary llama.cpp loads", v.Model)
	}
	if v.Type != "NONE" {
		if v.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
			return v, err
		}
	}
	for _, id := range []struct {
		key string
		dst *int
	}{{"tokenizer.ggml.bos_token_id", &v.BOS}, {"tokenizer.ggml.eos_token_id", &v.EOS}} {
		x, err := f.Uint32(id.key)
		if errors.Is(err, gguf.ErrNotFound) {
			continue
		}
		if err != nil {
			return v, err
		}
		*id.dst = int(x)
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"tokenizer.ggml.add_bos_token", &v.AddBOS}, {"tokenizer.ggml.add_eos_token", &v.AddEOS}} {
		x, err := f.Bool(b.key)
		if errors.Is(err, gguf.ErrNotFound) {
			continue
		}
		if err != nil {
			return v, err
		}
		*b.dst = x
	}
	return v, nil
}

// IncompatibleError says why llama.cpp would not draft for a target with
// a draft model: the first rule of common_speculative_are_compatible that
// fails, in its order and words.
type IncompatibleError struct {
	Rule   string // vocab_type, bos, eos, vocab_size, token_text
	Reason string
}

func (e *IncompatibleError) Error() string { return e.Reason }

// Compatible applies common_speculative_are_compatible to a target and a
// draft vocabulary: nil when llama.cpp would use the draft.
func Compatible(tgt, dft Vocab) error {
	if tgt.Type != dft.Type {
		return &IncompatibleError{"vocab_type", fmt.Sprintf("draft model vocab type must match target model to use speculation but the draft's is %s (%s) while the target's is %s (%s)",
			dft.Type, dft.Model, tgt.Type, tgt.Model)}
	}
	if tgt.AddBOS != dft.AddBOS || (tgt.AddBOS && tgt.BOS != dft.BOS) {
		return &IncompatibleError{"bos", fmt.Sprintf("draft model bos tokens must match target model to use speculation: add_bos target %t, draft %t; bos id target %d, draft %d",
			tgt.AddBOS, dft.AddBOS, tgt.BOS, dft.BOS)}
	}
	if tgt.AddEOS != dft.AddEOS || (tgt.AddEOS && tgt.EOS != dft.EOS) {
		return &IncompatibleError{"eos", fmt.Sprintf("draft model eos tokens must match target model to use speculation: add_eos target %t, draft %t; eos id target %d, draft %d",
			tgt.AddEOS, dft.AddEOS, tgt.EOS, dft.EOS)}
	}
	nt, nd := len(tgt.Tokens), len(dft.Tokens)
	if diff := max(nt-nd, nd-nt); diff > MaxVocabSizeDifference {
		return &IncompatibleError{"vocab_size", fmt.Sprintf("draft model vocab must closely match target model to use speculation but target vocab size %d does not match draft vocab size %d - difference %d, max allowed %d",
			nt, nd, diff, MaxVocabSizeDifference)}
	}
	for i := CheckStartTokenID; i < min(nt, nd); i++ {
		if tgt.Tokens[i] != dft.Tokens[i] {
			return &IncompatibleError{"token_text", fmt.Sprintf("draft model vocab must match target model to use speculation but token %d content differs - target %q, draft %q",
				i, tgt.Tokens[i], dft.Tokens[i])}
		}
	}
	return nil
}
