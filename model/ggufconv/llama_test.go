package ggufconv_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/safetensors"
)

// llamaQuantizer builds testdata/llamaquant.c, which runs llama.cpp's own
// quantiser (llama_model_quantize, the function behind llama-quantize)
// from node-llama-cpp's libllama, and returns the command and the library.
func llamaQuantizer(t *testing.T) (bin, lib string) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		unavailable(t, "the reference library is node-llama-cpp's linux-x64 build, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := filepath.Glob(filepath.Join(root, llamaBins, "libllama.*so")) // not libllama-common.so
	if len(libs) != 1 {
		unavailable(t, "libllama.*so not found under %s", filepath.Join(root, llamaBins))
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		unavailable(t, "gcc not found")
	}
	bin = filepath.Join(t.TempDir(), "llamaquant")
	out, err := exec.Command(gcc, "-O2", "-o", bin, filepath.Join("testdata", "llamaquant.c"), "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("building testdata/llamaquant.c: %v\n%s", err, out)
	}
	return bin, libs[0]
}

// TestLlamaQuantizeAgrees has llama.cpp quantise cogumi's F32 file of a
// checkpoint to each file type and compares the result with cogumi's own
// file of that type, byte for byte: the same per-tensor types (the mixes,
// the output tensor, tied embeddings, the fallbacks), the same blocks, the
// same metadata and layout.
func TestLlamaQuantizeAgrees(t *testing.T) {
	bin, lib := llamaQuantizer(t)
	for _, tc := range []struct {
		name string
		o    tinyllama.Options
	}{
		{"8-layers", tinyllama.Options{Layers: 8, DType: safetensors.BF16}},
		{"rows-320", tinyllama.Options{Hidden: 320, Intermediate: 640, DType: safetensors.F16}},
		{"tied-bpe", tinyllama.Options{TieEmbeddings: true, Tokenizer: tinyllama.BPE}},
		// q, k and v biases (qwen2); per-head norms and heads x head_dim
		// twice the hidden size, tied embeddings (qwen3).
		{"qwen2", tinyllama.Options{Arch: tinyllama.Qwen2, Tokenizer: tinyllama.BPE}},
		{"qwen3-tied", tinyllama.Options{Arch: tinyllama.Qwen3, HeadDim: 128, TieEmbeddings: true, Tokenizer: tinyllama.BPE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tiny(t, tc.o)
			_, _, f32 := convert(t, m, ggufconv.Options{Type: "F32", Name: "tiny"})
			for _, q := range []struct {
				typ   string
				ftype int
				pure  bool
			}{
				{"F16", 1, false}, {"BF16", 32, false}, {"Q8_0", 7, false}, {"Q4_0", 2, false},
				{"Q4_K_S", 14, false}, {"Q4_K_M", 15, false}, {"Q4_K_M", 15, true},
			} {
				name := q.typ
				if q.pure {
					name += "-pure"
				}
				t.Run(name, func(t *testing.T) {
					_, ours, path := convert(t, m, ggufconv.Options{Type: q.typ, Pure: q.pure, Name: "tiny"})
					ref := filepath.Join(t.TempDir(), "llama.gguf")
					cmd := exec.Command(bin, lib, f32, ref, strconv.Itoa(q.ftype), map[bool]string{false: "0", true: "1"}[q.pure], "2")
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("llama_model_quantize: %v\n%s", err, out)
					}
					theirs, err := gguf.Open(ref)
					if err != nil {
						t.Fatal(err)
					}
					defer theirs.Close()
					if len(theirs.Tensors) != len(ours.Tensors) {
						t.Fatalf("llama.cpp wrote %d tensors, cogumi %d", len(theirs.Tensors), len(ours.Tensors))
					}
					for i, ti := range theirs.Tensors {
						mine := ours.Tensors[i]
						if ti.Name != mine.Name || ti.Type != mine.Type || !slices.Equal(ti.Shape, mine.Shape) {
							t.Errorf("tensor %d: llama.cpp %s %s %v, cogumi %s %s %v", i, ti.Name, ti.Type, ti.Shape, mine.Name, mine.Type, mine.Shape)
							continue
						}
						a, _ := theirs.TensorData(ti.Name)
						b, _ := ours.TensorData(ti.Name)
						if !bytes.Equal(a, b) {
							t.Errorf("%s (%s): data differs from llama.cpp's", ti.Name, ti.Type)
						}
					}
					a, _ := os.ReadFile(ref)
					b, _ := os.ReadFile(path)
					if !bytes.Equal(a, b) {
						t.Errorf("files differ (%d bytes from llama.cpp, %d from cogumi)", len(a), len(b))
					}
				})
			}
		})
	}
}

// nodeLlama returns the node binary and the directory holding
// node_modules/node-llama-cpp, or skips (fails under CI=true).
func nodeLlama(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node not found")
	}
	dir = os.Getenv("COGUMI_NODE_LLAMA")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "testdata", "llama")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		unavailable(t, "node-llama-cpp not installed under %s", dir)
	}
	return node, dir
}

// loaded is what model/gguf/testdata/load_gguf.mjs prints.
type loaded struct {
	Tokens    []int `json:"tokens"`
	Generated []int `json:"generated"`
	Info      struct {
		Architecture   string `json:"architecture"`
		FileType       int    `json:"fileType"`
		TokenizerModel string `json:"tokenizerModel"`
		VocabSize      int    `json:"vocabSize"`
		TensorCount    int    `json:"tensorCount"`
	} `json:"info"`
}

// loadWithLlamaCpp has llama.cpp (node-llama-cpp) load a GGUF, tokenize a
// prompt and generate 4 tokens.
func loadWithLlamaCpp(t *testing.T, path string) loaded {
	t.Helper()
	node, dir := nodeLlama(t)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(root, "model", "gguf", "testdata", "load_gguf.mjs"), path, "--prompt", "Hello world", "--tokens", "4")
	cmd.Env = append(os.Environ(), "COGUMI_NODE_LLAMA="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("load_gguf.mjs %s: %v\n%s", filepath.Base(path), err, stderr.String())
	}
	var res loaded
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("load_gguf.mjs printed %q: %v", out, err)
	}
	t.Logf("%s: prompt %v, generated %v", filepath.Base(path), res.Tokens, res.Generated)
	if len(res.Generated) != 4 {
		t.Errorf("generated %v, want 4 tokens", res.Generated)
	}
	return res
}

// TestLlamaCppLoads converts SentencePiece and BPE checkpoints to F32, F16,
// Q8_0, Q4_0 and Q4_K_M and has llama.cpp (node-llama-cpp) load each file,
// tokenize a prompt and generate a few tokens; also a Llama 3.1-style
// model with rope_freqs.weight.
func TestLlamaCppLoads(t *testing.T) {
	nodeLlama(t)
	for _, tok := range []tinyllama.Tokenizer{tinyllama.SentencePiece, tinyllama.BPE} {
		m := tiny(t, tinyllama.Options{Tokenizer: tok, DType: safetensors.BF16})
		vocab, err := m.Vocab(checkpoint.VocabOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var prompt []int
		for _, typ := range []string{"F32", "F16", "Q8_0", "Q4_0", "Q4_K_M"} {
			t.Run(string(tok)+"-"+typ, func(t *testing.T) {
				rep, f, path := convert(t, m, ggufconv.Options{Type: typ, Name: "tiny"})
				res := loadWithLlamaCpp(t, path)
				if len(res.Tokens) < 2 || res.Tokens[0] != vocab.BOS {
					t.Errorf("prompt tokenized to %v; want BOS %d first and the words after", res.Tokens, vocab.BOS)
				}
				if prompt == nil {
					prompt = res.Tokens
				} else if fmt.Sprint(prompt) != fmt.Sprint(res.Tokens) {
					t.Errorf("prompt tokens %v, but %v with the F32 file", res.Tokens, prompt)
				}
				if res.Info.Architecture != "llama" || res.Info.TokenizerModel != vocab.Model || res.Info.VocabSize != len(vocab.Tokens) ||
					res.Info.TensorCount != len(f.Tensors) || res.Info.FileType != int(rep.FileType) {
					t.Errorf("llama.cpp read the metadata as %+v", res.Info)
				}
			})
		}
	}
	t.Run("llama3-rope", func(t *testing.T) {
		m := tinyWithRope(t, 500000, map[string]any{
			"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
			"original_max_position_embeddings": 64,
		})
		_, _, path := convert(t, m, ggufconv.Options{Type: "Q4_K_M"})
		loadWithLlamaCpp(t, path)
	})
}
