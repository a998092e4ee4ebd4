package quant

import "math"

// The k-quant super-block formats (ggml-common.h), 256 weights each:
//
//	Q4_K: d f16, dmin f16, scales[12], qs[128]             (144 bytes)
//	Q5_K: d f16, dmin f16, scales[12], qh[32], qs[128]     (176 bytes)
//	Q6_K: ql[128], qh[64], scales[16] int8, d f16          (210 bytes)
//
// Q4_K/Q5_K hold eight sub-blocks of 32 with a 6-bit scale and a 6-bit min
// each, packed into 12 bytes (see getScaleMinK4); Q6_K holds sixteen
// sub-blocks of 16 with an 8-bit signed scale.

// groupMaxEps is ggml's GROUP_MAX_EPS: below it a group counts as all zero.
const groupMaxEps = float32(1e-15)

// kScratch is the per-call working memory of the k-quant references. It
// lives on the stack of the calling function (about 2 KiB), so quantising a
// row allocates nothing.
type kScratch struct {
	L       [QK_K]uint8
	xm      [32]float32 // x - min
	fl      [32]float32 // levels of the current trial
	bestL   [32]float32 // levels of the best trial so far
	weights [32]float32
	mins    [QK_K / 32]float32
	scales  [QK_K / 32]float32
}

// makeQkx2Quants is make_qkx2_quants for n = 32: an asymmetric (scale, min)
// fit of x with levels 0..nmax, refined over nstep+1 trial scales. It
// returns the scale and the negated min; L receives the levels.
//
// Every float operation of the C code happens here in the same order, but
// the loops keep x-min and the levels as floats (xm, fl, bestL), which the C
// code recomputes each time: the same operations on the same values give the
// same results, and the hot loops run fewer instructions.
func makeQkx2Quants(nmax int32, x *[32]float32, weights *[32]float32, L *[32]uint8, s *kScratch,
	rmin, rdelta float32, nstep int) (scale, theMin float32) {
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < 32; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		*L = [32]uint8{}
		return 0, -lo
	}
	xm, fl, bestL := &s.xm, &s.fl, &s.bestL
	for i := range xm {
		xm[i] = x[i] - lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	var bestError float32
	for i := range 32 {
		l := max(0, min(nmax, nearestInt(float32(iscale*xm[i]))))
		f := float32(l)
		bestL[i] = f
		diff := float32(float32(scale*f)+lo) - x[i]
		diff = float32(diff * diff)
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		nstep = -1 // the C code returns before the refinement
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := range 32 {
			l := max(0, min(nmax, nearestInt(float32(iscale*xm[i]))))
			f := float32(l)
			fl[i] = f
			wl := float32(weights[i] * f)
			sumL += wl
			sumL2 += float32(wl * f)
			sumXL += float32(wl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if !(D > 0) {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var curError float32
		for i := range 32 {
			diff := float32(float32(thisScale*fl[i])+thisMin) - x[i]
			diff = float32(diff * diff)
			curError += float32(weights[i] * diff)
		}
		if curError < bestError {
			*bestL = *fl
			bestError = curError
			scale = thisScale
			if math.Float32bits(thisMin) != math.Float32bits(lo) {
				lo = thisMin
				for i := range xm {
					xm[i] = x[i] - lo
				}
			}
		}
	}
	for i, f := range bestL {
		L[i] = uint8(f)
	}
	return scale, -lo
}

// makeQxQuants16 is make_qx_quants for n = 16, nmax = 32, rmse_type = 1 and
// no importance weights (the only way quantize_row_q6_K_ref calls it): a
// symmetric fit with levels -32..31 stored as 0..63 in L, weighted by x^2,
// refined over 18 trial scales.
//
// The weights x^2 and x^3 are computed once; qxBest runs the trials four
// at a time (see qxtrials.go).
func makeQxQuants16(x *[16]float32, L *[16]int8) float32 {
	const nmax = 32
	var maxv, amax float32
	for _, v := range x {
		if av := abs32(v); av > amax {
			amax, maxv = av, v
		}
	}
	if amax < groupMaxEps {
		*L = [16]int8{}
		return 0
	}
	var w, wx [16]float32
	for i, v := range x {
		w[i] = float32(v * v)
		wx[i] = float32(w[i] * v) // the C code's w*x[i], before "*l"
	}
	iscale := -nmax / maxv
	var sumlx, suml2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
		L[i] = int8(l + nmax)
		fl := float32(l)
		sumlx += float32(wx[i] * fl)
		suml2 += float32(float32(w[i]*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	return qxBest(x[:], w[:], wx[:], L[:], nmax, maxv, scale, best)
}

// getScaleMinK4 unpacks the 6-bit scale and min of sub-block j from the 12
// packed bytes of a Q4_K/Q5_K block (get_scale_min_k4).
func getScaleMinK4(j int, q *[12]byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xF | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// packScalesK4 is the inverse of getScaleMinK4 for the levels in ls/lm,
// written in the reference's order (j < 4 assigns, j >= 4 ORs in the top
// bits), so every one of the 12 bytes is fully determined.
func packScalesK4(q *[12]byte, ls, lm *[8]uint8) {
	for j := range 8 {
		if j < 4 {
			q[j] = ls[j]
			q[j+4] = lm[j]
		} else {
			q[j+4] = ls[j]&0xF | (lm[j]&0xF)<<4
			q[j-4] |= (ls[j] >> 4) << 6
			q[j] |= (lm[j] >> 4) << 6
		}
	}
}

// kScalesAndMins runs the per-sub-block fit shared by Q4_K and Q5_K and
// quantises the eight scales and mins to 6 bits against their maxima, as
// quantize_row_q4_K_ref / quantize_row_q5_K_ref. It returns the super-block
// scales (before F16 rounding) and fills s.L with the first-pass levels.
func kScalesAndMins(x *[QK_K]float32, s *kScratch, nmax int32, rmin, rdelta float32, nstep int,
	scalesOut *[12]byte) (dMax, mMax float32) {
	var maxScale, maxMin float32
	for j := range QK_K / 32 {
		xs := (*[32]float32)(x[32*j:])
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			s.weights[l] = avX + abs32(v)
		}
		s.scales[j], s.mins[j] = makeQkx2Quants(nmax, xs, &s.weights, (*[32]uint8)(s.L[32*j:]), s, rmin, rdelta, nstep)
		if s.scales[j] > maxScale {
			maxScale = s.scales[j]
		}
		if s.mins[j] > maxMin {
			maxMin = s.mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := range QK_K / 32 {
		// uint8_t ls = nearest_int(...): the int is truncated to 8 bits
		// before MIN(63, ls).
		ls[j] = min(63, uint8(nearestInt(float32(invScale*s.scales[j]))))
		lm[j] = min(63, uint8(nearestInt(float32(invMin*s.mins[j]))))
	}
	packScalesK4(scalesOut, &ls, &lm)
	return maxScale / 63, maxMin / 63
}

// kRequantize recomputes the levels of each sub-block against the F16
// scales actually stored, as the second half of the Q4_K/Q5_K references.
// Sub-blocks whose scale is zero keep the levels of the first pass.
func kRequantize(x *[QK_K]float32, s *kScratch, nmax int32, d16, dmin16 float32, scales *[12]byte) {
	for j := range QK_K / 32 {
		sc, m := getScaleMinK4(j, scales)
		d := float32(d16 * float32(sc))
		if d == 0 {
			continue
		}
		dm := float32(dmin16 * float32(m))
		for ii := range 32 {
			l := nearestInt((x[32*j+ii] + dm) / d)
			s.L[32*j+ii] = uint8(max(0, min(nmax, l)))
		}
	}
}
