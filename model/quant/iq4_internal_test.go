package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bestIndexSearch is ggml's best_index_int8 as written: a binary search.
func bestIndexSearch(val *[16]int8, x float32) uint8 {
	if x <= float32(val[0]) {
		return 0
	}
	if x >= float32(val[15]) {
		return 15
	}
	ml, mu := 0, 15
	for mu-ml > 1 {
		mav := (ml + mu) / 2
		if x < float32(val[mav]) {
			mu = mav
		} else {
			ml = mav
		}
	}
	if x-float32(val[mu-1]) < float32(val[mu])-x {
		return uint8(mu - 1)
	}
	return uint8(mu)
}

// TestBestIndexInt8 checks the table lookup against the binary search on
// the levels, the midpoints between them, their float32 neighbours,
// integers and random values over the whole range, and Inf and NaN.
func TestBestIndexInt8(t *testing.T) {
	vals := kvaluesIQ4NL()
	lv := iq4LevelTable()
	var xs []float32
	for k := -130; k <= 116; k++ {
		xs = append(xs, float32(k), float32(k)+0.5)
	}
	for i := range 15 {
		xs = append(xs, (float32(vals[i])+float32(vals[i+1]))/2)
	}
	for _, x := range xs[:len(xs):len(xs)] {
		xs = append(xs, math.Nextafter32(x, -200), math.Nextafter32(x, 200))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		xs = append(xs, float32(rng.Float64()*260-135))
	}
	xs = append(xs, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)))
	for _, x := range xs {
		if got, want := lv.bestIndexInt8(x), bestIndexSearch(&vals, x); got != want {
			t.Fatalf("bestIndexInt8(%v) = %d, the binary search gives %d", x, got, want)
		}
	}
}
