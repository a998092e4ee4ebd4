package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Vocab is a checkpoint's tokenizer in the form GGUF stores it, built the
// way llama.cpp's convert_hf_to_gguf.py builds it (_create_vocab_sentencepiece,
// LlamaHfVocab or get_vocab_base, then gguf-py's SpecialVocab), so that a GGUF written by
// cogumi tokenizes as one written by llama.cpp.
type Vocab struct {
	Model  string // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (BPE)
	Pre    string // tokenizer.ggml.pre
	Tokens []string
	Scores []float32 // nil for gpt2
	Types  []TokenType
	Merges []string // gpt2 only, "left right"
	// Special token ids, -1 when the checkpoint sets none.
	BOS, EOS, UNK, PAD int
	// AddBOS and AddEOS are nil when the checkpoint does not say.
	AddBOS, AddEOS *bool
	// ChatTemplate is tokenizer.chat_template: the checkpoint's template,
	// or the "default" one of a list; the list's others are
	// NamedChatTemplates (tokenizer.chat_template.<name>).
	ChatTemplate       string
	NamedChatTemplates []ChatTemplate
}

// looksSpecial mirrors the converter's does_token_look_special: added tokens
// that some models forget to mark special but that are control tokens.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>")) ||
		(strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>")) ||
		(strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">"))
}

// tokenizerConfig is the part of tokenizer_config.json the converter reads.
type tokenizerConfig struct {
	AddBOS       *bool                      `json:"add_bos_token"`
	AddEOS       *bool                      `json:"add_eos_token"`
	ChatTemplate json.RawMessage            `json:"chat_template"`
	AddedDecoder map[string]addedTokenEntry `json:"added_tokens_decoder"`
}

type addedTokenEntry struct {
	Content string `json:"content"`
	Special bool   `json:"special"`
}

func (m *Model) readJSON(name string, v any) (bool, error) {
	p := filepath.Join(m.dir, name)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("checkpoint %s: %v", p, err)
	}
	return true, nil
}

// VocabOptions adjust what Vocab infers.
type VocabOptions struct {
	// Pre names a byte-level BPE tokenizer's pre-tokenizer (a
	// tokenizer.ggml.pre llama.cpp knows) instead of identifying it from
	// the check text's digest: for a tokenizer whose pre-tokenizer the user
	// knows to be one of llama.cpp's but whose vocabulary the converter's
	// table does not list.
	Pre string
}

// Vocab builds the GGUF vocabulary, padded (or cut) to config.json's
// vocab_size as the converter does.
func (m *Model) Vocab(o VocabOptions) (*Vocab, error) {
	if o.Pre != "" {
		if m.tokKind != BPETokenizer {
			return nil, fmt.Errorf("checkpoint %s: a pre-tokenizer was named (%q), but the tokenizer is SentencePiece, for which llama.cpp has none", m.dir, o.Pre)
		}
		if !KnownLlamaCppPre(o.Pre) {
			return nil, fmt.Errorf("%q is not a pre-tokenizer llama.cpp knows (see src/llama-vocab.cpp)", o.Pre)
		}
	}
	n := m.cfg.VocabSize
	var tc tokenizerConfig
	var raw map[string]json.RawMessage
	if _, err := m.readJSON(TokenizerConfigFile, &tc); err != nil {
		return nil, err
	}
	if _, err := m.readJSON(TokenizerConfigFile, &raw); err != nil {
		return nil, err
	}
	v := &Vocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1, Tokens: make([]string, n), Types: make([]TokenType, n)}
	for i := range n {
		v.Tokens[i], v.Types[i] = "[PAD"+strconv.Itoa(i)+"]", TokenUnused
	}
	var err error
	switch m.tokKind {
	case SentencePieceTokenizer:
		err = m.sentencePieceVocab(v, &tc)
	case HFSentencePieceTokenizer:
		err = m.llamaHfVocab(v, raw)
	default:
		err = m.bpeVocab(v, o.Pre)
	}
	if err != nil {
		return nil, err
	}
	if err := m.specialTokens(v, &tc, raw); err != nil {
		return nil, err
	}
	return v, nil
}

func (m *Model) sentencePieceVocab(v *Vocab, tc *tokenizerConfig) error {
	n := len(v.Tokens)
	v.Model, v.Pre = "llama", "default"
	v.Scores = make([]float32, n)
	for i := range v.Scores {
		v.Scores[i] = -10000
	}
	for i, p := range m.spm.Pieces {
		if i >= n {
			break // the converter ignores pieces beyond vocab_size
		}
		t := TokenNormal // sentencepiece has no IsUserDefined: the converter calls those normal
		switch p.Type {
		case TokenUnknown, TokenControl, TokenUnused, TokenByte:
			t = p.Type
		}
		v.Tokens[i], v.Scores[i], v.Types[i] = p.Piece, p.Score, t
	}
	var added map[string]int
	if _, err := m.readJSON("added_tokens.json", &added); err != nil {
		return err
	}
	keys := make([]string, 0, len(added))
	for k := range added {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if id := added[k]; id >= 0 && id < n {
			v.Tokens[id], v.Scores[id], v.Types[id] = k, -1000, TokenUserDefined
		}
	}
	ids := make([]int, 0, len(tc.AddedDecoder))
	for k := range tc.AddedDecoder {
		id, err := strconv.Atoi(k)
		if err != nil {
			return fmt.Errorf("checkpoint %s: added_tokens_decoder key %q is not a token id", filepath.Join(m.dir, TokenizerConfigFile), k)
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		e := tc.AddedDecoder[strconv.Itoa(id)]
		if id < 0 || id >= n {
			continue
		}
		tok, typ := e.Content, TokenControl
		if !e.Special && !looksSpecial(tok) {
			tok, typ = strings.ReplaceAll(tok, "▁", " "), TokenUserDefined
		}
		v.Tokens[id], v.Scores[id], v.Types[id] = tok, -1000, typ
	}
	return nil
}

func (m *Model) bpeVocab(v *Vocab, pre string) error {
	t := m.hftok
	n := len(v.Tokens)
	v.Model, v.Pre = "gpt2", pre
	if pre == "" {
		var err error
		if v.Pre, err = t.LlamaCppPre(); err != nil {
			return fmt.Errorf("checkpoint %s: %w", filepath.Join(m.dir, TokenizerJSONFile), err)
		}
	}
	v.Merges = slices.Clone(t.Merges)
	added := make(map[int]AddedToken, len(t.AddedTokens))
	for _, a := range t.AddedTokens {
		added[a.ID] = a
	}
	jsPath := filepath.Join(m.dir, TokenizerJSONFile)
	for tok, id := range t.Vocab {
		if id >= n {
			return fmt.Errorf("checkpoint %s: token %q has id %d, but config.json's vocab_size is %d", jsPath, tok, id, n)
		}
		if _, isAdded := added[id]; !isAdded {
			v.Tokens[id], v.Types[id] = tok, TokenNormal
		}
	}
	for id, a := range added {
		if id >= n {
			return fmt.Errorf("checkpoint %s: added token %q has id %d, but config.json's vocab_size is %d", jsPath, a.Content, id, n)
		}
		tok, typ := a.Content, TokenControl
		if !a.Special && !looksSpecial(tok) {
			tok, typ = strings.ReplaceAll(tok, "▁", " "), TokenUserDefined
		}
		v.Tokens[id], v.Types[id] = tok, typ
	}
	return nil
}

// specialTokens mirrors gguf-py's SpecialVocab: ids named in
// tokenizer_config.json ("bos_token": "<s>") are looked up among
// tokenizer.json's added tokens; config.json's *_token_id fill the rest
// (plain numbers only: gguf-py ignores lists such as Llama 3.1's eos list).
func (m *Model) specialTokens(v *Vocab, tc *tokenizerConfig, raw map[string]json.RawMessage) error {
	var added []AddedToken
	var post json.RawMessage
	if m.hftok != nil {
		added, post = m.hftok.AddedTokens, m.hftok.PostProcessor
	} else {
		var doc struct {
			AddedTokens   []AddedToken    `json:"added_tokens"`
			PostProcessor json.RawMessage `json:"post_processor"`
		}
		if _, err := m.readJSON(TokenizerJSONFile, &doc); err != nil {
			return err
		}
		added, post = doc.AddedTokens, doc.PostProcessor
	}
	limit := len(v.Tokens)
	set := func(dst *int, id int) {
		if *dst < 0 && id >= 0 && id < limit {
			*dst = id
		}
	}
	content := func(key string) string {
		var s string
		if json.Unmarshal(raw[key], &s) == nil {
			return s
		}
		var obj struct {
			Content string `json:"content"`
		}
		_ = json.Unmarshal(raw[key], &obj)
		return obj.Content
	}
	bosText, eosText := content("bos_token"), content("eos_token")
	v.AddBOS, v.AddEOS = templateAddsSpecials(post, bosText, eosText)
	if tc.AddBOS != nil {
		v.AddBOS = tc.AddBOS
	}
	if tc.AddEOS != nil {
		v.AddEOS = tc.AddEOS
	}
	if added != nil {
		for _, s := range []struct {
			dst *int
			key string
		}{{&v.BOS, "bos_token"}, {&v.EOS, "eos_token"}, {&v.UNK, "unk_token"}, {&v.PAD, "pad_token"}} {
			if c := content(s.key); c != "" {
				for _, a := range added {
					if a.Content == c {
						set(s.dst, a.ID)
						break
					}
				}
			}
		}
	}
	var cfg map[string]json.RawMessage
	if _, err := m.readJSON(ConfigFile, &cfg); err != nil {
		return err
	}
	for _, s := range []struct {
		dst *int
		key string
	}{{&v.BOS, "bos_token_id"}, {&v.EOS, "eos_token_id"}, {&v.UNK, "unk_token_id"}, {&v.PAD, "pad_token_id"}} {
		var id int
		if json.Unmarshal(cfg[s.key], &id) == nil && cfg[s.key] != nil {
			set(s.dst, id)
		}
	}
	var err error
	v.ChatTemplate, v.NamedChatTemplates, err = m.chatTemplates(tc)
	return err
}

// templateAddsSpecials reads a TemplateProcessing post-processor the crude
// way gguf-py does: a single-sequence template starting with the BOS token
// adds BOS, one ending with the EOS token adds EOS.
func templateAddsSpecials(post json.RawMessage, bos, eos string) (addBOS, addEOS *bool) {
	type proc struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		} `json:"single"`
		Processors []json.RawMessage `json:"processors"`
	}
	var top proc
	if len(post) == 0 || json.Unmarshal(post, &top) != nil {
		return nil, nil
	}
	procs := []proc{top}
	if top.Processors != nil {
		procs = procs[:0]
		for _, r := range top.Processors {
			var p proc
			if json.Unmarshal(r, &p) == nil {
				procs = append(procs, p)
			}
		}
	}
	for _, p := range procs {
		if p.Type != "TemplateProcessing" || len(p.Single) < 2 {
			continue
		}
		if st := p.Single[0].SpecialToken; st != nil {
			b := st.ID == bos
			addBOS = &b
		}
		if st := p.Single[len(p.Single)-1].SpecialToken; st != nil {
			e := st.ID == eos
			addEOS = &e
		}
	}
	return addBOS, addEOS
}
