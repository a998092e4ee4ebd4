package ggufconv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/imatrix"
	"github.com/cogumi/cogumi/model/safetensors"
)

// llamaQuantizer builds testdata/llamaquant.cpp, which runs llama.cpp's own
// quantiser (llama_model_quantize, the function behind llama-quantize, with
// llama-quantize's handling of --imatrix and --tensor-type around it) from
// node-llama-cpp's libllama, and returns the command.
func llamaQuantizer(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		unavailable(t, "the reference library is node-llama-cpp's linux-x64 build, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins := filepath.Join(root, llamaBins)
	libs, _ := filepath.Glob(filepath.Join(bins, "libllama.*so")) // not libllama-common.so
	if len(libs) != 1 {
		unavailable(t, "libllama.*so not found under %s", bins)
	}
	gxx, err := exec.LookPath("g++")
	if err != nil {
		unavailable(t, "g++ not found")
	}
	bin := filepath.Join(t.TempDir(), "llamaquant")
	out, err := exec.Command(gxx, "-std=c++17", "-O1", "-o", bin, filepath.Join("testdata", "llamaquant.cpp"),
		filepath.Join(bins, "libllama-common.so"), libs[0], filepath.Join(bins, "libggml-base.so"), "-Wl,-rpath,"+bins).CombinedOutput()
	if err != nil {
		t.Fatalf("building testdata/llamaquant.cpp: %v\n%s", err, out)
	}
	return bin
}

// quantCase is one file llama.cpp and cogumi both make: a file type
// (llama_ftype's number for llama.cpp, its name for cogumi) and the
// llama-quantize options, which the test turns into ggufconv.Options and
// llamaquant's arguments.
type quantCase struct {
	typ       string
	ftype     int
	pure      bool
	imatrix   bool
	full      bool        // the imatrix has an entry for every tensor (imatrix-full.gguf)
	overrides [][2]string // --tensor-type PATTERN=TYPE, in order
	tokenEmbd string      // --token-embedding-type
	output    string      // --output-tensor-type
}

func (q quantCase) String() string {
	s := q.typ
	if q.pure {
		s += "-pure"
	}
	if q.imatrix {
		s += "-imatrix"
	}
	if q.full {
		s += "-full"
	}
	if len(q.overrides) > 0 {
		s += "-overrides"
	}
	if q.tokenEmbd != "" {
		s += "-embd_" + q.tokenEmbd
	}
	if q.output != "" {
		s += "-output_" + q.output
	}
	return s
}

// args are llamaquant's options for q.
func (q quantCase) args() []string {
	var a []string
	if q.pure {
		a = append(a, "--pure")
	}
	if q.imatrix {
		a = append(a, "--imatrix", q.imatrixFile())
	}
	for _, o := range q.overrides {
		a = append(a, "--tensor-type", o[0]+"="+o[1])
	}
	if q.tokenEmbd != "" {
		a = append(a, "--token-embedding-type", q.tokenEmbd)
	}
	if q.output != "" {
		a = append(a, "--output-tensor-type", q.output)
	}
	return a
}

// imatrixFile is the importance matrix q quantises with: imatrix.gguf,
// which lacks blk.0.ffn_down.weight, or imatrix-full.gguf.
func (q quantCase) imatrixFile() string {
	if q.full {
		return "imatrix-full.gguf"
	}
	return "imatrix.gguf"
}

// options are ggufconv's options for q, with im or full, the importance
// matrices of imatrix.gguf and imatrix-full.gguf.
func (q quantCase) options(im, full *imatrix.Matrix) ggufconv.Options {
	o := ggufconv.Options{Type: q.typ, Pure: q.pure, Name: "tiny", TokenEmbeddingType: q.tokenEmbd, OutputTensorType: q.output}
	if q.imatrix {
		o.Imatrix, o.ImatrixFile = im, q.imatrixFile()
		if q.full {
			o.Imatrix = full
		}
	}
	for _, ov := range q.overrides {
		o.TensorTypes = append(o.TensorTypes, ggufconv.TensorType{Pattern: ov[0], Type: ov[1]})
	}
	return o
}

// kquants are the K-quant mixes with their llama_ftype; Q2_K_S needs an
// importance matrix.
var kquants = []quantCase{
	{typ: "Q2_K", ftype: 10}, {typ: "Q3_K_S", ftype: 11}, {typ: "Q3_K_M", ftype: 12}, {typ: "Q3_K_L", ftype: 13},
	{typ: "Q4_K_S", ftype: 14}, {typ: "Q4_K_M", ftype: 15}, {typ: "Q5_K_S", ftype: 16}, {typ: "Q5_K_M", ftype: 17},
	{typ: "Q6_K", ftype: 18},
}

// iq picks i-quant mixes with their llama_ftype. IQ4_XS, IQ4_NL, IQ3_M and
// IQ3_S are written without an importance matrix too; the others have
// tensors that need one (IQ3_XS and IQ3_XXS on attn_q and attn_k). With
// an imatrix each takes the complete one: IQ3_XXS and, below 8 layers,
// the IQ2 mixes put blk.0.ffn_down in a type that needs its entry.
func iq(imatrix bool, typs ...string) []quantCase {
	ftypes := map[string]int{"IQ4_XS": 30, "IQ4_NL": 25, "IQ3_M": 27, "IQ3_S": 26, "IQ3_XS": 22,
		"IQ3_XXS": 23, "IQ2_M": 29, "IQ2_S": 28, "IQ2_XS": 20, "IQ2_XXS": 19}
	var out []quantCase
	for _, typ := range typs {
		out = append(out, quantCase{typ: typ, ftype: ftypes[typ], imatrix: imatrix, full: imatrix})
	}
	return out
}

// TestLlamaQuantizeAgrees has llama.cpp quantise cogumi's F32 file of a
// checkpoint to each file type, as llama-quantize would with the same
// options (importance matrix, overrides, embedding and output types), and
// compares the result with cogumi's own file, byte for byte: the same
// per-tensor types (the mixes, the output tensor, tied embeddings, the
// fallbacks, the overrides), the same blocks, the same metadata and layout.
func TestLlamaQuantizeAgrees(t *testing.T) {
	bin := llamaQuantizer(t)
	float := []quantCase{{typ: "F16", ftype: 1}, {typ: "BF16", ftype: 32}, {typ: "Q8_0", ftype: 7}, {typ: "Q4_0", ftype: 2}}
	imatrixed := func(typs ...string) []quantCase {
		var out []quantCase
		for _, q := range append(kquants, quantCase{typ: "Q2_K_S", ftype: 21}, quantCase{typ: "Q4_0", ftype: 2}) {
			if slices.Contains(typs, q.typ) {
				q.imatrix = true
				out = append(out, q)
			}
		}
		return out
	}
	overrides := []quantCase{
		{typ: "Q4_K_M", ftype: 15, overrides: [][2]string{{"blk\\.1\\.attn_v", "Q8_0"}, {"ATTN_V", "Q5_K"}, {"ffn_(up|gate)", "q3_k"}, {"token_embd", "F16"}}},
		{typ: "Q3_K_M", ftype: 12, tokenEmbd: "Q8_0", output: "Q4_K"},
		{typ: "Q2_K_S", ftype: 21, imatrix: true, overrides: [][2]string{{"attn_output", "Q6_K"}, {"^blk\\.[0-9]+\\.ffn_down", "Q4_0"}}, output: "Q5_K"},
		{typ: "Q5_K_M", ftype: 17, pure: true, overrides: [][2]string{{"ffn_down", "Q8_0"}}, tokenEmbd: "Q6_K"},
		{typ: "F16", ftype: 1, overrides: [][2]string{{"attn", "Q8_0"}}, tokenEmbd: "Q4_K", output: "Q8_0"},
	}
	// The i-quant mixes (iq): each file type with an importance matrix
	// and without one where llama-quantize allows it, spread over the
	// checkpoints so that each rule meets a tensor it changes (attn_v with
	// 4 query heads, the n/8 ffn_down layers, IQ3_XS's middle ffn_gate and
	// ffn_up, the IQ4_NL fallback of 320-wide rows, tied embeddings in
	// Q5_K, each architecture) while the slow 2- and 3-bit quantisers run
	// on 2- and 8-layer models only.
	for _, tc := range []struct {
		name  string
		o     tinyllama.Options
		cases []quantCase
	}{
		// The mixes whose choices depend on the layer count and the GQA
		// ratio (use_more_bits, n/8 and n/16 of the layers, attn_v of
		// Q2_K) on a Llama of 16 layers whose attn_v serves 4 query heads
		// each, and the overrides; every mix on the small checkpoints,
		// and each with an importance matrix on one of them.
		{"16-layers-gqa4", tinyllama.Options{Layers: 16, Heads: 8, KVHeads: 2, Intermediate: 256, DType: safetensors.BF16},
			slices.Concat([]quantCase{kquants[0], kquants[2], kquants[4], kquants[5], kquants[7]}, imatrixed("Q2_K_S"), overrides)},
		// n_gqa 2: Q2_K's attn_v is Q3_K; n/8 = 1 ffn_down of Q4_1 in Q4_0
		// with an importance matrix.
		{"8-layers", tinyllama.Options{Layers: 8, Intermediate: 256, DType: safetensors.BF16},
			slices.Concat(float, []quantCase{kquants[0], kquants[2], kquants[4], {typ: "Q4_K_M", ftype: 15, pure: true}},
				imatrixed("Q4_0", "Q3_K_L", "Q4_K_S", "Q6_K"), iq(false, "IQ4_NL", "IQ3_M"), iq(true, "IQ3_XS", "IQ2_M"))},
		{"rows-320", tinyllama.Options{Hidden: 320, Intermediate: 640, DType: safetensors.F16},
			slices.Concat(float, kquants, imatrixed("Q2_K", "Q3_K_S", "Q3_K_M"), iq(false, "IQ4_XS"), iq(true, "IQ3_XXS", "IQ2_XS"))},
		{"tied-bpe", tinyllama.Options{TieEmbeddings: true, Tokenizer: tinyllama.BPE},
			[]quantCase{{typ: "Q4_K_M", ftype: 15}, {typ: "Q2_K", ftype: 10, imatrix: true}, {typ: "Q3_K_L", ftype: 13, output: "Q5_K"}, {typ: "Q6_K", ftype: 18, tokenEmbd: "Q8_0", output: "Q4_K"},
				iq(true, "IQ2_S")[0], iq(false, "IQ3_M")[0], {typ: "IQ4_XS", ftype: 30, overrides: [][2]string{{"ffn_down", "IQ3_S"}}, tokenEmbd: "IQ4_NL"}}},
		// Mistral is written as a llama model; 4 query heads per attn_v.
		{"mistral-gqa4", tinyllama.Options{Arch: tinyllama.Mistral, Heads: 8, KVHeads: 2},
			slices.Concat([]quantCase{{typ: "Q3_K_M", ftype: 12}, {typ: "Q2_K", ftype: 10, imatrix: true, overrides: [][2]string{{"attn_q", "Q4_0"}}}},
				iq(false, "IQ4_XS", "IQ3_S"), iq(true, "IQ3_XXS", "IQ2_XXS"))},
		// q, k and v biases (qwen2); per-head norms and heads x head_dim
		// twice the hidden size, tied embeddings (qwen3).
		{"qwen2", tinyllama.Options{Arch: tinyllama.Qwen2, Tokenizer: tinyllama.BPE},
			slices.Concat(float[2:], kquants, imatrixed("Q3_K_M"), iq(true, "IQ4_XS", "IQ3_S"))},
		{"qwen3-tied", tinyllama.Options{Arch: tinyllama.Qwen3, HeadDim: 128, TieEmbeddings: true, Tokenizer: tinyllama.BPE},
			slices.Concat(float[2:], kquants, imatrixed("Q5_K_M"), iq(true, "IQ3_M"), iq(false, "IQ4_NL"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tiny(t, tc.o)
			_, f32file, f32 := convert(t, m, ggufconv.Options{Type: "F32", Name: "tiny"})
			dir := t.TempDir()
			im := writeImatrix(t, f32file, filepath.Join(dir, "imatrix.gguf"), false)
			full := writeImatrix(t, f32file, filepath.Join(dir, "imatrix-full.gguf"), true)
			for _, q := range tc.cases {
				t.Run(q.String(), func(t *testing.T) {
					ref := filepath.Join(t.TempDir(), "llama.gguf")
					cmd := exec.Command(bin, append(q.args(), f32, ref, strconv.Itoa(q.ftype), "2")...)
					cmd.Dir = dir
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("llama_model_quantize: %v\n%s", err, out)
					}
					_, ours, path := convert(t, m, q.options(im, full))
					compareFiles(t, ref, path, ours)
				})
			}
		})
	}
}

// compareFiles compares llama.cpp's file ref with cogumi's file path
// (opened as ours), tensor by tensor and then whole.
func compareFiles(t *testing.T, ref, path string, ours *gguf.File) {
	t.Helper()
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
}

// writeImatrix writes an importance matrix for the 2-D weights of an F32
// GGUF to path, as llama-imatrix's files look (sums of squares of a few
// hundred tokens per column, a token count per entry), with what the
// loaders must handle: no entry for token_embd.weight (llama-imatrix never
// has one) and for blk.0.ffn_down.weight, an entry of a zero count
// (blk.0.attn_k.weight: weights of 1) and one for a tensor the model
// lacks. full gives blk.0.ffn_down.weight an entry too. It returns the
// matrix as model/imatrix reads it back.
func writeImatrix(t *testing.T, f *gguf.File, path string, full bool) *imatrix.Matrix {
	t.Helper()
	r := rand.New(rand.NewPCG(7, uint64(len(f.Tensors))))
	m := imatrix.Matrix{Datasets: []string{"//data:calib"}, ChunkCount: 10, ChunkSize: 64}
	for _, ti := range f.Tensors {
		if len(ti.Shape) != 2 || ti.Name == "token_embd.weight" || (ti.Name == "blk.0.ffn_down.weight" && !full) {
			continue
		}
		count := float32(640)
		if ti.Name == "blk.0.attn_k.weight" {
			count = 0
		}
		sums := make([]float32, ti.Shape[0])
		for i := range sums {
			// Columns of very different importance, as real activations have.
			sums[i] = float32(r.ExpFloat64()*r.ExpFloat64()) * 640
		}
		m.Entries = append(m.Entries, imatrix.Entry{Name: ti.Name, Sums: sums, Counts: []float32{count}})
	}
	m.Entries = append(m.Entries, imatrix.Entry{Name: "blk.99.attn_q.weight", Sums: []float32{1, 2}, Counts: []float32{3}})
	if err := imatrix.Write(path, m); err != nil {
		t.Fatal(err)
	}
	back, err := imatrix.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return &back
}

// TestQ2KSNeedsImatrix: without an importance matrix, llama-quantize
// refuses Q2_K_S and the i-quant mixes with tensors in IQ3_XXS or a 2-bit
// i-quant, and so does cogumi, naming the first such tensor.
func TestQ2KSNeedsImatrix(t *testing.T) {
	bin := llamaQuantizer(t)
	m := tiny(t, tinyllama.Options{})
	_, _, f32 := convert(t, m, ggufconv.Options{Type: "F32", Name: "tiny"})
	for _, tc := range []struct {
		typ, ftype, tensor, as string
	}{
		{"Q2_K_S", "21", "blk.0.attn_k.weight", "Q2_K"},
		{"IQ2_XS", "20", "blk.0.attn_k.weight", "IQ2_XS"},
		{"IQ3_XS", "22", "blk.0.attn_k.weight", "IQ3_XXS"},
		{"IQ3_XXS", "23", "blk.0.attn_k.weight", "IQ2_S"},
	} {
		out, err := exec.Command(bin, f32, filepath.Join(t.TempDir(), "llama.gguf"), tc.ftype, "1").CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("this quantization requires an importance matrix")) {
			t.Errorf("llama_model_quantize %s without an imatrix: %v\n%s", tc.typ, err, out)
		}
		_, err = ggufconv.Convert(context.Background(), m, t.TempDir(), ggufconv.Options{Type: tc.typ})
		want := tc.typ + ` needs an importance matrix: ` + tc.tensor + ` would be ` + tc.as + `, which llama-quantize refuses to write without one`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Convert %s without an imatrix: %v, want %q", tc.typ, err, want)
		}
	}
}

// TestImatrixRefusals: an importance matrix without an entry for a tensor
// Q2_K_S stores in Q2_K, or with an entry of another size than the
// tensor's rows, is refused by llama-quantize and by cogumi.
func TestImatrixRefusals(t *testing.T) {
	bin := llamaQuantizer(t)
	m := tiny(t, tinyllama.Options{}) // 2 layers: every ffn_down of Q2_K_S is Q2_K
	_, f32file, f32 := convert(t, m, ggufconv.Options{Type: "F32", Name: "tiny"})
	dir := t.TempDir()
	lacking := writeImatrix(t, f32file, filepath.Join(dir, "imatrix.gguf"), false) // no blk.0.ffn_down.weight
	wrong := imatrix.Matrix{Datasets: []string{"x"}, ChunkCount: 1, ChunkSize: 8,
		Entries: []imatrix.Entry{{Name: "blk.0.attn_q.weight", Sums: []float32{1, 2}, Counts: []float32{4}}}}
	if err := imatrix.Write(filepath.Join(dir, "wrong.gguf"), wrong); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, ftype, typ string
		im               *imatrix.Matrix
		llama, ours      string
	}{
		{"imatrix.gguf", "21", "Q2_K_S", lacking, "Missing importance matrix for tensor blk.0.ffn_down.weight",
			"Q2_K_S needs an importance matrix for every Q2_K tensor, and the one given has no entry for blk.0.ffn_down.weight"},
		// 2 layers: IQ3_XXS keeps every ffn_down in IQ3_XXS.
		{"imatrix.gguf", "23", "IQ3_XXS", lacking, "Missing importance matrix for tensor blk.0.ffn_down.weight",
			"IQ3_XXS needs an importance matrix for every IQ3_XXS tensor, and the one given has no entry for blk.0.ffn_down.weight"},
		{"wrong.gguf", "15", "Q4_K_M", &wrong, "imatrix size 2 is different from tensor size 256 for blk.0.attn_q.weight",
			"its entry for blk.0.attn_q.weight has 2 values, but the tensor's rows have 256"},
	} {
		cmd := exec.Command(bin, "--imatrix", tc.file, f32, filepath.Join(t.TempDir(), "llama.gguf"), tc.ftype, "1")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte(tc.llama)) {
			t.Errorf("llama_model_quantize %s with %s: %v, want %q in\n%s", tc.typ, tc.file, err, tc.llama, out)
		}
		_, err := ggufconv.Convert(context.Background(), m, t.TempDir(), ggufconv.Options{Type: tc.typ, Imatrix: tc.im, ImatrixFile: tc.file})
		if err == nil || !strings.Contains(err.Error(), tc.ours) {
			t.Errorf("Convert %s with %s: %v, want %q", tc.typ, tc.file, err, tc.ours)
		}
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
