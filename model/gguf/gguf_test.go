package gguf_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
)

// sampleKVs has one key of every scalar type and one array of each.
func sampleKVs() []gguf.KV {
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"},
		{"t.u8", uint8(200)}, {"t.i8", int8(-5)}, {"t.u16", uint16(65000)}, {"t.i16", int16(-32000)},
		{"t.u32", uint32(4000000000)}, {"t.i32", int32(-2000000000)}, {"t.f32", float32(1e-5)},
		{"t.bool", true}, {"t.str", "héllo\x00world"}, {"t.u64", uint64(1) << 60}, {"t.i64", int64(-1) << 60},
		{"t.f64", math.Pi},
		{"a.u8", []uint8{1, 2, 3}}, {"a.i8", []int8{-1, 2}}, {"a.u16", []uint16{7}}, {"a.i16", []int16{-7, 8}},
		{"a.u32", []uint32{1, 1 << 31}}, {"a.i32", []int32{-1, 6, 3}}, {"a.f32", []float32{0.5, -0.25}},
		{"a.bool", []bool{true, false, true}}, {"a.str", []string{"<unk>", "", "▁the"}},
		{"a.u64", []uint64{math.MaxUint64}}, {"a.i64", []int64{math.MinInt64}}, {"a.f64", []float64{1e300}},
		{"a.empty", []string{}},
	}
	out := make([]gguf.KV, len(kvs))
	for i, kv := range kvs {
		v, err := gguf.ValueOf(kv.v)
		if err != nil {
			panic(err)
		}
		out[i] = gguf.KV{Key: kv.k, Value: v}
	}
	return out
}

type sampleTensor struct {
	name  string
	typ   quant.Type
	shape []uint64
	data  []byte
}

// sampleTensors quantises deterministic values into a few types, with
// shapes that make the padding between tensors non-trivial.
func sampleTensors(t testing.TB) []sampleTensor {
	mk := func(name string, typ quant.Type, shape ...uint64) sampleTensor {
		n := uint64(1)
		for _, d := range shape {
			n *= d
		}
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(math.Sin(float64(i)*0.37)) * 0.1
		}
		data := make([]byte, quant.RowSize(typ, int(n)))
		if err := quant.Quantize(typ, data, src); err != nil {
			t.Fatal(err)
		}
		return sampleTensor{name, typ, shape, data}
	}
	return []sampleTensor{
		mk("token_embd.weight", quant.Q8_0, 64, 3),
		mk("blk.0.attn_norm.weight", quant.F32, 7),
		mk("blk.0.attn_q.weight", quant.Q4_K, 256, 2),
		mk("blk.0.ffn_down.weight", quant.Q6_K, 256, 1, 1),
		mk("output.weight", quant.F16, 5, 3),
		mk("odd.bf16", quant.BF16, 3, 1, 1, 1),
	}
}

// writeSample writes the sample file; chunked feeds the data through
// TensorWriter a few bytes at a time, as a streaming converter would.
func writeSample(t testing.TB, path string, alignment int, chunked bool) {
	t.Helper()
	w, err := gguf.NewWriter(path, alignment)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, kv := range sampleKVs() {
		if err := w.SetKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	tensors := sampleTensors(t)
	for _, ts := range tensors {
		if err := w.AddTensor(ts.name, ts.typ, ts.shape); err != nil {
			t.Fatal(err)
		}
	}
	for i, ts := range tensors {
		switch {
		case chunked:
			tw, err := w.TensorWriter(ts.name)
			if err != nil {
				t.Fatal(err)
			}
			for p := ts.data; len(p) > 0; {
				n := min(len(p), 7)
				if _, err := tw.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
		case i%2 == 0:
			err = w.WriteTensorData(ts.name, ts.data)
		default:
			err = w.WriteTensorFrom(ts.name, bytes.NewReader(ts.data))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		alignment int
		chunked   bool
	}{{0, false}, {32, true}, {64, false}, {1, true}, {4096, false}} {
		path := filepath.Join(t.TempDir(), "m.gguf")
		writeSample(t, path, tc.alignment, tc.chunked)
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		align := uint64(max(tc.alignment, 0))
		if align == 0 {
			align = 32
		}
		if f.Version != 3 || f.Alignment != align || f.DataOffset()%align != 0 {
			t.Errorf("alignment %d: version %d, alignment %d, data at %d", tc.alignment, f.Version, f.Alignment, f.DataOffset())
		}
		kvs := f.KVs
		if align != 32 {
			if kvs[0].Key != "general.alignment" {
				t.Fatalf("alignment %d: general.alignment not recorded first: %v", tc.alignment, kvs[0])
			}
			kvs = kvs[1:]
		}
		if want := sampleKVs(); !reflect.DeepEqual(kvs, want) {
			t.Errorf("alignment %d: metadata differs:\n got  %v\n want %v", tc.alignment, kvs, want)
		}
		for i, ts := range sampleTensors(t) {
			info := f.Tensors[i]
			if info.Name != ts.name || info.Type != ts.typ || !reflect.DeepEqual(info.Shape, ts.shape) || info.Offset%align != 0 {
				t.Errorf("tensor %d: %+v, want %s %v %v", i, info, ts.name, ts.typ, ts.shape)
			}
			data, err := f.TensorData(ts.name)
			if err != nil || !bytes.Equal(data, ts.data) {
				t.Errorf("tensor %s: data differs (%v)", ts.name, err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	writeSample(t, path, 0, false)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s, err := f.String("general.architecture"); err != nil || s != "llama" {
		t.Errorf("String = %q, %v", s, err)
	}
	if v, err := f.Uint32("t.u32"); err != nil || v != 4000000000 {
		t.Errorf("Uint32 = %d, %v", v, err)
	}
	if v, err := f.Strings("a.str"); err != nil || len(v) != 3 || v[2] != "▁the" {
		t.Errorf("Strings = %q, %v", v, err)
	}
	if v, err := gguf.Lookup[[]bool](f, "a.bool"); err != nil || !v[0] || v[1] {
		t.Errorf("Lookup[[]bool] = %v, %v", v, err)
	}
	if _, err := f.Uint64("t.u32"); err == nil || !strings.Contains(err.Error(), `"t.u32" holds uint32, not uint64`) {
		t.Errorf("wrong-type error: %v", err)
	}
	if _, err := f.Float32("nope"); !errors.Is(err, gguf.ErrNotFound) {
		t.Errorf("missing key error: %v", err)
	}
	if _, err := f.TensorData("nope"); !errors.Is(err, gguf.ErrNotFound) {
		t.Errorf("missing tensor error: %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	var all []*gguf.Writer
	newW := func() *gguf.Writer {
		w, err := gguf.NewWriter(filepath.Join(dir, "x.gguf"), 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, w)
		return w
	}
	expect := func(err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to mention %q", err, want)
		}
	}
	_, err := gguf.NewWriter(filepath.Join(dir, "x.gguf"), 48)
	expect(err, "power of two")
	_, err = gguf.NewWriter(filepath.Join(dir, "no", "such", "x.gguf"), 0)
	expect(err, "creating")

	w := newW()
	expect(w.SetKV("k", 3), "no fixed size")
	expect(w.SetKV("k", struct{}{}), "cannot store")
	expect(w.SetKV("", uint32(1)), "length 0")
	expect(w.SetKV("general.alignment", uint32(64)), "writer's alignment")
	expect(w.AddTensor("a", quant.Q4_K, []uint64{255, 2}), "not a multiple of Q4_K's block size 256")
	expect(w.AddTensor("a", quant.Type(4), []uint64{256}), "unsupported ggml type 4")
	expect(w.AddTensor("a", quant.F32, []uint64{1, 1, 1, 1, 1}), "5 dimensions")
	expect(w.AddTensor("a", quant.F32, nil), "0 dimensions")
	expect(w.AddTensor("a", quant.F32, []uint64{1 << 32, 1 << 32}), "overflows")
	expect(w.AddTensor(strings.Repeat("n", 64), quant.F32, []uint64{1}), "length 64")
	if err := w.AddTensor("a", quant.F32, []uint64{2}); err != nil {
		t.Fatal(err)
	}
	expect(w.AddTensor("a", quant.F32, []uint64{2}), "declared twice")
	if err := w.AddTensor("b", quant.F32, []uint64{2}); err != nil {
		t.Fatal(err)
	}
	expect(w.WriteTensorData("b", make([]byte, 8)), `written before "a"`)
	expect(w.Close(), `written before "a"`) // the first error sticks

	w = newW()
	w.AddTensor("a", quant.F32, []uint64{2})
	w.AddTensor("b", quant.F32, []uint64{2})
	expect(w.WriteTensorData("a", make([]byte, 7)), "needs 8 bytes, got 7")

	w = newW()
	w.AddTensor("a", quant.F32, []uint64{2})
	expect(w.WriteTensorData("zz", nil), "not declared")

	w = newW()
	w.AddTensor("a", quant.F32, []uint64{2})
	w.AddTensor("b", quant.F32, []uint64{2})
	tw, _ := w.TensorWriter("a")
	tw.Write(make([]byte, 4))
	expect(w.SetKV("late", uint8(1)), "after tensor data started")
	expect(w.WriteTensorData("b", make([]byte, 8)), `"a" got 4 of its 8 bytes`)

	w = newW()
	w.AddTensor("a", quant.F32, []uint64{2})
	tw, _ = w.TensorWriter("a")
	_, err = tw.Write(make([]byte, 9))
	expect(err, "past its size")

	w = newW()
	w.AddTensor("a", quant.F32, []uint64{2})
	expect(w.WriteTensorFrom("a", bytes.NewReader(make([]byte, 3))), "got 3 of 8 bytes")

	w = newW()
	w.AddTensor("a", quant.F32, []uint64{2})
	w.AddTensor("b", quant.F32, []uint64{2})
	w.WriteTensorData("a", make([]byte, 8))
	expect(w.Close(), `1 of 2 tensors written; "b" is next`)
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); !os.IsNotExist(err) {
		t.Errorf("a failed Close left a file behind: %v", err)
	}
	for _, w := range all {
		w.Abort()
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestAbortLeavesNothing checks that an abandoned writer removes its
// temporary file and that a successful Close is not undone by Abort.
func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	w, err := gguf.NewWriter(filepath.Join(dir, "a.gguf"), 0)
	if err != nil {
		t.Fatal(err)
	}
	w.SetKV("general.architecture", "llama")
	w.Abort()
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("Abort left %v", left)
	}
	path := filepath.Join(dir, "b.gguf")
	w, _ = gguf.NewWriter(path, 0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatalf("an empty GGUF (no KVs, no tensors) should open: %v", err)
	}
	f.Close()
}
