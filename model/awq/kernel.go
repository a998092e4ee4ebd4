package awq

// sumSquares returns ||X E^T||^2 = sum over i, r of (x_i . e_r)^2, for X
// (n rows of in values) and E (c rows of in values), both row-major. acc
// must hold n*c values. This is the search's hot loop: the output error of
// a block of quantised rows on every calibration row.
//
// Go does not vectorise, so speed comes from register blocking (4 rows of
// X by 2 rows of E: 8 independent accumulators, 6 loads per 8
// multiply-adds) and from walking the inputs in chunks of kc values, so that
// the chunk of E stays in L1 while the chunk of X streams from L2.
func sumSquares(x []float32, n, in int, e []float32, c int, acc []float32) float64 {
	const kc = 256
	acc = acc[:n*c]
	clear(acc)
	for k0 := 0; k0 < in; k0 += kc {
		k1 := min(k0+kc, in)
		i := 0
		for ; i+4 <= n; i += 4 {
			x0 := x[i*in+k0 : i*in+k1]
			x1 := x[(i+1)*in+k0 : (i+1)*in+k1]
			x2 := x[(i+2)*in+k0 : (i+2)*in+k1]
			x3 := x[(i+3)*in+k0 : (i+3)*in+k1]
			r := 0
			for ; r+2 <= c; r += 2 {
				e0 := e[r*in+k0 : r*in+k1]
				e1 := e[(r+1)*in+k0 : (r+1)*in+k1]
				a00, a01, a10, a11, a20, a21, a30, a31 := dot4x2(x0, x1, x2, x3, e0, e1)
				acc[i*c+r] += a00
				acc[i*c+r+1] += a01
				acc[(i+1)*c+r] += a10
				acc[(i+1)*c+r+1] += a11
				acc[(i+2)*c+r] += a20
				acc[(i+2)*c+r+1] += a21
				acc[(i+3)*c+r] += a30
				acc[(i+3)*c+r+1] += a31
			}
			for ; r < c; r++ {
				e0 := e[r*in+k0 : r*in+k1]
				acc[i*c+r] += dot(x0, e0)
				acc[(i+1)*c+r] += dot(x1, e0)
				acc[(i+2)*c+r] += dot(x2, e0)
				acc[(i+3)*c+r] += dot(x3, e0)
			}
		}
		for ; i < n; i++ {
			xi := x[i*in+k0 : i*in+k1]
			for r := 0; r < c; r++ {
				acc[i*c+r] += dot(xi, e[r*in+k0:r*in+k1])
			}
		}
	}
	var s float64
	for _, v := range acc {
		s += float64(v) * float64(v)
	}
	return s
}

func dot4x2Go(x0, x1, x2, x3, e0, e1 []float32) (a00, a01, a10, a11, a20, a21, a30, a31 float32) {
	m := len(e0)
	x0, x1, x2, x3, e1 = x0[:m], x1[:m], x2[:m], x3[:m], e1[:m]
	for k := 0; k < m; k++ {
		u, v := e0[k], e1[k]
		p, q, r, s := x0[k], x1[k], x2[k], x3[k]
		a00 += p * u
		a01 += p * v
		a10 += q * u
		a11 += q * v
		a20 += r * u
		a21 += r * v
		a30 += s * u
		a31 += s * v
	}
	return
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}
