package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestQxTrialsAsm compares the assembly trials with qxTrialsGo bit for bit,
// on ordinary blocks and on blocks with zeros, infinities and NaNs (whose
// levels come from nearestInt's bit trick).
func TestQxTrialsAsm(t *testing.T) {
	if !haveQxTrialsAsm {
		t.Skip("no assembly on this architecture")
	}
	r := rand.New(rand.NewPCG(1, 2))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0xFFC12345), math.Float32frombits(0x7F812345), 1e-40, 3e38}
	for trial := range 20000 {
		n := []int{1, 8, 16, 32}[trial%4]
		x, w, wx := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
			w[i] = float32(r.ExpFloat64())
			if trial%3 == 0 && r.IntN(8) == 0 {
				x[i] = special[r.IntN(len(special))]
			}
			if trial%5 == 0 && r.IntN(8) == 0 {
				w[i] = special[r.IntN(len(special))]
			}
			wx[i] = float32(w[i] * x[i])
		}
		nmax := []int32{4, 8, 16, 32}[r.IntN(4)]
		maxv := x[r.IntN(n)]
		var is [4]float32
		for k := range is {
			is[k] = -(float32(nmax) + float32(0.1*float32(r.IntN(19)-9))) / maxv
		}
		if trial%7 == 0 {
			is[r.IntN(4)] = special[r.IntN(len(special))]
		}
		var got, want [8]float32
		qxTrialsAsm(x, w, wx, &is, float32(-nmax), float32(nmax-1), &got)
		qxTrialsGo(x, w, wx, &is, -nmax, nmax-1, &want)
		for k := range got {
			// NaN sums: the trial is never chosen, whatever the payload.
			if math.Float32bits(got[k]) != math.Float32bits(want[k]) && !(got[k] != got[k] && want[k] != want[k]) {
				t.Fatalf("trial %d (n %d, nmax %d, is %v): sum %d = %v (%#x), want %v (%#x)\nx %v\nw %v",
					trial, n, nmax, is, k, got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]), x, w)
			}
		}
	}
}
