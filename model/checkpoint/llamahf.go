package checkpoint

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
)

// byteToken matches the names of byte-fallback tokens, as gguf-py's
// LlamaHfVocab.get_token_type does.
var byteToken = regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)

// llamaHfVocab builds the vocabulary of a SentencePiece-style tokenizer.json
// (no tokenizer.model) as the converter's _set_vocab_llama_hf (gguf-py's
// LlamaHfVocab) does: model "llama"; the base vocabulary in id order, then
// the added tokens past it; BYTE for <0xXX>, CONTROL for special tokens,
// NORMAL for the rest of the base, USER_DEFINED for added tokens that are
// not special.
//
// Two deliberate differences from the converter:
//
//   - Scores. The converter writes -1000 for every token. llama.cpp's
//     SentencePiece tokenizer merges the pair whose result scores highest,
//     leftmost on ties, so with equal scores it merges left to right and
//     its ids differ from Hugging Face's, which apply the BPE merges in
//     rank order. cogumi scores a normal token by the rank of the first
//     merge producing it, negated (rank r scores -r), so that llama.cpp
//     merges in Hugging Face's order and gives the same ids; tokens no
//     merge produces score below every merge. Byte, control and
//     user-defined tokens keep the converter's -1000.
//   - Padding. The converter writes only the tokenizer's tokens; when
//     config.json's vocab_size is larger (embeddings padded to a multiple
//     of 64), llama.cpp would refuse the file, whose embedding has more
//     rows than the vocabulary. cogumi pads with [PAD<i>] unused tokens, as
//     the converter does for tokenizer.model.
func (m *Model) llamaHfVocab(v *Vocab, raw map[string]json.RawMessage) error {
	t := m.hftok
	jsPath := filepath.Join(m.dir, TokenizerJSONFile)
	n, base := len(v.Tokens), len(t.Vocab)
	v.Model, v.Pre = "llama", "default"
	v.Scores = make([]float32, n)
	for i := range v.Scores {
		v.Scores[i] = -10000
	}
	beyond, err := addedBeyond(t.AddedTokens, base)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", jsPath, err)
	}
	if total := base + len(beyond); total > n {
		return fmt.Errorf("checkpoint %s: the tokenizer has %d tokens, but config.json's vocab_size is %d", jsPath, total, n)
	}
	special := specialIDs(t, raw)
	rank := mergeRanks(t)
	for tok, id := range t.Vocab {
		if id >= base {
			return fmt.Errorf("checkpoint %s: token %q has id %d, past the %d tokens of model.vocab", jsPath, tok, id, base)
		}
		typ, score := TokenNormal, float32(-(len(t.Merges) + id))
		switch r, merged := rank[tok]; {
		case byteToken.MatchString(tok):
			typ, score = TokenByte, -1000
		case special[id]:
			typ, score = TokenControl, -1000
		case merged:
			score = float32(-r)
		}
		v.Tokens[id], v.Types[id], v.Scores[id] = tok, typ, score
	}
	for _, a := range beyond {
		typ := TokenUserDefined
		if special[a.ID] {
			typ = TokenControl
		}
		v.Tokens[a.ID], v.Types[a.ID], v.Scores[a.ID] = a.Content, typ, -1000
	}
	return nil
}

// addedBeyond returns the added tokens whose ids follow the base
// vocabulary, in id order. The converter appends them after the base
// tokens, so their ids must run on from it without gaps.
func addedBeyond(added []AddedToken, base int) ([]AddedToken, error) {
	var out []AddedToken
	for _, a := range added {
		if a.ID >= base {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for i, a := range out {
		if a.ID != base+i {
			return nil, fmt.Errorf("added token %q has id %d; the added tokens past the vocabulary's %d must be numbered on from it without gaps", a.Content, a.ID, base)
		}
	}
	return out, nil
}

// specialIDs approximates transformers' all_special_ids: the added tokens
// marked special, and the tokens tokenizer_config.json names as bos, eos,
// unk, pad, sep, cls, mask or additional special tokens.
func specialIDs(t *HFTokenizer, raw map[string]json.RawMessage) map[int]bool {
	ids := map[int]bool{}
	byContent := map[string]int{}
	for tok, id := range t.Vocab {
		byContent[tok] = id
	}
	for _, a := range t.AddedTokens {
		byContent[a.Content] = a.ID
		if a.Special {
			ids[a.ID] = true
		}
	}
	name := func(r json.RawMessage) {
		var s string
		var obj struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(r, &s) != nil && json.Unmarshal(r, &obj) == nil {
			s = obj.Content
		}
		if id, ok := byContent[s]; ok && s != "" {
			ids[id] = true
		}
	}
	for _, k := range []string{"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"} {
		name(raw[k])
	}
	var extra []json.RawMessage
	_ = json.Unmarshal(raw["additional_special_tokens"], &extra) // absent or not a list: none
	for _, r := range extra {
		name(r)
	}
	return ids
}

// mergeRanks maps each token a merge produces to the rank of the first
// merge producing it.
func mergeRanks(t *HFTokenizer) map[string]int {
	rank := make(map[string]int, len(t.mergePairs))
	for i, p := range t.mergePairs {
		if _, ok := rank[p[0]+p[1]]; !ok {
			rank[p[0]+p[1]] = i
		}
	}
	return rank
}
