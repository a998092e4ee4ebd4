package awq

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestSumSquares checks the blocked kernel against the plain definition,
// with sizes that leave remainders in every loop.
func TestSumSquares(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range [][3]int{{7, 300, 5}, {8, 512, 16}, {1, 3, 1}, {13, 257, 3}} {
		n, in, c := sz[0], sz[1], sz[2]
		x, e := randSlice(r, n*in), randSlice(r, c*in)
		var want float64
		for i := 0; i < n; i++ {
			for j := 0; j < c; j++ {
				var d float64
				for k := 0; k < in; k++ {
					d += float64(x[i*in+k]) * float64(e[j*in+k])
				}
				want += d * d
			}
		}
		got := sumSquares(x, n, in, e, c, make([]float32, n*c))
		if math.Abs(got-want) > 1e-4*want {
			t.Errorf("n=%d in=%d c=%d: got %g, want %g", n, in, c, got, want)
		}
	}
}

func BenchmarkSumSquares(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n, in, c := 512, 2048, 16
	x, e := randSlice(r, n*in), randSlice(r, c*in)
	acc := make([]float32, n*c)
	b.ResetTimer()
	for b.Loop() {
		sumSquares(x, n, in, e, c, acc)
	}
	b.ReportMetric(float64(b.N)*float64(n*in*c)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

// TestDot4x2 checks each of the eight products of the (possibly assembly)
// kernel against the portable one, including tails shorter than a vector.
func TestDot4x2(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, m := range []int{1, 7, 8, 9, 64, 100} {
		v := make([][]float32, 6)
		for i := range v {
			v[i] = randSlice(r, m)
		}
		var got, want [8]float32
		got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7] = dot4x2(v[0], v[1], v[2], v[3], v[4], v[5])
		want[0], want[1], want[2], want[3], want[4], want[5], want[6], want[7] = dot4x2Go(v[0], v[1], v[2], v[3], v[4], v[5])
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Sqrt(float64(m)) {
				t.Errorf("m=%d: product %d = %v, want %v", m, i, got[i], want[i])
			}
		}
	}
}
