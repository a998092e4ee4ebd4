package gguf_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
)

// nodeLlama returns the node binary and the directory holding
// node_modules/node-llama-cpp, or skips (fails under CI=true) when either
// is missing.
func nodeLlama(t *testing.T) (node, dir string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: run `npm ci` in testdata/llama or set COGUMI_NODE_LLAMA)", msg)
		}
		t.Skipf("%s; skipping the check with llama.cpp", msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found")
	}
	dir = os.Getenv("COGUMI_NODE_LLAMA")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", "testdata", "llama"))
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		missing("node-llama-cpp not installed under %s", dir)
	}
	return node, dir
}

// loadResult is what testdata/load_gguf.mjs prints.
type loadResult struct {
	Tokens    []int  `json:"tokens"`
	Generated []int  `json:"generated"`
	Text      string `json:"text"`
	Info      struct {
		Version        int    `json:"version"`
		Architecture   string `json:"architecture"`
		FileType       int    `json:"fileType"`
		TokenizerModel string `json:"tokenizerModel"`
		VocabSize      int    `json:"vocabSize"`
		TensorCount    int    `json:"tensorCount"`
		Tensors        []struct {
			Name string   `json:"name"`
			Type int      `json:"type"`
			Dims []uint64 `json:"dims"`
		} `json:"tensors"`
	} `json:"info"`
}

func runLoader(t *testing.T, path string, args ...string) loadResult {
	t.Helper()
	node, dir := nodeLlama(t)
	cmd := exec.Command(node, append([]string{filepath.Join("testdata", "load_gguf.mjs"), path}, args...)...)
	cmd.Env = append(os.Environ(), "COGUMI_NODE_LLAMA="+dir)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("load_gguf.mjs %s: %v\n%s", filepath.Base(path), err, stderr)
	}
	var res loadResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("load_gguf.mjs printed %q: %v", out, err)
	}
	return res
}

// tinyLlama describes the test model: the smallest Llama whose linear
// layers all have rows of a multiple of 256 (so k-quants apply).
const (
	nEmbd, nFF, nLayer, nHead, nHeadKV = 256, 512, 2, 4, 2
	headDim                            = nEmbd / nHead
)

// tinyVocab is a SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256
// byte tokens and a few words, with SentencePiece's token types.
func tinyVocab() (tokens []string, scores []float32, types []int32) {
	tokens = []string{"<unk>", "<s>", "</s>"}
	types = []int32{2, 3, 3}
	for b := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	for _, w := range []string{"▁", "▁Hello", "▁world", "e", "l", "o", "▁the"} {
		tokens = append(tokens, w)
		types = append(types, 1)
	}
	scores = make([]float32, len(tokens))
	for i := range scores {
		scores[i] = -float32(i)
	}
	return tokens, scores, types
}

// writeTinyLlama writes a random-weight Llama GGUF whose 2-D weights are
// stored as typ (output.weight as outType), norms as F32.
func writeTinyLlama(t *testing.T, path string, typ, outType quant.Type, fileType uint32) {
	t.Helper()
	tokens, scores, types := tinyVocab()
	nVocab := uint64(len(tokens))
	w, err := gguf.NewWriter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, kv := range []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"},
		{"general.name", "cogumi tiny llama"},
		{"general.file_type", fileType},
		{"general.quantization_version", uint32(2)},
		{"llama.context_length", uint32(256)},
		{"llama.embedding_length", uint32(nEmbd)},
		{"llama.block_count", uint32(nLayer)},
		{"llama.feed_forward_length", uint32(nFF)},
		{"llama.rope.dimension_count", uint32(headDim)},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.attention.head_count", uint32(nHead)},
		{"llama.attention.head_count_kv", uint32(nHeadKV)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.vocab_size", uint32(nVocab)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{"tokenizer.ggml.unknown_token_id", uint32(0)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	} {
		if err := w.SetKV(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	type tensor struct {
		name  string
		typ   quant.Type
		shape []uint64
	}
	ts := []tensor{{"token_embd.weight", typ, []uint64{nEmbd, nVocab}}}
	for l := range nLayer {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{p + "attn_norm.weight", quant.F32, []uint64{nEmbd}},
			tensor{p + "attn_q.weight", typ, []uint64{nEmbd, nHead * headDim}},
			tensor{p + "attn_k.weight", typ, []uint64{nEmbd, nHeadKV * headDim}},
			tensor{p + "attn_v.weight", typ, []uint64{nEmbd, nHeadKV * headDim}},
			tensor{p + "attn_output.weight", typ, []uint64{nHead * headDim, nEmbd}},
			tensor{p + "ffn_norm.weight", quant.F32, []uint64{nEmbd}},
			tensor{p + "ffn_gate.weight", typ, []uint64{nEmbd, nFF}},
			tensor{p + "ffn_up.weight", typ, []uint64{nEmbd, nFF}},
			tensor{p + "ffn_down.weight", typ, []uint64{nFF, nEmbd}},
		)
	}
	ts = append(ts, tensor{"output_norm.weight", quant.F32, []uint64{nEmbd}}, tensor{"output.weight", outType, []uint64{nEmbd, nVocab}})
	for _, x := range ts {
		if err := w.AddTensor(x.name, x.typ, x.shape); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, x := range ts {
		rowLen, rows := int(x.shape[0]), 1
		for _, d := range x.shape[1:] {
			rows *= int(d)
		}
		src := make([]float32, rowLen*rows)
		for i := range src {
			if len(x.shape) == 1 {
				src[i] = 1 // RMS norm weights
			} else {
				src[i] = float32(rng.NormFloat64() * 0.05)
			}
		}
		// Row by row through TensorWriter, as a converter streams a tensor
		// too large to hold.
		tw, err := w.TensorWriter(x.name)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]byte, quant.RowSize(x.typ, rowLen))
		for r := range rows {
			if err := quant.Quantize(x.typ, row, src[r*rowLen:(r+1)*rowLen]); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(row); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLlamaCppLoadsTinyLlama builds a random-weight Llama in each storage
// type and has llama.cpp (node-llama-cpp) load it, tokenize a prompt and
// generate: this checks the writer, the metadata keys, the tensor names and
// shapes, and that llama.cpp accepts our quantised blocks.
func TestLlamaCppLoadsTinyLlama(t *testing.T) {
	nodeLlama(t)
	for _, tc := range []struct {
		name         string
		typ, outType quant.Type
		fileType     uint32
	}{
		{"F32", quant.F32, quant.F32, 0},
		{"F16", quant.F16, quant.F16, 1},
		{"BF16", quant.BF16, quant.BF16, 32},
		{"Q8_0", quant.Q8_0, quant.Q8_0, 7},
		{"Q4_0", quant.Q4_0, quant.Q4_0, 2},
		{"Q4_K_M", quant.Q4_K, quant.Q6_K, 15},
		{"Q5_K", quant.Q5_K, quant.Q5_K, 17},
		{"Q4_1", quant.Q4_1, quant.Q5_0, 3},
		{"Q5_1", quant.Q5_1, quant.Q5_1, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tiny-"+tc.name+".gguf")
			writeTinyLlama(t, path, tc.typ, tc.outType, tc.fileType)
			res := runLoader(t, path, "--prompt", "Hello world", "--tokens", "4")
			// <s>, then SentencePiece with byte fallback: "▁" and "e", "l", "o"
			// are pieces, the other letters byte tokens (3 + byte value).
			if want := []int{1, 259, 3 + 'H', 262, 263, 263, 264, 259, 3 + 'w', 264, 3 + 'r', 263, 3 + 'd'}; fmt.Sprint(res.Tokens) != fmt.Sprint(want) {
				t.Errorf("prompt tokens %v, want %v", res.Tokens, want)
			}
			if len(res.Generated) != 4 {
				t.Errorf("generated %v, want 4 tokens", res.Generated)
			}
			tokens, _, _ := tinyVocab()
			if res.Info.Architecture != "llama" || res.Info.TokenizerModel != "llama" || res.Info.VocabSize != len(tokens) ||
				res.Info.TensorCount != 3+9*nLayer || res.Info.FileType != int(tc.fileType) {
				t.Errorf("llama.cpp read the metadata as %+v", res.Info)
			}
			for _, ti := range res.Info.Tensors {
				if ti.Name == "output.weight" && ti.Type != int(tc.outType) {
					t.Errorf("output.weight has type %d, want %d", ti.Type, tc.outType)
				}
			}
		})
	}
}

// TestNodeReadsSample has node-llama-cpp's own GGUF parser (JavaScript,
// independent of ggml's) read a file with every metadata type and several
// tensor types, and compares its tensor table with ours.
func TestNodeReadsSample(t *testing.T) {
	nodeLlama(t)
	for _, alignment := range []int{0, 64} {
		path := filepath.Join(t.TempDir(), "sample.gguf")
		writeSample(t, path, alignment, false)
		res := runLoader(t, path, "--info")
		want := sampleTensors(t)
		if res.Info.Version != 3 || len(res.Info.Tensors) != len(want) {
			t.Fatalf("node read %+v", res.Info)
		}
		for i, ti := range res.Info.Tensors {
			if ti.Name != want[i].name || ti.Type != int(want[i].typ) || fmt.Sprint(ti.Dims) != fmt.Sprint(want[i].shape) {
				t.Errorf("tensor %d: node read %+v, want %s %v %v", i, ti, want[i].name, want[i].typ, want[i].shape)
			}
		}
	}
}
