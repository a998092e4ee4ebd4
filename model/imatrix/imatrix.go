// Package imatrix writes and reads importance matrices in llama.cpp's
// imatrix GGUF format, the file llama-imatrix writes and llama-quantize
// --imatrix reads (tools/imatrix/imatrix.cpp, save_imatrix, and
// common/imatrix-loader of the release node-llama-cpp bundles).
//
// The file is a GGUF with the metadata general.type = "imatrix",
// imatrix.datasets (array of strings), imatrix.chunk_count and
// imatrix.chunk_size (uint32), and per weight, in name order, two F32
// tensors: "<name>.in_sum2" (ne [columns, matrices]: the sum over every
// token of the square of each input column) and "<name>.counts" (ne [1,
// matrices]: the tokens summed). A dense weight is one matrix; ggml writes
// the trailing dimensions of size 1 away, so its shapes are [columns] and
// [1].
package imatrix

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
	"github.com/cogumi/cogumi/model/safetensors"
)

// The metadata keys (LLM_KV_IMATRIX_* in common/imatrix-loader.h).
const (
	KeyType       = "general.type"
	KeyDatasets   = "imatrix.datasets"
	KeyChunkCount = "imatrix.chunk_count"
	KeyChunkSize  = "imatrix.chunk_size"
)

// Entry is the statistics of one weight, named as llama.cpp names it
// ("blk.0.attn_q.weight").
type Entry struct {
	Name   string
	Sums   []float32 // per input column (per matrix, matrices outermost): the sum of squared inputs
	Counts []float32 // per matrix: the number of input rows (tokens) summed
}

// Matrix is one importance matrix.
type Matrix struct {
	Datasets   []string
	ChunkCount uint32
	ChunkSize  uint32
	Entries    []Entry
}

// Write writes m to path as llama-imatrix does: the four keys in its
// order, the entries sorted by name, F32 data at GGUF's default alignment.
func Write(path string, m Matrix) error {
	entries := slices.Clone(m.Entries)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	for i, e := range entries {
		if len(e.Counts) == 0 || len(e.Sums) == 0 || len(e.Sums)%len(e.Counts) != 0 {
			return fmt.Errorf("imatrix %s: %d sums do not divide into %d matrices", e.Name, len(e.Sums), len(e.Counts))
		}
		if i > 0 && entries[i-1].Name == e.Name {
			return fmt.Errorf("imatrix: entry %s appears twice", e.Name)
		}
	}
	w, err := gguf.NewWriter(path, 0)
	if err != nil {
		return err
	}
	defer w.Abort()
	datasets := m.Datasets
	if datasets == nil {
		datasets = []string{}
	}
	for _, kv := range []struct {
		k string
		v any
	}{{KeyType, "imatrix"}, {KeyDatasets, datasets}, {KeyChunkCount, m.ChunkCount}, {KeyChunkSize, m.ChunkSize}} {
		if err := w.SetKV(kv.k, kv.v); err != nil {
			return err
		}
	}
	for _, e := range entries {
		nmat := uint64(len(e.Counts))
		if err := w.AddTensor(e.Name+".in_sum2", quant.F32, shape(uint64(len(e.Sums))/nmat, nmat)); err != nil {
			return err
		}
		if err := w.AddTensor(e.Name+".counts", quant.F32, shape(1, nmat)); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := w.WriteTensorData(e.Name+".in_sum2", f32Bytes(e.Sums)); err != nil {
			return err
		}
		if err := w.WriteTensorData(e.Name+".counts", f32Bytes(e.Counts)); err != nil {
			return err
		}
	}
	return w.Close()
}

// shape is ggml's ne of a 2-d tensor as gguf writes it: trailing
// dimensions of size 1 dropped (ggml_n_dims).
func shape(ne0, ne1 uint64) []uint64 {
	if ne1 == 1 {
		return []uint64{ne0}
	}
	return []uint64{ne0, ne1}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// Read reads an imatrix GGUF, checking what llama-quantize's loader
// checks: the type, and an in_sum2 and a counts F32 tensor of matching
// shapes for every entry.
func Read(path string) (Matrix, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return Matrix{}, err
	}
	defer f.Close()
	var m Matrix
	if typ, err := f.String(KeyType); err != nil || typ != "imatrix" {
		return m, fmt.Errorf("%s: not an imatrix GGUF (general.type is not \"imatrix\")", path)
	}
	if m.Datasets, err = f.Strings(KeyDatasets); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if m.ChunkCount, err = f.Uint32(KeyChunkCount); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if m.ChunkSize, err = f.Uint32(KeyChunkSize); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	for _, ti := range f.Tensors {
		name, ok := strings.CutSuffix(ti.Name, ".in_sum2")
		if !ok {
			if _, isCount := strings.CutSuffix(ti.Name, ".counts"); isCount {
				continue
			}
			return m, fmt.Errorf("%s: tensor %s is neither <name>.in_sum2 nor <name>.counts", path, ti.Name)
		}
		ci, ok := f.Tensor(name + ".counts")
		if !ok {
			return m, fmt.Errorf("%s: %s has no %s.counts", path, ti.Name, name)
		}
		if ti.Type != quant.F32 || ci.Type != quant.F32 {
			return m, fmt.Errorf("%s: %s: in_sum2 is %s and counts %s, want F32", path, name, ti.Type, ci.Type)
		}
		sums, err := f32s(f, ti.Name)
		if err != nil {
			return m, fmt.Errorf("%s: %w", path, err)
		}
		counts, err := f32s(f, ci.Name)
		if err != nil {
			return m, fmt.Errorf("%s: %w", path, err)
		}
		if len(counts) == 0 || len(sums)%len(counts) != 0 {
			return m, fmt.Errorf("%s: %s: %d sums for %d counts", path, name, len(sums), len(counts))
		}
		m.Entries = append(m.Entries, Entry{Name: name, Sums: sums, Counts: counts})
	}
	return m, nil
}

func f32s(f *gguf.File, name string) ([]float32, error) {
	b, err := f.TensorData(name)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// FromSafetensors reads a matrix kept as safetensors (how cogumi's torch
// runtime hands it over): F32 tensors "<name>.in_sum2" and "<name>.counts"
// per entry, and the chunk count as the metadata value "chunk_count".
// Datasets and ChunkSize are the caller's to set.
func FromSafetensors(path string) (Matrix, error) {
	var m Matrix
	f, err := safetensors.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	n, err := strconv.ParseUint(f.Metadata()["chunk_count"], 10, 32)
	if err != nil {
		return m, fmt.Errorf("%s: chunk_count: %w", path, err)
	}
	m.ChunkCount = uint32(n)
	for _, name := range f.Names() {
		base, ok := strings.CutSuffix(name, ".in_sum2")
		if !ok {
			continue
		}
		sums, err := f32Tensor(f, name)
		if err != nil {
			return m, err
		}
		counts, err := f32Tensor(f, base+".counts")
		if err != nil {
			return m, err
		}
		if len(counts) == 0 || len(sums)%len(counts) != 0 {
			return m, fmt.Errorf("%s: %s: %d sums for %d counts", path, base, len(sums), len(counts))
		}
		m.Entries = append(m.Entries, Entry{Name: base, Sums: sums, Counts: counts})
	}
	return m, nil
}

func f32Tensor(f *safetensors.File, name string) ([]float32, error) {
	info, ok := f.Tensor(name)
	if !ok || info.DType != safetensors.F32 {
		return nil, fmt.Errorf("%s: no F32 tensor %s", f.Path(), name)
	}
	out := make([]float32, info.NumElements())
	safetensors.DecodeF32(out, f.Bytes(name), safetensors.F32)
	return out, nil
}
