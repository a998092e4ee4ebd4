package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// HFTokenizer is what cogumi reads from a Hugging Face tokenizer.json with a
// BPE model: the vocabulary, the merges, the added tokens, and the
// normalizer, pre-tokenizer and post-processor as written (NewEncoder runs
// them).
type HFTokenizer struct {
	ModelType    string         // model.type; "BPE" for the tokenizers cogumi converts
	Vocab        map[string]int // model.vocab
	Merges       []string       // model.merges as "left right"
	ByteFallback bool           // model.byte_fallback: a SentencePiece-style BPE
	IgnoreMerges bool           // model.ignore_merges: a word in the vocabulary is one token
	UnkToken     string         // model.unk_token; "" when there is none
	FuseUnk      bool           // model.fuse_unk: consecutive unknown characters give one unk
	AddedTokens  []AddedToken
	// Normalizer, PreTokenizer, PostProcessor and Decoder are the objects as
	// written (JSON null when absent); PreTokenizerType and DecoderType are
	// their "type" ("ByteLevel", "Sequence", ...).
	Normalizer       json.RawMessage
	PreTokenizer     json.RawMessage
	PreTokenizerType string
	PostProcessor    json.RawMessage
	Decoder          json.RawMessage
	DecoderType      string
	// mergePairs are the merges as the two parts written, which the encoder
	// needs: Merges' joined form cannot be split back when a part holds a
	// space.
	mergePairs [][2]string
	// extra holds model fields cogumi's encoder does not implement, set to
	// values other than their defaults ("continuing_subword_prefix", ...).
	extra []string
}

// AddedToken is an entry of tokenizer.json's added_tokens.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized bool   `json:"normalized"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	SingleWord bool   `json:"single_word"`
}

// SentencePieceStyle reports whether llama.cpp's converter treats this
// tokenizer.json as a SentencePiece vocabulary (LlamaHfVocab: a BPE model
// with byte fallback and a Sequence decoder, as transformers writes for
// Llama 2, Mistral and TinyLlama) rather than a byte-level BPE one.
func (t *HFTokenizer) SentencePieceStyle() bool {
	return t.ModelType == "BPE" && t.ByteFallback && t.DecoderType == "Sequence"
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
			IgnoreMerges bool              `json:"ignore_merges"`
			UnkToken     *string           `json:"unk_token"`
			FuseUnk      bool              `json:"fuse_unk"`
			Dropout      *float64          `json:"dropout"`
			Prefix       *string           `json:"continuing_subword_prefix"`
			Suffix       *string           `json:"end_of_word_suffix"`
		} `json:"model"`
		AddedTokens   []AddedToken    `json:"added_tokens"`
		Normalizer    json.RawMessage `json:"normalizer"`
		PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Decoder       json.RawMessage `json:"decoder"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a valid tokenizer.json: %w", err)
	}
	t := &HFTokenizer{
		ModelType:     doc.Model.Type,
		Vocab:         doc.Model.Vocab,
		ByteFallback:  doc.Model.ByteFallback,
		IgnoreMerges:  doc.Model.IgnoreMerges,
		FuseUnk:       doc.Model.FuseUnk,
		AddedTokens:   doc.AddedTokens,
		Normalizer:    doc.Normalizer,
		PreTokenizer:  doc.PreTokenizer,
		PostProcessor: doc.PostProcessor,
		Decoder:       doc.Decoder,
	}
	if doc.Model.UnkToken != nil {
		t.UnkToken = *doc.Model.UnkToken
	}
	if d := doc.Model.Dropout; d != nil && *d != 0 {
		t.extra = append(t.extra, fmt.Sprintf("dropout %g", *d))
	}
	if p := doc.Model.Prefix; p != nil && *p != "" {
		t.extra = append(t.extra, fmt.Sprintf("continuing_subword_prefix %q", *p))
	}
	if p := doc.Model.Suffix; p != nil && *p != "" {
		t.extra = append(t.extra, fmt.Sprintf("end_of_word_suffix %q", *p))
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
	t.mergePairs = make([][2]string, len(doc.Model.Merges))
	for i, m := range doc.Model.Merges {
		var s string
		if err := json.Unmarshal(m, &s); err == nil {
			// tokenizers splits a string merge at its space; a merge
			// without exactly one is refused there too.
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] is %q; want two parts separated by one space", i, s)
			}
			t.Merges[i], t.mergePairs[i] = s, [2]string{a, b}
			continue
		}
		var pair []string
		if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d] is %s; want \"a b\" or [\"a\", \"b\"]", i, m)
		}
		t.Merges[i] = strings.ReplaceAll(pair[0], " ", "\u0120") + " " + strings.ReplaceAll(pair[1], " ", "\u0120")
		t.mergePairs[i] = [2]string{pair[0], pair[1]}
	}
	t.PreTokenizerType = typeOf(t.PreTokenizer)
	t.DecoderType = typeOf(t.Decoder)
	return t, nil
}

// typeOf returns the "type" of a tokenizer.json component; "" for null or
// a value that is not an object.
func typeOf(raw json.RawMessage) string {
	var c struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Type
}
