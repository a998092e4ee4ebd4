package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// HFTokenizer is what cogumi reads from a Hugging Face tokenizer.json with a
// BPE model: the vocabulary, the merges, the added tokens and a description
// of the pre-tokenizer.
type HFTokenizer struct {
	ModelType    string         // model.type; "BPE" for the tokenizers cogumi converts
	Vocab        map[string]int // model.vocab
	Merges       []string       // model.merges as "left right"
	ByteFallback bool           // model.byte_fallback: a SentencePiece-style BPE
	AddedTokens  []AddedToken
	// PreTokenizer is the pre_tokenizer object as written (JSON null when
	// absent); PreTokenizerType its "type" ("ByteLevel", "Sequence", ...).
	PreTokenizer     json.RawMessage
	PreTokenizerType string
	// PostProcessor is the post_processor object as written.
	PostProcessor json.RawMessage
}

// AddedToken is an entry of tokenizer.json's added_tokens.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized bool   `json:"normalized"`
}

// ReadTokenizerJSON reads a Hugging Face tokenizer.json.
func ReadTokenizerJSON(path string) (*HFTokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := ParseTokenizerJSON(b)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// ParseTokenizerJSON decodes a tokenizer.json document. Merges may be
// "left right" strings or, as tokenizers 0.20 writes them, [left, right]
// pairs; pairs are joined with a space after mapping any space inside a part
// to U+0120, as llama.cpp's gguf-py does.
func ParseTokenizerJSON(b []byte) (*HFTokenizer, error) {
	var doc struct {
		Model struct {
			Type         string            `json:"type"`
			Vocab        map[string]int    `json:"vocab"`
			Merges       []json.RawMessage `json:"merges"`
			ByteFallback bool              `json:"byte_fallback"`
		} `json:"model"`
		AddedTokens   []AddedToken    `json:"added_tokens"`
		PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a valid tokenizer.json: %w", err)
	}
	t := &HFTokenizer{
		ModelType:     doc.Model.Type,
		Vocab:         doc.Model.Vocab,
		ByteFallback:  doc.Model.ByteFallback,
		AddedTokens:   doc.AddedTokens,
		PreTokenizer:  doc.PreTokenizer,
		PostProcessor: doc.PostProcessor,
	}
	if t.ModelType == "" && t.Vocab != nil && doc.Model.Merges != nil {
		t.ModelType = "BPE" // old files omit the type
	}
	if t.ModelType != "BPE" {
		return nil, fmt.Errorf("model.type is %q; cogumi reads BPE tokenizers only", t.ModelType)
	}
	if len(t.Vocab) == 0 {
		return nil, errors.New("model.vocab is empty")
	}
	for tok, id := range t.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab gives %q the negative id %d", tok, id)
		}
	}
	for _, at := range t.AddedTokens {
		if at.ID < 0 {
			return nil, fmt.Errorf("added token %q has the negative id %d", at.Content, at.ID)
		}
	}
	t.Merges = make([]string, len(doc.Model.Merges))
	for i, m := range doc.Model.Merges {
		var s string
		if err := json.Unmarshal(m, &s); err == nil {
			t.Merges[i] = s
			continue
		}
		var pair []string
		if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d] is %s; want \"a b\" or [\"a\", \"b\"]", i, m)
		}
		t.Merges[i] = strings.ReplaceAll(pair[0], " ", "\u0120") + " " + strings.ReplaceAll(pair[1], " ", "\u0120")
	}
	if len(t.PreTokenizer) > 0 {
		var pt struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(t.PreTokenizer, &pt) // null or a non-object leaves it empty
		t.PreTokenizerType = pt.Type
	}
	return t, nil
}

// llama3Regex is the split pattern of Llama 3's pre-tokenizer.
const llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// LlamaCppPre guesses llama.cpp's tokenizer.ggml.pre for this tokenizer.
// llama.cpp's converter identifies the pre-tokenizer by hashing how
// transformers tokenizes a probe string; without transformers, cogumi
// recognises the two layouts it produces and meets: a plain GPT-2 ByteLevel
// pre-tokenizer ("gpt-2") and Llama 3's split regex ("llama-bpe"). Anything
// else is "default", with ok false so that a caller can warn.
func (t *HFTokenizer) LlamaCppPre() (pre string, ok bool) {
	var pt struct {
		Type          string `json:"type"`
		UseRegex      *bool  `json:"use_regex"`
		Pretokenizers []struct {
			Type    string `json:"type"`
			Pattern struct {
				Regex string `json:"Regex"`
			} `json:"pattern"`
		} `json:"pretokenizers"`
	}
	if json.Unmarshal(t.PreTokenizer, &pt) != nil {
		return "default", false
	}
	switch pt.Type {
	case "ByteLevel":
		if pt.UseRegex == nil || *pt.UseRegex {
			return "gpt-2", true
		}
	case "Sequence":
		for _, p := range pt.Pretokenizers {
			if p.Type == "Split" && p.Pattern.Regex == llama3Regex {
				return "llama-bpe", true
			}
		}
	}
	return "default", false
}
