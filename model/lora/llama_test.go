package lora_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/safetensors"
)

// need skips (fails under CI=true) when a tool the end-to-end test needs is
// missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: scripts/test.sh installs it)", what)
	}
	t.Skipf("%s; skipping", what)
}

// repo returns the repository root.
func repo(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runCmd(t *testing.T, env []string, argv ...string) []byte {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s%s", filepath.Base(argv[1]), err, out, stderr)
	}
	return out
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type check struct {
	Tokens   []int       `json:"tokens"`
	Vocab    int         `json:"vocab"`
	Logprobs [][]float64 `json:"logprobs"`
}

func maxAbsDiff(t *testing.T, a, b check) float64 {
	t.Helper()
	if len(a.Logprobs) != len(b.Logprobs) || len(a.Logprobs) == 0 {
		t.Fatalf("%d vs %d positions", len(a.Logprobs), len(b.Logprobs))
	}
	var d float64
	for i := range a.Logprobs {
		if len(a.Logprobs[i]) != len(b.Logprobs[i]) {
			t.Fatalf("position %d: %d vs %d tokens", i, len(a.Logprobs[i]), len(b.Logprobs[i]))
		}
		for j := range a.Logprobs[i] {
			d = max(d, math.Abs(a.Logprobs[i][j]-b.Logprobs[i][j]))
		}
	}
	return d
}

// TestLlamaCppAdapterMatchesMerge is the end-to-end proof of the adapter
// format: a tiny Llama trained by examples/gpu/train.py, a LoRA trained on
// it by cogumi_lora.py, then llama.cpp (node-llama-cpp) evaluates a prompt
// with the F32 base GGUF plus adapter.gguf and with the F32 GGUF of the
// merge_lora checkpoint. Their next-token log-probabilities must agree to
// float32 rounding at every position, and differ clearly from the base's
// alone. A wrong tensor name, dim order, scale or Q/K row order breaks the
// agreement (TestGGUFAdapter pins each of them; this test shows llama.cpp
// reads them as meant).
func TestLlamaCppAdapterMatchesMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models")
	}
	python := "/usr/bin/python3"
	need(t, exec.Command(python, "-c", "import torch").Run() == nil, "python3 with torch is missing")
	node, err := exec.LookPath("node")
	need(t, err == nil, "node is missing")
	root := repo(t)
	nodeDir := os.Getenv("COGUMI_NODE_LLAMA")
	if nodeDir == "" {
		nodeDir = filepath.Join(root, "testdata", "llama")
	}
	_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "node-llama-cpp", "package.json"))
	need(t, err == nil, "node-llama-cpp is not installed under "+nodeDir)

	work := t.TempDir()
	pyEnv := []string{"PYTHONPATH=" + filepath.Join(root, "executor", "python"), "CUDA_VISIBLE_DEVICES="}
	baseDir, adDir := filepath.Join(work, "base"), filepath.Join(work, "adapter")
	writeJSON(t, filepath.Join(work, "train.json"), map[string]any{"steps": 30, "seed": 1})
	runCmd(t, append(pyEnv, "COGUMI_OUT="+baseDir, "COGUMI_PARAMS="+filepath.Join(work, "train.json")),
		python, filepath.Join(root, "examples", "gpu", "train.py"))

	writeJSON(t, filepath.Join(work, "lora.json"), map[string]any{
		"base_dir": baseDir, "base_label": "//models:tiny", "dataset": filepath.Join(root, "examples", "gpu", "data", "tiny.jsonl"),
		"rank": 8, "alpha": 16, "target_modules": lora.Modules(),
		"params": map[string]any{"steps": 30, "lr": 3e-3, "seed": 2},
	})
	start := time.Now()
	runCmd(t, append(pyEnv, "COGUMI_OUT="+adDir, "COGUMI_LORA_CONFIG="+filepath.Join(work, "lora.json")),
		python, filepath.Join(root, "executor", "python", "cogumi_lora.py"))
	var metrics struct {
		LossFirst    float64 `json:"loss_first"`
		LossLast     float64 `json:"loss_last"`
		TrainSeconds float64 `json:"train_seconds"`
		Examples     int     `json:"examples"`
	}
	b, err := os.ReadFile(filepath.Join(adDir, "metrics.json"))
	if err != nil || json.Unmarshal(b, &metrics) != nil || metrics.Examples == 0 {
		t.Fatalf("metrics.json: %s (%v)", b, err)
	}
	t.Logf("lora: %d examples, loss %.4f -> %.4f, %.1f s training (%.1f s with start-up)",
		metrics.Examples, metrics.LossFirst, metrics.LossLast, metrics.TrainSeconds, time.Since(start).Seconds())

	base, err := checkpoint.Open(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ad, err := lora.Open(adDir)
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	adGGUF := filepath.Join(adDir, lora.GGUFFile)
	if err := lora.WriteGGUF(ad, base.Config(), adGGUF, "tiny-lora", lora.Base{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	baseRep, err := ggufconv.Convert(ctx, base, filepath.Join(work, "base-gguf"), ggufconv.Options{Type: "F32", Name: "base"})
	if err != nil {
		t.Fatal(err)
	}
	mergedDir := filepath.Join(work, "merged")
	if _, err := lora.Merge(ctx, base, ad, mergedDir); err != nil {
		t.Fatal(err)
	}
	merged, err := checkpoint.Open(mergedDir)
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	mergedRep, err := ggufconv.Convert(ctx, merged, filepath.Join(work, "merged-gguf"), ggufconv.Options{Type: "F32", Name: "merged"})
	if err != nil {
		t.Fatal(err)
	}

	eval := func(model string, extra ...string) check {
		t.Helper()
		argv := append([]string{node, filepath.Join(root, "testdata", "llama", "lora_check.mjs"), model,
			"--prompt", "The yellow dog hides in the forest after the rain."}, extra...)
		var c check
		out := runCmd(t, []string{"COGUMI_NODE_LLAMA=" + nodeDir}, argv...)
		if err := json.Unmarshal(out, &c); err != nil {
			t.Fatalf("lora_check.mjs printed %.200q: %v", out, err)
		}
		return c
	}
	withAdapter := eval(filepath.Join(work, "base-gguf", baseRep.File), "--lora", adGGUF)
	mergedOut := eval(filepath.Join(work, "merged-gguf", mergedRep.File))
	baseOut := eval(filepath.Join(work, "base-gguf", baseRep.File))
	if withAdapter.Vocab != base.Config().VocabSize || len(withAdapter.Logprobs) != len(withAdapter.Tokens) {
		t.Fatalf("llama.cpp gave %d positions of %d tokens over %d tokens", len(withAdapter.Logprobs), withAdapter.Vocab, len(withAdapter.Tokens))
	}
	dAdapter := maxAbsDiff(t, withAdapter, mergedOut)
	dBase := maxAbsDiff(t, baseOut, mergedOut)
	fi, _ := os.Stat(adGGUF)
	si, _ := os.Stat(filepath.Join(adDir, lora.WeightsFile))
	t.Logf("adapter.gguf %d bytes, adapter_model.safetensors %d bytes; %d positions: max |logprob| difference adapter vs merged %.3g, base vs merged %.3g",
		fi.Size(), si.Size(), len(mergedOut.Logprobs), dAdapter, dBase)
	if dAdapter > 1e-3 {
		t.Errorf("llama.cpp with adapter.gguf differs from the merged model by %.3g in log-probability: the adapter is not what merge_lora merges", dAdapter)
	}
	if dBase < 0.05 || dBase < 100*dAdapter {
		t.Errorf("the adapter changes log-probabilities by only %.3g (adapter vs merged %.3g): the test proves nothing", dBase, dAdapter)
	}
}

// TestLlamaCppAdapterArchitectures: for Qwen2 (q/k/v biases) and Qwen3
// (q/k norms, heads x head_dim != hidden), llama.cpp running the base GGUF
// with adapter.gguf (general.architecture the base's, B's rows in Hugging
// Face's order: llama.cpp runs Qwen with NEOX RoPE) gives the
// log-probabilities of the merged model's GGUF. The bases are random
// tiny checkpoints and the adapter random pairs on every projection.
func TestLlamaCppAdapterArchitectures(t *testing.T) {
	node, err := exec.LookPath("node")
	need(t, err == nil, "node is missing")
	root := repo(t)
	nodeDir := os.Getenv("COGUMI_NODE_LLAMA")
	if nodeDir == "" {
		nodeDir = filepath.Join(root, "testdata", "llama")
	}
	_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "node-llama-cpp", "package.json"))
	need(t, err == nil, "node-llama-cpp is not installed under "+nodeDir)
	for _, o := range []tinyllama.Options{
		{Arch: tinyllama.Qwen2},
		{Arch: tinyllama.Qwen3, HeadDim: 128, TieEmbeddings: true},
	} {
		t.Run(string(o.Arch), func(t *testing.T) {
			work := t.TempDir()
			o.Seed, o.DType, o.Tokenizer = 1, safetensors.F32, tinyllama.BPE
			if err := tinyllama.Write(filepath.Join(work, "base"), o); err != nil {
				t.Fatal(err)
			}
			base, err := checkpoint.Open(filepath.Join(work, "base"))
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			ad, err := lora.Open(writeAdapter(t, peftConfig(4, 8, lora.Modules()), randomPairs(base, 4, lora.Modules(), 5)))
			if err != nil {
				t.Fatal(err)
			}
			defer ad.Close()
			adGGUF := filepath.Join(work, lora.GGUFFile)
			if err := lora.WriteGGUF(ad, base.Config(), adGGUF, "tiny-lora", lora.Base{}); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			baseRep, err := ggufconv.Convert(ctx, base, filepath.Join(work, "base-gguf"), ggufconv.Options{Type: "F32", Name: "base"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lora.Merge(ctx, base, ad, filepath.Join(work, "merged")); err != nil {
				t.Fatal(err)
			}
			merged, err := checkpoint.Open(filepath.Join(work, "merged"))
			if err != nil {
				t.Fatal(err)
			}
			defer merged.Close()
			mergedRep, err := ggufconv.Convert(ctx, merged, filepath.Join(work, "merged-gguf"), ggufconv.Options{Type: "F32", Name: "merged"})
			if err != nil {
				t.Fatal(err)
			}
			eval := func(model string, extra ...string) check {
				t.Helper()
				argv := append([]string{node, filepath.Join(root, "testdata", "llama", "lora_check.mjs"), model,
					"--prompt", "The yellow dog hides in the forest after the rain."}, extra...)
				var c check
				out := runCmd(t, []string{"COGUMI_NODE_LLAMA=" + nodeDir}, argv...)
				if err := json.Unmarshal(out, &c); err != nil {
					t.Fatalf("lora_check.mjs printed %.200q: %v", out, err)
				}
				return c
			}
			withAdapter := eval(filepath.Join(work, "base-gguf", baseRep.File), "--lora", adGGUF)
			mergedOut := eval(filepath.Join(work, "merged-gguf", mergedRep.File))
			baseOut := eval(filepath.Join(work, "base-gguf", baseRep.File))
			dAdapter, dBase := maxAbsDiff(t, withAdapter, mergedOut), maxAbsDiff(t, baseOut, mergedOut)
			t.Logf("%d positions: max |logprob| difference adapter vs merged %.3g, base vs merged %.3g", len(mergedOut.Logprobs), dAdapter, dBase)
			if dAdapter > 1e-3 {
				t.Errorf("llama.cpp with adapter.gguf differs from the merged model by %.3g in log-probability", dAdapter)
			}
			if dBase < 100*dAdapter || dBase < 1e-3 {
				t.Errorf("the adapter changes log-probabilities by only %.3g (adapter vs merged %.3g): the test proves nothing", dBase, dAdapter)
			}
		})
	}
}
