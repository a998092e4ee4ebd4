package imatrix

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
)

// Write lays the file out as llama-imatrix's save_imatrix: the four keys
// in its order and types, entries sorted by name, in_sum2 then counts,
// trailing dimensions of 1 dropped; Read gives the matrix back.
func TestWriteRead(t *testing.T) {
	m := Matrix{
		Datasets:   []string{"//data:calib"},
		ChunkCount: 3,
		ChunkSize:  512,
		Entries: []Entry{
			{Name: "blk.0.ffn_down.weight", Sums: []float32{1, 2, 3, 4}, Counts: []float32{1536}},
			{Name: "blk.0.attn_q.weight", Sums: []float32{0.5, 0.25}, Counts: []float32{1536}},
			{Name: "blk.1.ffn_up_exps.weight", Sums: []float32{1, 2, 3, 4, 5, 6}, Counts: []float32{7, 8, 9}},
		},
	}
	path := filepath.Join(t.TempDir(), "imatrix.gguf")
	if err := Write(path, m); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	for _, kv := range f.KVs {
		keys = append(keys, kv.Key+":"+kv.Value.Type().String())
	}
	if want := []string{"general.type:string", "imatrix.datasets:array", "imatrix.chunk_count:uint32", "imatrix.chunk_size:uint32"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if v, _ := f.Get(KeyDatasets); v.ElemType() != gguf.TypeString {
		t.Errorf("imatrix.datasets holds %s, want strings", v.ElemType())
	}
	var tensors []string
	for _, ti := range f.Tensors {
		if ti.Type != quant.F32 {
			t.Errorf("%s is %s, want F32", ti.Name, ti.Type)
		}
		tensors = append(tensors, fmt.Sprintf("%s %v", ti.Name, ti.Shape))
	}
	want := []string{
		"blk.0.attn_q.weight.in_sum2 [2]", "blk.0.attn_q.weight.counts [1]",
		"blk.0.ffn_down.weight.in_sum2 [4]", "blk.0.ffn_down.weight.counts [1]",
		"blk.1.ffn_up_exps.weight.in_sum2 [2 3]", "blk.1.ffn_up_exps.weight.counts [1 3]",
	}
	if !slices.Equal(tensors, want) {
		t.Errorf("tensors %v, want %v", tensors, want)
	}

	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Datasets, m.Datasets) || got.ChunkCount != 3 || got.ChunkSize != 512 || len(got.Entries) != 3 {
		t.Fatalf("read %+v", got)
	}
	for _, e := range got.Entries {
		i := slices.IndexFunc(m.Entries, func(x Entry) bool { return x.Name == e.Name })
		if i < 0 || !slices.Equal(e.Sums, m.Entries[i].Sums) || !slices.Equal(e.Counts, m.Entries[i].Counts) {
			t.Errorf("entry %+v read back differently", e)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		m    Matrix
		want string
	}{
		{Matrix{Entries: []Entry{{Name: "a.weight", Sums: []float32{1, 2, 3}, Counts: []float32{1, 1}}}}, "a.weight: 3 sums do not divide into 2 matrices"},
		{Matrix{Entries: []Entry{{Name: "a.weight", Sums: []float32{1}}}}, "a.weight: 1 sums do not divide into 0 matrices"},
		{Matrix{Entries: []Entry{{Name: "a.weight", Sums: []float32{1}, Counts: []float32{1}}, {Name: "a.weight", Sums: []float32{1}, Counts: []float32{1}}}}, "entry a.weight appears twice"},
	} {
		path := filepath.Join(dir, "x.gguf")
		err := Write(path, c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Write: %v, want %q", err, c.want)
		}
	}
}

// A GGUF that is not an imatrix, or whose entry lacks its counts, is
// refused by name.
func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.gguf")
	w, err := gguf.NewWriter(model, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetKV("general.type", "model"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(model); err == nil || !strings.Contains(err.Error(), `not an imatrix GGUF`) {
		t.Errorf("Read of a model: %v", err)
	}

	lone := filepath.Join(dir, "lone.gguf")
	w, err = gguf.NewWriter(lone, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []struct {
		k string
		v any
	}{{KeyType, "imatrix"}, {KeyDatasets, []string{"x"}}, {KeyChunkCount, uint32(1)}, {KeyChunkSize, uint32(512)}} {
		if err := w.SetKV(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddTensor("blk.0.attn_q.weight.in_sum2", quant.F32, []uint64{2}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensorData("blk.0.attn_q.weight.in_sum2", make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(lone); err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight.in_sum2 has no blk.0.attn_q.weight.counts") {
		t.Errorf("Read of an entry without counts: %v", err)
	}
}
