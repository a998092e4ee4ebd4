package checkpoint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
)

func TestParseSentencePieceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "no pieces"},
		{"truncated length", []byte{0x0a, 0x05, 0x0a}, "claims 5 bytes"},
		{"bad varint", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "bad varint"},
		{"group wire type", []byte{0x0b}, "unsupported wire type 3"},
		{"piece without text", []byte{0x0a, 0x02, 0x18, 0x01}, "piece 0 has no text"},
		{"unknown type", []byte{0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x09}, "unknown type 9"},
		{"bad utf8", []byte{0x0a, 0x03, 0x0a, 0x01, 0xff}, "not valid UTF-8"},
		{"truncated score", []byte{0x0a, 0x05, 0x0a, 0x01, 'a', 0x15, 0x00}, "truncated fixed32"},
	} {
		if _, err := checkpoint.ParseSentencePiece(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseSentencePiece(f *testing.F) {
	f.Add([]byte{0x0a, 0x07, 0x0a, 0x01, 'a', 0x15, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkpoint.ParseSentencePiece(b) // must not panic
	})
}

func TestParseTokenizerJSONMergeFormats(t *testing.T) {
	doc := `{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2," ":3,"a ":4},"merges":[["a","b"],["a"," "]]},
		"added_tokens":[{"id":5,"content":"<|x|>","special":true}],"pre_tokenizer":null}`
	tok, err := checkpoint.ParseTokenizerJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Merges) != 2 || tok.Merges[0] != "a b" || tok.Merges[1] != "a \u0120" {
		t.Errorf("merges = %q", tok.Merges)
	}
	// No pre-tokenizer: not one llama.cpp knows.
	if pre, err := tok.LlamaCppPre(); pre != "" || err == nil {
		t.Errorf("LlamaCppPre() = %q, %v", pre, err)
	}
	for _, bad := range []string{`{"model":{"type":"BPE","vocab":{},"merges":[]}}`, `{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}`,
		`{"model":{"type":"BPE","vocab":{"a":0},"merges":["a"]}}`, `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b c"]}}`, `[`} {
		if _, err := checkpoint.ParseTokenizerJSON([]byte(bad)); err == nil {
			t.Errorf("ParseTokenizerJSON(%s) succeeded", bad)
		}
	}
}

func TestVocabSentencePiece(t *testing.T) {
	dir := tiny(t, tinyllama.Options{})
	// Padding: config.json's vocab_size wins over the tokenizer's size, as in
	// llama.cpp's converter (embeddings are often padded to a multiple of 64).
	m0, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := m0.Config().VocabSize
	m0.Close()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.Vocab(checkpoint.VocabOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Model != "llama" || v.Pre != "default" || len(v.Tokens) != n || len(v.Scores) != n || len(v.Types) != n {
		t.Fatalf("vocab: model %q pre %q, %d tokens", v.Model, v.Pre, len(v.Tokens))
	}
	// <unk> is UNKNOWN in tokenizer.model, but tokenizer_config.json lists it
	// in added_tokens_decoder as special, and the converter then makes it
	// CONTROL: so does cogumi.
	if v.Tokens[0] != "<unk>" || v.Types[0] != checkpoint.TokenControl || v.Types[1] != checkpoint.TokenControl ||
		v.Tokens[3] != "<0x00>" || v.Types[3] != checkpoint.TokenByte || v.Types[300] != checkpoint.TokenNormal {
		t.Errorf("tokens/types: %q %v", v.Tokens[:4], v.Types[:4])
	}
	if v.BOS != 1 || v.EOS != 2 || v.UNK != -1 || v.PAD != -1 || v.AddBOS == nil || !*v.AddBOS || v.AddEOS == nil || *v.AddEOS {
		t.Errorf("specials: bos %d eos %d unk %d pad %d addbos %v addeos %v", v.BOS, v.EOS, v.UNK, v.PAD, v.AddBOS, v.AddEOS)
	}
	if v.Merges != nil {
		t.Error("SentencePiece vocab has merges")
	}
}

func TestVocabBPE(t *testing.T) {
	dir := tiny(t, tinyllama.Options{Tokenizer: tinyllama.BPE})
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config().VocabSize
	tok := m.TokenizerJSON()
	m.Close()

	v := openVocab(t, dir)
	if v.Model != "gpt2" || v.Pre != "gpt-2" || len(v.Tokens) != n || v.Scores != nil || len(v.Merges) != len(tok.Merges) {
		t.Fatalf("vocab: model %q pre %q, %d tokens, %d merges", v.Model, v.Pre, len(v.Tokens), len(v.Merges))
	}
	if v.Tokens[n-2] != "<|begin_of_text|>" || v.Types[n-2] != checkpoint.TokenControl || v.Types[0] != checkpoint.TokenNormal {
		t.Errorf("added tokens: %q %v", v.Tokens[n-2:], v.Types[n-2:])
	}
	if v.BOS != n-2 || v.EOS != n-1 || v.AddBOS == nil || !*v.AddBOS {
		t.Errorf("specials: bos %d eos %d addbos %v", v.BOS, v.EOS, v.AddBOS)
	}

	// A non-special added token becomes USER_DEFINED, its ▁ a space.
	editJSON(t, filepath.Join(dir, "tokenizer.json"), func(doc map[string]any) {
		added := doc["added_tokens"].([]any)
		doc["added_tokens"] = append(added[:1], map[string]any{"id": n - 1, "content": "▁user", "special": false})
	})
	v = openVocab(t, dir)
	if v.Tokens[n-1] != " user" || v.Types[n-1] != checkpoint.TokenUserDefined {
		t.Errorf("user-defined token: %q %v", v.Tokens[n-1], v.Types[n-1])
	}
}

func TestVocabPadding(t *testing.T) {
	// Embeddings padded beyond the tokenizer: config.json's vocab_size wins,
	// and the converter fills [PADi] tokens of type UNUSED.
	for _, kind := range []tinyllama.Tokenizer{tinyllama.SentencePiece, tinyllama.BPE} {
		v := openVocab(t, tiny(t, tinyllama.Options{Tokenizer: kind, PadVocab: 4}))
		n := len(v.Tokens)
		if v.Tokens[n-1] != fmt.Sprintf("[PAD%d]", n-1) || v.Types[n-1] != checkpoint.TokenUnused || v.Types[n-5] == checkpoint.TokenUnused {
			t.Errorf("%s: last tokens %q, types %v", kind, v.Tokens[n-5:], v.Types[n-5:])
		}
		if kind == tinyllama.SentencePiece && v.Scores[n-1] != -10000 {
			t.Errorf("padding score %v", v.Scores[n-1])
		}
	}
}

func TestVocabWithoutTokenizerConfig(t *testing.T) {
	dir := tiny(t, tinyllama.Options{})
	os.Remove(filepath.Join(dir, "tokenizer_config.json"))
	v := openVocab(t, dir)
	if v.Types[0] != checkpoint.TokenUnknown || v.AddBOS != nil || v.BOS != 1 || v.EOS != 2 {
		t.Errorf("type of <unk> %v, add_bos %v, bos %d eos %d", v.Types[0], v.AddBOS, v.BOS, v.EOS)
	}
}

func openVocab(t *testing.T, dir string) *checkpoint.Vocab {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.Vocab(checkpoint.VocabOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVocabAddedTokensSentencePiece(t *testing.T) {
	dir := tiny(t, tinyllama.Options{})
	os.WriteFile(filepath.Join(dir, "added_tokens.json"), []byte(`{"<extra>": 300}`), 0o644)
	editJSON(t, filepath.Join(dir, "tokenizer_config.json"), func(c map[string]any) {
		c["added_tokens_decoder"].(map[string]any)["301"] = map[string]any{"content": "<|im_end|>", "special": false}
		c["chat_template"] = "{{ messages }}"
	})
	v := openVocab(t, dir)
	if v.Tokens[300] != "<extra>" || v.Types[300] != checkpoint.TokenUserDefined || v.Scores[300] != -1000 {
		t.Errorf("added_tokens.json: %q %v %v", v.Tokens[300], v.Types[300], v.Scores[300])
	}
	if v.Tokens[301] != "<|im_end|>" || v.Types[301] != checkpoint.TokenControl {
		t.Errorf("looks-special token: %q %v", v.Tokens[301], v.Types[301])
	}
	if v.ChatTemplate != "{{ messages }}" {
		t.Errorf("chat template %q", v.ChatTemplate)
	}
}
