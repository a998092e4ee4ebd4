package ggufconv_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/internal/tokref"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
)

// TestRealTokenizers builds small random-weight checkpoints around real
// tokenizers (their full vocabularies, a hidden size of 64), converts them,
// and has llama.cpp tokenise the fixed text with each GGUF: the ids must be
// Hugging Face's (the JavaScript port's), and llama.cpp must load the
// vocabulary without a warning.
func TestRealTokenizers(t *testing.T) {
	node, llamaDir := nodeLlama(t)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	refs, err := tokref.Dir(root)
	if err != nil {
		unavailable(t, "%v", err)
	}
	for _, tc := range []struct {
		name, pkg string
		overrides map[string]any
		model     string
		o         tinyllama.Options
	}{
		{"llama2", "llama2", nil, "llama", tinyllama.Options{}},
		{"llama2-metaspace", "llama2", tokref.MetaspaceOverride(), "llama", tinyllama.Options{}},
		{"llama3_1", "llama3_1", nil, "gpt2", tinyllama.Options{}},
		{"mistral", "llama2", nil, "llama", tinyllama.Options{Arch: tinyllama.Mistral}},
		// Qwen3-0.6B's shape in small: heads x head_dim (128) is not the
		// hidden size, and the embedding has 151,936 rows for the
		// tokenizer's 151,669 tokens: the rest become [PAD...] tokens.
		{"qwen3", "qwen3", nil, "gpt2", tinyllama.Options{Arch: tinyllama.Qwen3, HeadDim: 32, PadVocab: 151936 - 151669}},
		{"qwen2", "qwen3", nil, "gpt2", tinyllama.Options{Arch: tinyllama.Qwen2, PadVocab: 151936 - 151669}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokJSON, tokConfig := tokref.Files(refs, tc.pkg)
			if tc.overrides != nil {
				p := filepath.Join(t.TempDir(), "tokenizer.json")
				if err := tokref.ApplyOverrides(tokJSON, p, tc.overrides); err != nil {
					t.Fatal(err)
				}
				tokJSON = p
			}
			o := tc.o
			o.Hidden, o.Intermediate, o.TieEmbeddings = 64, 128, true
			o.TokenizerJSON, o.TokenizerConfig = tokJSON, tokConfig
			m := tiny(t, o)
			rep, f, path := convert(t, m, ggufconv.Options{Type: "Q8_0", Name: "real"})
			if got, err := gguf.Lookup[string](f, "tokenizer.ggml.model"); got != tc.model || err != nil {
				t.Errorf("tokenizer.ggml.model = %q, %v; want %q", got, err, tc.model)
			}
			if arch, _ := gguf.Lookup[string](f, "general.architecture"); arch != m.Config().Arch.GGUF {
				t.Errorf("general.architecture = %q; want %q", arch, m.Config().Arch.GGUF)
			}
			if tc.o.PadVocab > 0 {
				// The rows beyond the tokenizer are get_vocab_base's
				// [PAD<id>] tokens of type UNUSED (5).
				toks, _ := gguf.Lookup[[]string](f, "tokenizer.ggml.tokens")
				types, _ := gguf.Lookup[[]int32](f, "tokenizer.ggml.token_type")
				n := m.Config().VocabSize
				first := n - tc.o.PadVocab
				switch {
				case len(toks) != n || len(types) != n:
					t.Errorf("%d tokens, %d types; want %d", len(toks), len(types), n)
				case toks[first] != fmt.Sprintf("[PAD%d]", first) || types[first] != 5 || toks[n-1] != fmt.Sprintf("[PAD%d]", n-1) || types[first-1] == 5:
					t.Errorf("token %d %q type %d, token %d %q; token %d type %d", first, toks[first], types[first], n-1, toks[n-1], first-1, types[first-1])
				}
			}
			t.Logf("%s: %d bytes, vocabulary of %d", rep.File, rep.Size, m.Config().VocabSize)
			want, err := tokref.IDs(refs, tc.pkg, []string{tokref.Text}, true, tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			got := tokenizeWithLlamaCpp(t, node, llamaDir, path, tokref.Text)
			if !slices.Equal(got.IDs[0], want[0]) {
				t.Errorf("llama.cpp's ids\n%v\nHugging Face's\n%v", got.IDs[0], want[0])
			}
			if got.Texts[0] != tokref.Text {
				t.Errorf("llama.cpp detokenised its ids to %q", got.Texts[0])
			}
			warned := slices.DeleteFunc(got.Warnings, func(w string) bool {
				// Qwen's byte-level vocabulary has an ordinary token "</s>"
				// (128247), which llama.cpp's vocabulary loader takes for an
				// end-of-generation token and warns about, whoever
				// converted the model: its converter writes the token
				// NORMAL too (get_vocab_base).
				return tc.pkg == "qwen3" && strings.Contains(w, "control-looking token: 128247 '</s>' was not control-type")
			})
			if len(warned) > 0 {
				t.Errorf("llama.cpp warned: %q", warned)
			}
		})
	}
}

type tokenized struct {
	IDs      [][]int  `json:"ids"`
	Texts    []string `json:"texts"`
	Warnings []string `json:"warnings"`
}

// tokenizeWithLlamaCpp runs testdata/tokenize_gguf.mjs.
func tokenizeWithLlamaCpp(t *testing.T, node, llamaDir, path string, texts ...string) tokenized {
	t.Helper()
	in, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("testdata", "tokenize_gguf.mjs"), path)
	cmd.Env = append(os.Environ(), "COGUMI_NODE_LLAMA="+llamaDir)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tokenize_gguf.mjs %s: %v\n%s", filepath.Base(path), err, stderr.String())
	}
	var res tokenized
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("tokenize_gguf.mjs printed %q: %v", out, err)
	}
	return res
}

// TestUnknownPreTokenizerRefused: a byte-level tokenizer whose
// pre-tokenizer llama.cpp does not know fails the conversion, unless the
// user names the pre-tokenizer.
func TestUnknownPreTokenizerRefused(t *testing.T) {
	m := tiny(t, tinyllama.Options{Tokenizer: tinyllama.BPE})
	dir := m.Dir()
	p := filepath.Join(dir, "tokenizer.json")
	var doc map[string]any
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\p{N}{1,7}| ?\p{L}+|\s+`}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
	}}
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer changed.Close()
	_, err = ggufconv.Convert(t.Context(), changed, t.TempDir(), ggufconv.Options{Type: "F16"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`\\p{N}{1,7}| ?\\p{L}+|\\s+`)) {
		t.Fatalf("Convert: %v; want the pre-tokenizer refused, naming its pattern", err)
	}
	_, f, _ := convert(t, changed, ggufconv.Options{Type: "F16", TokenizerPre: "gpt-2"})
	if got, err := gguf.Lookup[string](f, "tokenizer.ggml.pre"); got != "gpt-2" || err != nil {
		t.Errorf("tokenizer.ggml.pre = %q, %v with TokenizerPre gpt-2", got, err)
	}
	if _, err := ggufconv.Convert(t.Context(), changed, t.TempDir(), ggufconv.Options{Type: "F16", TokenizerPre: "gpt-5"}); err == nil {
		t.Error("Convert accepted TokenizerPre gpt-5")
	}
}
