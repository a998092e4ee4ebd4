package checkpoint_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tokref"
	"github.com/cogumi/cogumi/model/checkpoint"
)

// refDir finds the reference tokenizers, skipping the test without them
// (failing under CI=true, where test.sh has installed them).
func refDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := tokref.Dir(filepath.Join(wd, "..", ".."))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true)", err)
		}
		t.Skipf("%v; skipping the comparison with the reference tokenizers", err)
	}
	return dir
}

// TestEncoderMatchesReference encodes the fixed text and llama.cpp's check
// text with cogumi's encoder and with the JavaScript port of Hugging Face
// tokenizers, over the real tokenizer.json files, special tokens included.
func TestEncoderMatchesReference(t *testing.T) {
	dir := refDir(t)
	texts := []string{tokref.Text, checkpoint.CheckText(), "", "a</s>b <|eot_id|> c<|im_end|>"}
	for _, tc := range []struct {
		name, pkg string
		overrides map[string]any
	}{
		{"llama2", "llama2", nil},
		{"llama2-metaspace", "llama2", tokref.MetaspaceOverride()},
		{"llama3_1", "llama3_1", nil},
		{"qwen3", "qwen3", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := readReference(t, dir, tc.pkg, tc.overrides)
			enc, err := checkpoint.NewEncoder(tok)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tokref.IDs(dir, tc.pkg, texts, true, tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			for i, text := range texts {
				if got := enc.Encode(text, true); !slices.Equal(got, want[i]) {
					t.Errorf("Encode(%.40q)\n got %v\nwant %v", text, got, want[i])
				}
			}
		})
	}
}

func readReference(t *testing.T, dir, pkg string, overrides map[string]any) *checkpoint.HFTokenizer {
	t.Helper()
	path, _ := tokref.Files(dir, pkg)
	if overrides != nil {
		p := filepath.Join(t.TempDir(), "tokenizer.json")
		if err := tokref.ApplyOverrides(path, p, overrides); err != nil {
			t.Fatal(err)
		}
		path = p
	}
	tok, err := checkpoint.ReadTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLlamaCppPreReal identifies the real byte-level tokenizers by their
// digest, as llama.cpp's converter does; Llama 2's family is
// SentencePiece-style and never hashed.
func TestLlamaCppPreReal(t *testing.T) {
	dir := refDir(t)
	for pkg, want := range map[string]string{"llama3_1": "llama-bpe", "qwen3": "qwen2"} {
		tok := readReference(t, dir, pkg, nil)
		if tok.SentencePieceStyle() {
			t.Errorf("%s: SentencePieceStyle() = true", pkg)
		}
		if got, err := tok.LlamaCppPre(); got != want || err != nil {
			t.Errorf("%s: LlamaCppPre() = %q, %v; want %q", pkg, got, err, want)
		}
	}
	if !readReference(t, dir, "llama2", nil).SentencePieceStyle() {
		t.Error("llama2: SentencePieceStyle() = false")
	}
}

// TestLlamaCppPreRefusesUnknown: a pre-tokenizer llama.cpp does not know
// is refused with its digest and its definition, and the way out.
func TestLlamaCppPreRefusesUnknown(t *testing.T) {
	doc := `{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"added_tokens":[],
		"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\d{1,5}|\\s+"},"behavior":"Isolated","invert":false},
		{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}}`
	tok, err := checkpoint.ParseTokenizerJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pre, err := tok.LlamaCppPre()
	var unknown *checkpoint.UnknownPreTokenizerError
	if !errors.As(err, &unknown) || pre != "" {
		t.Fatalf("LlamaCppPre() = %q, %v; want an UnknownPreTokenizerError", pre, err)
	}
	for _, want := range []string{`"Regex":"\\d{1,5}|\\s+"`, "digest of its token ids for llama.cpp's check text is " + unknown.Digest, `tokenizer_pre = "llama-bpe"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// A component cogumi cannot run is refused too, saying which.
	tok.PreTokenizer = []byte(`{"type":"Punctuation","behavior":"Isolated"}`)
	if _, err := tok.LlamaCppPre(); !errors.As(err, &unknown) || !strings.Contains(err.Error(), `"Punctuation" is not a pre-tokenizer cogumi implements`) {
		t.Errorf("LlamaCppPre() with Punctuation: %v", err)
	}
}
