package awq

import "golang.org/x/sys/cpu"

// hasFMA says whether dot4x2FMA can run here (AVX2 and FMA3).
var hasFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// Kernel names the arithmetic that computes the search's errors here: the
// AVX2/FMA kernel and plain Go round differently, so a near-tie may pick
// another ratio. The awq rule puts it into its version (and so the key).
func Kernel() string {
	if hasFMA {
		return "amd64-avx2fma"
	}
	return "amd64-go"
}

//go:noescape
func dot4x2FMA(x0, x1, x2, x3, e0, e1 *float32, n int, out *[8]float32)

// dot4x2 computes the eight dot products of x0..x3 with e0 and e1 (all of
// len(e0) values): 8-wide fused multiply-adds where the CPU has them.
func dot4x2(x0, x1, x2, x3, e0, e1 []float32) (a00, a01, a10, a11, a20, a21, a30, a31 float32) {
	m := len(e0)
	if !hasFMA || m < 8 {
		return dot4x2Go(x0, x1, x2, x3, e0, e1)
	}
	x0, x1, x2, x3, e1 = x0[:m], x1[:m], x2[:m], x3[:m], e1[:m]
	v := m &^ 7
	var o [8]float32
	dot4x2FMA(&x0[0], &x1[0], &x2[0], &x3[0], &e0[0], &e1[0], v, &o)
	if v < m {
		b00, b01, b10, b11, b20, b21, b30, b31 := dot4x2Go(x0[v:], x1[v:], x2[v:], x3[v:], e0[v:], e1[v:])
		o[0], o[1], o[2], o[3] = o[0]+b00, o[1]+b01, o[2]+b10, o[3]+b11
		o[4], o[5], o[6], o[7] = o[4]+b20, o[5]+b21, o[6]+b30, o[7]+b31
	}
	return o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]
}
