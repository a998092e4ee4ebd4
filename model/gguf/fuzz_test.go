package gguf_test

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
)

// FuzzOpen feeds arbitrary bytes to the reader (OpenBytes is what Open runs
// on the mapped file). The seeds under testdata/fuzz/FuzzOpen are valid
// files (several alignments, all value types, quantised tensors) and
// broken ones. Whatever the input: no panic; and whatever the reader
// accepts must have tensor data of the advertised size, and must come back
// the same after a trip through the writer.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(header(3, 2, 0).tensor("b", 0, 32, 8).tensor("a", 0, 0, 8).padTo(32, 64)))
	f.Add([]byte(header(3, 0, 1).str("k").u32(9).u32(8).u64(2).str("a").str("bc")))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := gguf.OpenBytes(data)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			d, err := file.TensorData(ti.Name)
			if err != nil || uint64(len(d)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes (%v), info says %d", ti.Name, len(d), err, ti.Size)
			}
		}
		again := rewrite(t, file)
		if !reflect.DeepEqual(again.KVs, file.KVs) {
			t.Fatalf("metadata changed in a round trip:\n%v\n%v", file.KVs, again.KVs)
		}
		for i, ti := range file.Tensors {
			tj := again.Tensors[i]
			if ti.Name != tj.Name || ti.Type != tj.Type || !reflect.DeepEqual(ti.Shape, tj.Shape) || ti.Size != tj.Size {
				t.Fatalf("tensor %d changed in a round trip: %+v -> %+v", i, ti, tj)
			}
			a, _ := file.TensorData(ti.Name)
			b, _ := again.TensorData(tj.Name)
			if !bytes.Equal(a, b) {
				t.Fatalf("tensor %q data changed in a round trip", ti.Name)
			}
		}
	})
}

// rewrite writes f's metadata and tensors with the Writer and opens the
// result.
func rewrite(t *testing.T, f *gguf.File) *gguf.File {
	path := filepath.Join(t.TempDir(), "again.gguf")
	w, err := gguf.NewWriter(path, int(f.Alignment))
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer w.Abort()
	for _, kv := range f.KVs {
		if err := w.SetKV(kv.Key, kv.Value); err != nil {
			t.Fatalf("SetKV %q: %v", kv.Key, err)
		}
	}
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Shape); err != nil {
			t.Fatalf("AddTensor %q: %v", ti.Name, err)
		}
	}
	for _, ti := range f.Tensors {
		d, _ := f.TensorData(ti.Name)
		if err := w.WriteTensorData(ti.Name, d); err != nil {
			t.Fatalf("WriteTensorData %q: %v", ti.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again, err := gguf.Open(path)
	if err != nil {
		t.Fatalf("the writer's own output does not open: %v", err)
	}
	t.Cleanup(func() { again.Close() })
	return again
}
