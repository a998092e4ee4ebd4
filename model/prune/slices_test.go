package prune

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		n    int64
		want int64
	}{
		{0.5, 3, 2}, {0.29, 100, 29}, {0.65, 1000, 650}, {0, 10, 0}, {1, 10, 10}, {0.65, 0, 0}, {0.04, 10, 0}, {0.05, 10, 1},
	} {
		if got := Count(tc.s, tc.n); got != tc.want {
			t.Errorf("Count(%v, %d) = %d, want %d", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestUnstructuredKnownArrays(t *testing.T) {
	for _, tc := range []struct {
		w    []float32
		s    float64
		want []float32
	}{
		{[]float32{0.5, -0.1, 0.3, 0, -0.7, 0.1, 0.2, -0.3}, 0.5, []float32{0.5, 0, 0.3, 0, -0.7, 0, 0, -0.3}},
		// Ties go to the lower index.
		{[]float32{1, -1, 1, -1}, 0.5, []float32{0, 0, 1, -1}},
		{[]float32{3, 2, 1}, 0.5, []float32{3, 0, 0}},
		{[]float32{3, 2, 1}, 0, []float32{3, 2, 1}},
		{[]float32{3, 2, 1}, 1, []float32{0, 0, 0}},
		// NaN ranks above infinity: pruned last.
		{[]float32{float32(math.NaN()), float32(math.Inf(-1)), 1e-30}, 0.67, []float32{float32(math.NaN()), 0, 0}},
	} {
		w := slices.Clone(tc.w)
		n, err := Unstructured(w, tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if n != Count(tc.s, int64(len(w))) {
			t.Errorf("Unstructured(%v, %v) reports %d", tc.w, tc.s, n)
		}
		for i := range w {
			if w[i] != tc.want[i] && !(math.IsNaN(float64(w[i])) && math.IsNaN(float64(tc.want[i]))) {
				t.Errorf("Unstructured(%v, %v) = %v, want %v", tc.w, tc.s, w, tc.want)
				break
			}
		}
	}
	if _, err := Unstructured([]float32{1}, 1.5); err == nil {
		t.Error("sparsity 1.5 accepted")
	}
}

// TestUnstructuredMatchesSort checks the radix selection against a full
// sort on random data with many ties and values spread over the float range
// (so that both histogram levels matter).
func TestUnstructuredMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for trial := range 50 {
		n := 1 + r.IntN(5000)
		w := make([]float32, n)
		for i := range w {
			switch r.IntN(4) {
			case 0:
				w[i] = float32(r.IntN(5)) * 0.25 // ties
			case 1:
				w[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
			default:
				w[i] = math.Float32frombits(0x3c000000 + uint32(r.IntN(200))) // same high bits
			}
			if r.IntN(2) == 0 {
				w[i] = -w[i]
			}
		}
		s := r.Float64()
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return abs(w[idx[a]]) < abs(w[idx[b]]) })
		want := slices.Clone(w)
		for _, i := range idx[:Count(s, int64(n))] {
			want[i] = 0
		}
		got := slices.Clone(w)
		if _, err := Unstructured(got, s); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (n %d, s %v): radix selection differs from a sort", trial, n, s)
		}
	}
}

func abs(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func TestSemiStructured(t *testing.T) {
	w := []float32{
		0.1, -0.4, 0.3, 0.2, 1, 1, 1, 1, // row 0: ties go to the earlier weights
		0, 0, 0, 5, -3, 2, -1, 4, // row 1: already sparse groups stay valid
	}
	want := []float32{
		0, -0.4, 0.3, 0, 0, 0, 1, 1,
		0, 0, 0, 5, -3, 0, 0, 4,
	}
	if err := SemiStructured(w, 8, 2, 4); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w, want) {
		t.Errorf("SemiStructured = %v, want %v", w, want)
	}
	r := rand.New(rand.NewPCG(2, 2))
	big := make([]float32, 64*256)
	for i := range big {
		big[i] = float32(r.NormFloat64())
	}
	orig := slices.Clone(big)
	if err := SemiStructured(big, 256, 2, 4); err != nil {
		t.Fatal(err)
	}
	checkNM(t, "random", orig, big, 2, 4)
	for _, bad := range []struct{ row, n, m int }{{6, 2, 4}, {8, 4, 4}, {8, 0, 4}, {0, 2, 4}} {
		if err := SemiStructured(make([]float32, 24), bad.row, bad.n, bad.m); err == nil {
			t.Errorf("SemiStructured(row %d, %d:%d) accepted", bad.row, bad.n, bad.m)
		}
	}
}

// checkNM verifies every group of m: exactly the n smallest (ties to the
// earlier) are zero, and the others keep their value.
func checkNM(t *testing.T, name string, orig, pruned []float32, n, m int) {
	t.Helper()
	for g := 0; g < len(orig); g += m {
		idx := make([]int, m)
		for j := range idx {
			idx[j] = g + j
		}
		sort.SliceStable(idx, func(a, b int) bool { return abs(orig[idx[a]]) < abs(orig[idx[b]]) })
		for rank, i := range idx {
			if rank < n && pruned[i] != 0 {
				t.Fatalf("%s: group at %d: weight %d (%v) should be zero", name, g, i, orig[i])
			}
			if rank >= n && math.Float32bits(pruned[i]) != math.Float32bits(orig[i]) {
				t.Fatalf("%s: group at %d: weight %d changed from %v to %v", name, g, i, orig[i], pruned[i])
			}
		}
	}
}

func TestSelection(t *testing.T) {
	p, _ := Options{}.plan()
	for name, want := range map[string]bool{
		"model.layers.0.self_attn.q_proj.weight":       true,
		"model.layers.31.mlp.down_proj.weight":         true,
		"model.layers.3.self_attn.o_proj.weight":       true,
		"model.layers.3.self_attn.q_proj.bias":         false,
		"model.layers.x.mlp.up_proj.weight":            false,
		"model.layers.0.input_layernorm.weight":        false,
		"model.embed_tokens.weight":                    false,
		"lm_head.weight":                               false,
		"model.norm.weight":                            false,
		"model.layers.0.self_attn.rotary_emb.inv_freq": false,
	} {
		if got := p.selected(name); got != want {
			t.Errorf("default selection of %s = %v", name, got)
		}
	}
	p, _ = Options{Include: []string{"model.layers.*.mlp.*", "lm_head.weight"}, Exclude: []string{"model.layers.1.*"}}.plan()
	for name, want := range map[string]bool{
		"model.layers.0.mlp.up_proj.weight":      true,
		"model.layers.1.mlp.up_proj.weight":      false,
		"lm_head.weight":                         true,
		"model.layers.0.self_attn.q_proj.weight": false,
	} {
		if got := p.selected(name); got != want {
			t.Errorf("include/exclude selection of %s = %v", name, got)
		}
	}
}
