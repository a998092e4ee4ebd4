package tinyllama

import (
	"fmt"
	"math/rand/v2"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/imatrix"
)

// ImatrixEntries are seeded random importance-matrix entries for cfg, laid
// out as the imatrix rule writes them: one per linear weight of every
// layer, with sums of squares over tokens tokens. The same seeds give the
// same entries, so golden files built on them stay put.
func ImatrixEntries(cfg *checkpoint.Config, seed1, seed2 uint64, tokens int) []imatrix.Entry {
	r := rand.New(rand.NewPCG(seed1, seed2))
	var entries []imatrix.Entry
	for l := range cfg.NumHiddenLayers {
		for _, w := range []struct {
			name string
			cols int
		}{{"attn_q", cfg.HiddenSize}, {"attn_k", cfg.HiddenSize}, {"attn_v", cfg.HiddenSize},
			{"attn_output", cfg.NumAttentionHeads * cfg.HeadDimension()}, {"ffn_gate", cfg.HiddenSize},
			{"ffn_up", cfg.HiddenSize}, {"ffn_down", cfg.IntermediateSize}} {
			sums := make([]float32, w.cols)
			for i := range sums {
				sums[i] = float32(r.ExpFloat64()*r.ExpFloat64()) * float32(tokens)
			}
			entries = append(entries, imatrix.Entry{Name: fmt.Sprintf("blk.%d.%s.weight", l, w.name), Sums: sums, Counts: []float32{float32(tokens)}})
		}
	}
	return entries
}
