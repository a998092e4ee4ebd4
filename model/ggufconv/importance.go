package ggufconv

import (
	"fmt"
	"math"

	"github.com/cogumi/cogumi/model/imatrix"
	"github.com/cogumi/cogumi/model/quant"
)

// The keys llama-quantize adds when it quantises with an importance matrix
// (tools/quantize/quantize.cpp, LLM_KV_QUANTIZE_IMATRIX_*).
const (
	KeyImatrixFile    = "quantize.imatrix.file"
	KeyImatrixDataset = "quantize.imatrix.dataset"
	KeyImatrixEntries = "quantize.imatrix.entries_count"
	KeyImatrixChunks  = "quantize.imatrix.chunks_count"
)

// typeChoice parses what the options say about the storage types.
func (o *Options) typeChoice() (typeChoice, error) {
	c := typeChoice{pure: o.Pure, hasImatrix: o.Imatrix != nil}
	var err error
	if c.overrides, err = parseOverrides(o.TensorTypes); err != nil {
		return c, err
	}
	c.used = make([]bool, len(c.overrides))
	for _, x := range []struct {
		name, val string
		dst       **quant.Type
	}{{"token embedding type", o.TokenEmbeddingType, &c.tokenEmbd}, {"output tensor type", o.OutputTensorType, &c.output}} {
		if x.val == "" {
			continue
		}
		t, err := ParseTensorType(x.val)
		if err != nil {
			return c, fmt.Errorf("%s: %w", x.name, err)
		}
		*x.dst = &t
	}
	return c, nil
}

// importance is an importance matrix as llama-quantize's load_imatrix
// hands it to llama_model_quantize: per entry name, one weight per column.
type importance struct {
	weights  map[string][]float32
	entries  int
	chunks   uint32
	datasets []string
}

// newImportance normalises m as load_imatrix does for a GGUF imatrix:
// each count rounded to an integer (std::lround), each column's sum
// divided by its matrix's count as float, or 1 where the count is not
// positive; and refuses non-finite weights, as llama_model_quantize does.
func newImportance(m *imatrix.Matrix) (*importance, error) {
	if len(m.Entries) == 0 {
		return nil, fmt.Errorf("it has no entries")
	}
	im := &importance{weights: make(map[string][]float32, len(m.Entries)), chunks: m.ChunkCount, datasets: m.Datasets}
	for _, e := range m.Entries {
		if len(e.Counts) == 0 || len(e.Sums)%len(e.Counts) != 0 {
			return nil, fmt.Errorf("entry %s: %d sums for %d counts", e.Name, len(e.Sums), len(e.Counts))
		}
		ne0 := len(e.Sums) / len(e.Counts)
		w := make([]float32, len(e.Sums))
		for j, c := range e.Counts {
			count := float32(int64(math.Round(float64(c))))
			for i := range ne0 {
				k := j*ne0 + i
				if count > 0 {
					w[k] = e.Sums[k] / count
				} else {
					w[k] = 1
				}
				if math.IsNaN(float64(w[k])) || math.IsInf(float64(w[k]), 0) {
					return nil, fmt.Errorf("entry %s: column %d has the non-finite weight %v", e.Name, k, w[k])
				}
			}
		}
		if _, dup := im.weights[e.Name]; !dup {
			im.entries++
		}
		im.weights[e.Name] = w
	}
	return im, nil
}

// assign gives every tensor that is quantised (stored other than F32)
// the weights of the entry of its name, as llama_model_quantize looks
// them up. An entry whose size is not the tensor's row length is an
// error, except for token_embd.weight, which is then quantised without;
// the returned warnings name the linear weights the matrix has no entry
// for.
func (im *importance) assign(plans []*tensorPlan) ([]string, error) {
	var warnings []string
	for _, p := range plans {
		if p.typ == quant.F32 {
			continue
		}
		w, ok := im.weights[p.name]
		switch cat := categorize(p.name); {
		case !ok:
			if cat != catTokenEmbd && cat != catOutput {
				warnings = append(warnings, fmt.Sprintf("the importance matrix has no entry for %s, quantised without one", p.name))
			}
		case len(w) == p.rowLen:
			p.weights = w
		case cat != catTokenEmbd:
			return nil, fmt.Errorf("its entry for %s has %d values, but the tensor's rows have %d: it was computed on another model", p.name, len(w), p.rowLen)
		}
	}
	return warnings, nil
}

// metadata returns the keys llama-quantize writes after general.file_type
// (as --override-kv values): the file name and the first dataset, each cut
// to 127 bytes (its kv override's string buffer), the number of entries
// and, when known, of chunks.
func (im *importance) metadata(file string) []kv {
	cut := func(s string) string {
		if len(s) > 127 {
			return s[:127]
		}
		return s
	}
	out := []kv{{KeyImatrixFile, cut(file)}}
	if len(im.datasets) > 0 {
		out = append(out, kv{KeyImatrixDataset, cut(im.datasets[0])})
	}
	out = append(out, kv{KeyImatrixEntries, uint32(im.entries)})
	if im.chunks > 0 {
		out = append(out, kv{KeyImatrixChunks, im.chunks})
	}
	return out
}

// checkImatrix refuses, as llama-quantize does, a file type whose tensors
// need an importance matrix (the Q2_K tensors of Q2_K_S, the IQ3_XXS and
// 2-bit i-quant tensors) when a tensor that needs one has none.
func checkImatrix(plans []*tensorPlan, ft fileType, given bool) error {
	for _, p := range plans {
		switch {
		case p.weights != nil || !requiresImatrix(p, ft):
		case given:
			return fmt.Errorf("%s needs an importance matrix for every %s tensor, and the one given has no entry for %s (llama-quantize refuses this too): compute the imatrix on this model", ft.name, p.typ, p.name)
		default:
			return fmt.Errorf("%s needs an importance matrix: %s would be %s, which llama-quantize refuses to write without one; give the gguf target imatrix = \":im\", an imatrix target of this model", ft.name, p.name, p.typ)
		}
	}
	return nil
}
