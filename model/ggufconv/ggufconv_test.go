package ggufconv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/quant"
	"github.com/cogumi/cogumi/model/safetensors"
)

// expectKV checks that key holds exactly a T equal to want: llama.cpp's
// loader rejects a uint64 where it reads a uint32, a float64 for a float32.
func expectKV[T any](t *testing.T, f *gguf.File, key string, want T) {
	t.Helper()
	got, err := gguf.Lookup[T](f, key)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", key, got, want)
	}
}

func TestMetadataSentencePiece(t *testing.T) {
	m := tiny(t, tinyllama.Options{DType: safetensors.F16})
	rep, f, _ := convert(t, m, ggufconv.Options{Type: "Q4_K_M", Name: "tiny"})
	vocab, err := m.Vocab(checkpoint.VocabOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectKV(t, f, "general.architecture", "llama")
	expectKV(t, f, "general.type", "model")
	expectKV(t, f, "general.name", "tiny")
	expectKV(t, f, "general.size_label", rep.SizeLabel)
	expectKV(t, f, "general.file_type", uint32(15))
	expectKV(t, f, "general.quantization_version", uint32(2))
	expectKV(t, f, "general.alignment", uint32(32))
	expectKV(t, f, "llama.block_count", uint32(2))
	expectKV(t, f, "llama.context_length", uint32(256))
	expectKV(t, f, "llama.embedding_length", uint32(256))
	expectKV(t, f, "llama.feed_forward_length", uint32(512))
	expectKV(t, f, "llama.attention.head_count", uint32(4))
	expectKV(t, f, "llama.attention.head_count_kv", uint32(2))
	expectKV(t, f, "llama.attention.key_length", uint32(64))
	expectKV(t, f, "llama.attention.value_length", uint32(64))
	expectKV(t, f, "llama.rope.dimension_count", uint32(64))
	expectKV(t, f, "llama.rope.freq_base", float32(10000))
	expectKV(t, f, "llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	expectKV(t, f, "llama.vocab_size", uint32(len(vocab.Tokens)))
	expectKV(t, f, "tokenizer.ggml.model", "llama")
	expectKV(t, f, "tokenizer.ggml.pre", "default")
	expectKV(t, f, "tokenizer.ggml.tokens", vocab.Tokens)
	expectKV(t, f, "tokenizer.ggml.scores", vocab.Scores)
	types := make([]int32, len(vocab.Types))
	for i, ty := range vocab.Types {
		types[i] = int32(ty)
	}
	expectKV(t, f, "tokenizer.ggml.token_type", types)
	expectKV(t, f, "tokenizer.ggml.bos_token_id", uint32(1))
	expectKV(t, f, "tokenizer.ggml.eos_token_id", uint32(2))
	// Like gguf-py's SpecialVocab, the unknown token's id comes only from
	// tokenizer.json or config.json, and this checkpoint has neither.
	if _, ok := f.Get("tokenizer.ggml.unknown_token_id"); ok || vocab.UNK != -1 {
		t.Errorf("unknown_token_id set (vocab says %d)", vocab.UNK)
	}
	expectKV(t, f, "tokenizer.ggml.add_bos_token", true)
	expectKV(t, f, "tokenizer.ggml.add_eos_token", false)
	for _, absent := range []string{"tokenizer.ggml.merges", "llama.rope.scaling.type"} {
		if _, ok := f.Get(absent); ok {
			t.Errorf("%s is set; llama.cpp's converter does not write it for this model", absent)
		}
	}
	// llama-quantize re-sets these two last; cogumi writes them there too.
	n := len(f.KVs)
	if f.KVs[n-2].Key != "general.quantization_version" || f.KVs[n-1].Key != "general.file_type" {
		t.Errorf("last keys are %s, %s", f.KVs[n-2].Key, f.KVs[n-1].Key)
	}
}

func TestMetadataBPE(t *testing.T) {
	m := tiny(t, tinyllama.Options{Tokenizer: tinyllama.BPE})
	_, f, _ := convert(t, m, ggufconv.Options{Type: "F16"})
	vocab, err := m.Vocab(checkpoint.VocabOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectKV(t, f, "general.file_type", uint32(1))
	expectKV(t, f, "tokenizer.ggml.model", "gpt2")
	expectKV(t, f, "tokenizer.ggml.pre", vocab.Pre)
	expectKV(t, f, "tokenizer.ggml.tokens", vocab.Tokens)
	expectKV(t, f, "tokenizer.ggml.merges", vocab.Merges)
	expectKV(t, f, "tokenizer.ggml.bos_token_id", uint32(vocab.BOS))
	expectKV(t, f, "tokenizer.ggml.eos_token_id", uint32(vocab.EOS))
	if len(vocab.Merges) == 0 || vocab.Pre != "gpt-2" {
		t.Errorf("tiny BPE vocabulary: %d merges, pre %q", len(vocab.Merges), vocab.Pre)
	}
	if _, ok := f.Get("tokenizer.ggml.scores"); ok {
		t.Error("a gpt2 vocabulary has no scores")
	}
}

// wantNames lists the tensors of a Llama GGUF in llama-quantize's order.
func wantNames(layers int, output bool) []string {
	var names []string
	if output {
		names = append(names, "output.weight")
	}
	names = append(names, "output_norm.weight", "token_embd.weight")
	var blocks []string
	for l := range layers {
		blocks = append(blocks, fmt.Sprint(l))
	}
	for l := range layers {
		for _, s := range []string{"attn_k", "attn_norm", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_norm", "ffn_up"} {
			names = append(names, fmt.Sprintf("blk.%d.%s.weight", l, s))
		}
	}
	return names
}

func TestTensorNamesAndShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    tinyllama.Options
	}{
		{"untied-11-layers", tinyllama.Options{Layers: 11, Shards: 2}},
		{"tied", tinyllama.Options{TieEmbeddings: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tiny(t, tc.o)
			rep, f, _ := convert(t, m, ggufconv.Options{Type: "F32"})
			var got []string
			for _, ti := range f.Tensors {
				got = append(got, ti.Name)
			}
			layers := max(tc.o.Layers, 2)
			want := wantNames(layers, !tc.o.TieEmbeddings)
			if !slices.Equal(got, want) {
				t.Fatalf("tensors\n%v\nwant\n%v", got, want)
			}
			cfg := m.Config()
			v := uint64(cfg.VocabSize)
			shapes := map[string][]uint64{
				"token_embd.weight": {256, v}, "output.weight": {256, v}, "output_norm.weight": {256},
				"blk.1.attn_q.weight": {256, 256}, "blk.1.attn_k.weight": {256, 128}, "blk.1.attn_v.weight": {256, 128},
				"blk.1.attn_output.weight": {256, 256}, "blk.1.ffn_gate.weight": {256, 512},
				"blk.1.ffn_up.weight": {256, 512}, "blk.1.ffn_down.weight": {512, 256}, "blk.1.attn_norm.weight": {256},
			}
			for name, shape := range shapes {
				if ti, ok := f.Tensor(name); ok && !slices.Equal(ti.Shape, shape) {
					t.Errorf("%s has shape %v, want %v", name, ti.Shape, shape)
				}
			}
			src := map[string]string{}
			for _, tr := range rep.Tensors {
				src[tr.Name] = tr.Source
			}
			for g, hf := range map[string]string{
				"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
				"blk.1.attn_norm.weight": "model.layers.1.input_layernorm.weight", "blk.1.ffn_norm.weight": "model.layers.1.post_attention_layernorm.weight",
				"blk.1.attn_output.weight": "model.layers.1.self_attn.o_proj.weight", "blk.1.ffn_down.weight": "model.layers.1.mlp.down_proj.weight",
			} {
				if src[g] != hf {
					t.Errorf("%s comes from %q, want %q", g, src[g], hf)
				}
			}
		})
	}
}

// permuteLikeNumpy is convert_hf_to_gguf.py's permute written the slow,
// literal way: view the [rows, cols] matrix as an array of shape
// [n, 2, rows/n/2, cols], swap axes 1 and 2, and read the result back in
// row-major order.
func permuteLikeNumpy(w []float32, rows, cols, n int) []float32 {
	shape := []int{n, 2, rows / n / 2, cols}
	strides := make([]int, 4) // of the input, row-major
	s := 1
	for d := 3; d >= 0; d-- {
		strides[d] = s
		s *= shape[d]
	}
	outShape := []int{shape[0], shape[2], shape[1], shape[3]}
	inStrides := []int{strides[0], strides[2], strides[1], strides[3]} // swapaxes(1, 2)
	out := make([]float32, 0, len(w))
	for a := 0; a < outShape[0]; a++ {
		for b := 0; b < outShape[1]; b++ {
			for c := 0; c < outShape[2]; c++ {
				for d := 0; d < outShape[3]; d++ {
					out = append(out, w[a*inStrides[0]+b*inStrides[1]+c*inStrides[2]+d*inStrides[3]])
				}
			}
		}
	}
	return out
}

// sourceRows reads a whole checkpoint tensor as float32.
func sourceRows(t *testing.T, m *checkpoint.Model, name string) (vals []float32, rows, cols int) {
	t.Helper()
	ref, ok := m.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	rows, cols = int(ref.Shape[0]), 1
	if len(ref.Shape) == 2 {
		cols = int(ref.Shape[1])
	} else {
		rows, cols = 1, rows
	}
	vals = make([]float32, rows*cols)
	if err := m.ReadF32Rows(name, 0, rows, vals); err != nil {
		t.Fatal(err)
	}
	return vals, rows, cols
}

// expectedData is what a tensor of the GGUF must hold: the checkpoint's
// rows, permuted for Q and K by the brute-force reshape, quantised by
// quant.QuantizeRows in the tensor's type.
func expectedData(t *testing.T, m *checkpoint.Model, src, name string, typ quant.Type) []byte {
	t.Helper()
	vals, rows, cols := sourceRows(t, m, src)
	cfg := m.Config()
	switch {
	case strings.HasSuffix(name, "attn_q.weight"):
		vals = permuteLikeNumpy(vals, rows, cols, cfg.NumAttentionHeads)
	case strings.HasSuffix(name, "attn_k.weight"):
		vals = permuteLikeNumpy(vals, rows, cols, cfg.NumKeyValueHeads)
	}
	out := make([]byte, quant.RowSize(typ, len(vals)))
	if err := quant.QuantizeRows(typ, out, vals, cols, 1); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPermutation checks the Q and K rows of an F32 file against the
// brute-force reshape, for grouped-query attention (4 heads, 2 KV heads)
// and for plain multi-head attention.
func TestPermutation(t *testing.T) {
	for _, kv := range []int{2, 4} {
		t.Run(fmt.Sprintf("kv%d", kv), func(t *testing.T) {
			m := tiny(t, tinyllama.Options{KVHeads: kv, DType: safetensors.F32})
			_, f, _ := convert(t, m, ggufconv.Options{Type: "F32"})
			for l := range 2 {
				for _, p := range []struct{ src, dst string }{
					{"self_attn.q_proj.weight", "attn_q.weight"}, {"self_attn.k_proj.weight", "attn_k.weight"},
				} {
					src, dst := fmt.Sprintf("model.layers.%d.%s", l, p.src), fmt.Sprintf("blk.%d.%s", l, p.dst)
					got, err := f.TensorData(dst)
					if err != nil {
						t.Fatal(err)
					}
					want := expectedData(t, m, src, dst, quant.F32)
					if !bytes.Equal(got, want) {
						t.Errorf("%s is not %s permuted as convert_hf_to_gguf.py permutes it", dst, src)
					}
					// And the permutation is not the identity.
					plain, _, _ := sourceRows(t, m, src)
					same := make([]byte, 4*len(plain))
					if err := quant.ConvertF32(same, plain); err != nil {
						t.Fatal(err)
					}
					if bytes.Equal(got, same) {
						t.Errorf("%s is not permuted at all", dst)
					}
				}
			}
		})
	}
}

// TestByteIdentical checks every tensor of several file types against
// quant.QuantizeRows of the checkpoint's (permuted) rows: the Q8_0 and
// Q4_0 blocks, the Q4_K/Q6_K/Q5_K blocks of the K mixes, the F16 and BF16
// conversions, with several goroutines against one.
func TestByteIdentical(t *testing.T) {
	m := tiny(t, tinyllama.Options{DType: safetensors.F16, Layers: 3})
	for _, typ := range []string{"Q8_0", "Q4_0", "Q4_K_M", "Q4_K_S", "F16", "BF16"} {
		t.Run(typ, func(t *testing.T) {
			rep, f, path := convert(t, m, ggufconv.Options{Type: typ, Threads: 3})
			for _, tr := range rep.Tensors {
				got, err := f.TensorData(tr.Name)
				if err != nil {
					t.Fatal(err)
				}
				if want := expectedData(t, m, tr.Source, tr.Name, tr.Type); !bytes.Equal(got, want) {
					t.Errorf("%s (%s): bytes differ from quant.QuantizeRows of the checkpoint rows", tr.Name, tr.Type)
				}
				if int64(len(got)) != tr.Bytes {
					t.Errorf("%s: report says %d bytes, file holds %d", tr.Name, tr.Bytes, len(got))
				}
			}
			_, _, one := convert(t, m, ggufconv.Options{Type: typ, Threads: 1})
			a, _ := os.ReadFile(path)
			b, _ := os.ReadFile(one)
			if !bytes.Equal(a, b) {
				t.Error("3 threads and 1 thread wrote different files")
			}
			if fi, _ := os.Stat(path); fi.Size() != rep.Size {
				t.Errorf("report says %d bytes, file has %d", rep.Size, fi.Size())
			}
		})
	}
}

func TestReportAndFileName(t *testing.T) {
	m := tiny(t, tinyllama.Options{})
	rep, f, _ := convert(t, m, ggufconv.Options{Type: "q4_k_m"})
	var params int64
	for _, ti := range f.Tensors {
		n := int64(1)
		for _, d := range ti.Shape {
			n *= int64(d)
		}
		params += n
	}
	if rep.Params != params || rep.SizeLabel != ggufconv.SizeLabel(params) {
		t.Errorf("report: %d params (%s), file holds %d", rep.Params, rep.SizeLabel, params)
	}
	// The default name is the checkpoint directory's, as in llama.cpp.
	if want := "tiny-" + rep.SizeLabel + "-Q4_K_M.gguf"; rep.File != want || rep.Type != "Q4_K_M" {
		t.Errorf("file %q type %q, want %q", rep.File, rep.Type, want)
	}
	if !strings.HasPrefix(rep.Summary(), fmt.Sprintf("%d tensors: 5 F32, ", len(f.Tensors))) {
		t.Errorf("summary %q", rep.Summary())
	}
}

func TestSizeLabel(t *testing.T) {
	// Expected values computed with gguf-py's model_weight_count_rounded_notation.
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{500, "0.50K"}, {1_000, "1.0K"}, {1_400_000, "1.4M"}, {999_999, "1000K"}, {1_000_000, "1000K"},
		{3_210_000, "3.2M"}, {25_000_000, "25M"}, {1_235_814_400, "1.2B"}, {6_738_415_616, "6.7B"},
		{8_030_261_248, "8.0B"}, {70_553_706_496, "71B"}, {1_000_000_000_001, "1.0T"},
	} {
		if got := ggufconv.SizeLabel(tc.n); got != tc.want {
			t.Errorf("SizeLabel(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := ggufconv.FileName(" My model/v2 ", "3.2M", "q8_0"); got != "My-model-v2-3.2M-Q8_0.gguf" {
		t.Errorf("FileName = %q", got)
	}
}

func TestErrors(t *testing.T) {
	m := tiny(t, tinyllama.Options{})
	dst := t.TempDir()
	_, err := ggufconv.Convert(context.Background(), m, dst, ggufconv.Options{Type: "IQ9_K"})
	if err == nil || !strings.Contains(err.Error(), `gguf type "IQ9_K" is not supported; use one of F32, F16, BF16, Q8_0, Q4_0, Q6_K, Q5_K_M, `) {
		t.Errorf("unsupported type: %v", err)
	}
	for _, tc := range []struct {
		o    ggufconv.Options
		want string
	}{
		{ggufconv.Options{Type: "q4_k"}, `gguf type "q4_k" is llama-quantize's alias of Q4_K_M; write Q4_K_M`},
		{ggufconv.Options{Type: "Q4_K_M", TensorTypes: []ggufconv.TensorType{{Pattern: "attn_v", Type: "Q8_0"}, {Pattern: `blk\.\d+\.(?=ffn)`, Type: "Q6_K"}}},
			`tensor type override 2: pattern "blk\\.\\d+\\.(?=ffn)": (? groups`},
		{ggufconv.Options{Type: "Q4_K_M", TensorTypes: []ggufconv.TensorType{{Pattern: "attn_v", Type: "IQ1_S"}}},
			`tensor type override 1 ("attn_v"): "IQ1_S" is not a ggml type cogumi writes`},
		{ggufconv.Options{Type: "Q4_K_M", OutputTensorType: "Q4"}, `output tensor type: "Q4" is not a ggml type cogumi writes`},
		{ggufconv.Options{Type: "Q4_K_M", TokenEmbeddingType: "Q4_K", OutputTensorType: "Q5_K", TensorTypes: []ggufconv.TensorType{{Pattern: "ffn_down", Type: "Q4_K"}}}, ""},
	} {
		_, err := ggufconv.Convert(context.Background(), m, t.TempDir(), tc.o)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	// An override that gives no tensor its type (a typo, or one shadowed
	// by an earlier pattern) is worth a warning; llama-quantize says nothing.
	rep, err := ggufconv.Convert(context.Background(), m, t.TempDir(), ggufconv.Options{Type: "Q4_K_M",
		TensorTypes: []ggufconv.TensorType{{Pattern: "attn", Type: "Q8_0"}, {Pattern: "attn_v", Type: "Q6_K"}, {Pattern: "atn_q", Type: "Q6_K"}, {Pattern: "ffn", Type: "Q5_K"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`tensor type override 2 ("attn_v") gave no tensor its type`, `tensor type override 3 ("atn_q") gave no tensor its type`}
	if !slices.Equal(rep.Warnings, want) {
		t.Errorf("warnings %q, want %q", rep.Warnings, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ggufconv.Convert(ctx, m, dst, ggufconv.Options{Type: "Q8_0"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled conversion: %v", err)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("a failed conversion left %v", ents)
	}
}

// withExtraTensor rewrites a tiny checkpoint's weights with one more tensor.
func withExtraTensor(t *testing.T, name string) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "extra")
	if err := tinyllama.Write(dir, tinyllama.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.safetensors")
	old, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	infos := append(old.Infos(), safetensors.Info{Name: name, DType: safetensors.F32, Shape: []int64{32}})
	data := map[string][]byte{name: make([]byte, 128)}
	for _, in := range old.Infos() {
		data[in.Name] = bytes.Clone(old.Bytes(in.Name))
	}
	old.Close()
	w, err := safetensors.NewWriter(path, infos, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range w.Tensors() {
		if err := w.WriteTensor(in.Name, data[in.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestUnknownAndIgnoredTensors(t *testing.T) {
	m := withExtraTensor(t, "model.layers.0.mlp.adapter.weight")
	_, err := ggufconv.Convert(context.Background(), m, t.TempDir(), ggufconv.Options{Type: "F16"})
	if err == nil || !strings.Contains(err.Error(), `checkpoint tensor "model.layers.0.mlp.adapter.weight" has no llama.cpp name`) {
		t.Errorf("unknown tensor: %v", err)
	}
	m = withExtraTensor(t, "model.layers.0.self_attn.rotary_emb.inv_freq")
	rep, f, _ := convert(t, m, ggufconv.Options{Type: "F16"})
	if len(f.Tensors) != len(wantNames(2, true)) || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "rotary_emb.inv_freq") {
		t.Errorf("inv_freq: %d tensors, warnings %q", len(f.Tensors), rep.Warnings)
	}
}

// TestQwen checks what the Qwen converters write differently from Llama's:
// the architecture's own keys (no vocab_size or rope.dimension_count,
// key_length from head_dim), the q/k/v biases and per-head norms under
// llama.cpp's names, and Q and K as the checkpoint holds them (llama.cpp
// runs Qwen with NEOX RoPE: no permutation).
func TestQwen(t *testing.T) {
	for _, tc := range []struct {
		o       tinyllama.Options
		arch    string
		tensors []string
	}{
		{tinyllama.Options{Arch: tinyllama.Qwen2}, "qwen2", []string{"blk.1.attn_q.bias", "blk.1.attn_k.bias", "blk.1.attn_v.bias", "output.weight"}},
		{tinyllama.Options{Arch: tinyllama.Qwen3, HeadDim: 128, TieEmbeddings: true}, "qwen3", []string{"blk.1.attn_q_norm.weight", "blk.1.attn_k_norm.weight"}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			tc.o.DType = safetensors.F32
			m := tiny(t, tc.o)
			_, f, _ := convert(t, m, ggufconv.Options{Type: "F32"})
			if a, _ := f.String("general.architecture"); a != tc.arch {
				t.Errorf("general.architecture = %q", a)
			}
			if n, err := f.Uint32(tc.arch + ".block_count"); n != 2 || err != nil {
				t.Errorf("%s.block_count = %d, %v", tc.arch, n, err)
			}
			for _, k := range []string{"llama.block_count", tc.arch + ".vocab_size", tc.arch + ".rope.dimension_count"} {
				if _, ok := f.Get(k); ok {
					t.Errorf("the converter writes no %s", k)
				}
			}
			kl, err := f.Uint32(tc.arch + ".attention.key_length")
			if tc.arch == "qwen3" && (kl != 128 || err != nil) || tc.arch == "qwen2" && err == nil {
				t.Errorf("%s.attention.key_length = %d, %v", tc.arch, kl, err)
			}
			for _, name := range tc.tensors {
				if _, ok := f.Tensor(name); !ok {
					t.Errorf("no tensor %s", name)
				}
			}
			if _, ok := f.Tensor("output.weight"); ok == tc.o.TieEmbeddings {
				t.Errorf("output.weight present = %v with tied embeddings %v", ok, tc.o.TieEmbeddings)
			}
			for _, p := range []struct{ src, dst string }{
				{"self_attn.q_proj.weight", "attn_q.weight"}, {"self_attn.k_proj.weight", "attn_k.weight"},
			} {
				got, err := f.TensorData("blk.0." + p.dst)
				if err != nil {
					t.Fatal(err)
				}
				plain, _, _ := sourceRows(t, m, "model.layers.0."+p.src)
				same := make([]byte, 4*len(plain))
				if err := quant.ConvertF32(same, plain); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, same) {
					t.Errorf("%s is not %s as the checkpoint holds it", p.dst, p.src)
				}
			}
		})
	}
}
