package awq

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cogumi/cogumi/model/safetensors"
)

// BenchmarkSearchLayer times the search of one decoder layer at
// TinyLlama-1.1B's shape (hidden 2048, intermediate 5632, 32 heads, 4 KV
// heads: o is skipped for GQA, as in the real run), with synthetic weights
// and 512 calibration rows, on every CPU. It reports seconds per layer and
// the extrapolated seconds per billion linear weights.
//
//	go test ./awq -run '^$' -bench SearchLayer -benchtime 1x
//
// grp is one group of linears sharing an input.
type grp struct {
	x    *input
	lins []linear
}

func BenchmarkSearchLayer(b *testing.B) {
	const hidden, inter, heads, kvHeads, rows = 2048, 5632, 32, 4, 512
	hd := hidden / heads
	r := rand.New(rand.NewPCG(5, 5))
	lin := func(name string, out, in int) linear {
		w := make([]float32, out*in)
		for i := range w {
			w[i] = float32(0.02 * r.NormFloat64())
		}
		return linear{name: name, w: w, out: out, in: in}
	}
	inputOf := func(in int) *input {
		ts := synthInput(r, "x", rows, in)
		return &input{meanAbs: ts[0].data, rows: ts[1].data, n: rows, in: in}
	}
	groups := []grp{
		{inputOf(hidden), []linear{lin("q", heads*hd, hidden), lin("k", kvHeads*hd, hidden), lin("v", kvHeads*hd, hidden)}},
		{inputOf(hidden), []linear{lin("gate", inter, hidden), lin("up", inter, hidden)}},
		{inputOf(inter), []linear{lin("down", hidden, inter)}},
	}
	// Every linear of the layer, o included: the parameters the time is
	// spread over when extrapolating.
	params := float64(heads*hd*hidden + 2*kvHeads*hd*hidden + hidden*heads*hd + 3*hidden*inter)
	for _, target := range []string{TargetQ4_0, TargetQ4_K, TargetG128} {
		for _, stride := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/stride%d", target, stride), func(b *testing.B) {
				benchSearch(b, target, stride, groups, params)
			})
		}
	}
}

// benchSearch times the search of one layer's groups.
func benchSearch(b *testing.B, target string, stride int, groups []grp, params float64) {
	q, err := newQuantizer(target)
	if err != nil {
		b.Fatal(err)
	}
	s := &searcher{q: q, dtype: safetensors.BF16, grid: DefaultGrid, workers: defaultWorkers(), stride: stride}
	for b.Loop() {
		for _, g := range groups {
			if _, err := s.search(context.Background(), g.x, g.lins); err != nil {
				b.Fatal(err)
			}
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/layer")
	b.ReportMetric(sec/params*1e9/60, "min/Bparams")
	b.Logf("%s, search_stride %d, %d workers: %.1f s per layer; %.1f min per billion linear weights (TinyLlama-1.1B, 22 layers: %.1f min)",
		target, stride, s.workers, sec, sec/params*1e9/60, 22*sec/60)
}
