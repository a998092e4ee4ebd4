package quant

import "math"

// The scale fits below are the general forms of ggml's make_*_quants
// helpers, for the block lengths (8, 16 or 32) and options that the Q2_K,
// Q3_K and importance-weighted quantisers call them with. The fixed-size
// fits in kblocks.go stay as they are: they serve the unweighted Q4_K, Q5_K
// and Q6_K references, whose speed matters most.

// fitScratch is the working memory of the fits (and of the quantisers that
// call them); it lives on the caller's stack.
type fitScratch struct {
	xm, fl, bestL [32]float32 // makeQkxQuants: x - min, trial levels, best levels
}

// sqrt32 is C's sqrtf: the float64 square root rounded once to float32 is
// the correctly rounded float32 root.
func sqrt32(f float32) float32 {
	return float32(math.Sqrt(float64(f)))
}

// makeQkxQuants is make_qkx2_quants and make_qkx3_quants with weights w
// (never NULL here; for such weights the two functions differ only in
// testing max == min or max <= min, which after min is clamped to at most
// zero select the same inputs): an asymmetric (scale, min) fit of x with
// levels 0..nmax, refined over nstep+1 trial scales, the error measured as
// w*|diff| when useMad and w*diff^2 otherwise. It returns the scale and the
// negated min; L receives the levels. len(x) is at most 32.
//
// As makeQkx2Quants does, it keeps x-min and the levels as floats instead
// of recomputing them: the same operations on the same values.
func makeQkxQuants(x, w []float32, L []uint8, s *fitScratch, nmax int32, rmin, rdelta float32, nstep int,
	useMad bool) (scale, theMin float32) {
	n := len(x)
	w, L = w[:n], L[:n]
	xm, fl, bestL := s.xm[:n], s.fl[:n], s.bestL[:n]
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi <= lo {
		clear(L)
		return 0, -lo
	}
	for i := range xm {
		xm[i] = x[i] - lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	var bestError float32
	for i := range xm {
		l := max(0, min(nmax, nearestInt(float32(iscale*xm[i]))))
		f := float32(l)
		bestL[i] = f
		diff := float32(float32(scale*f)+lo) - x[i]
		if useMad {
			diff = abs32(diff)
		} else {
			diff = float32(diff * diff)
		}
		bestError += float32(w[i] * diff)
	}
	if nstep < 1 {
		nstep = -1 // the C code returns before the refinement
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := range xm {
			l := max(0, min(nmax, nearestInt(float32(iscale*xm[i]))))
			f := float32(l)
			fl[i] = f
			wl := float32(w[i] * f)
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
		for i := range xm {
			diff := float32(float32(thisScale*fl[i])+thisMin) - x[i]
			if useMad {
				diff = abs32(diff)
			} else {
				diff = float32(diff * diff)
			}
			curError += float32(w[i] * diff)
		}
		if curError < bestError {
			copy(bestL, fl)
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

// makeQxQuants is make_qx_quants with rmse_type = 1 and weights w (never
// NULL here): a symmetric fit with levels -nmax..nmax-1 stored as 0..2nmax-1
// in L, refined over 18 trial scales. len(x) is at most 32.
//
// As makeQxQuants16, it runs the trials four at a time through qxBest.
func makeQxQuants(x, w []float32, L []int8, s *fitScratch, nmax int32) float32 {
	n := len(x)
	w, L = w[:n], L[:n]
	var maxv, amax float32
	for _, v := range x {
		if av := abs32(v); av > amax {
			amax, maxv = av, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	var wx [32]float32
	for i, v := range x {
		wx[i] = float32(w[i] * v) // the C code's w*x[i], before "*l"
	}
	fmax := float32(nmax)
	iscale := -fmax / maxv
	var sumlx, suml2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
		L[i] = int8(l + nmax)
		f := float32(l)
		sumlx += float32(wx[i] * f)
		suml2 += float32(float32(w[i]*f) * f)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	return qxBest(x, w, wx[:n], L, nmax, maxv, scale, best)
}

// qxBest runs make_qx_quants's 18 trials after the first (whose scale and
// best are given) and returns the final scale; L receives the levels of
// the winning trial, recomputed as the C code does.
func qxBest(x, w, wx []float32, L []int8, nmax int32, maxv, scale, best float32) float32 {
	fmax := float32(nmax)
	// The trial offsets is = -9..9 without 0, in the C code's order; the
	// two padding trials (is[18], is[19] = 0) are never looked at.
	qxSteps := [18]float32{-9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	var is [20]float32
	for k := range 18 {
		is[k] = -(fmax + float32(0.1*qxSteps[k])) / maxv
	}
	var sums [5][8]float32
	for g := range sums {
		qxTrials(x, w, wx, (*[4]float32)(is[4*g:]), -nmax, nmax-1, &sums[g])
	}
	for k := range 18 {
		sx, s2 := sums[k/4][k%4], sums[k/4][4+k%4]
		if s2 > 0 && float32(sx*sx) > float32(best*s2) {
			qxLevels(x, L, is[k], nmax)
			scale = sx / s2
			best = float32(scale * sx)
		}
	}
	return scale
}

// qxLevels sets L to the levels of x at inverse scale iscale, offset by
// nmax, as make_qx_quants stores them.
func qxLevels(x []float32, L []int8, iscale float32, nmax int32) {
	L = L[:len(x)]
	for i, v := range x {
		L[i] = int8(max(-nmax, min(nmax-1, nearestInt(float32(iscale*v)))) + nmax)
	}
}

// makeQpQuants is make_qp_quants: a fit of the non-negative x (sub-block
// scales or mins) with levels 0..nmax and no offset, weighted by qw, over 8
// trial scales and then up to 5 rounds of moving single levels. As in C, L
// holds each level truncated to 8 bits while the sums use the full int.
func makeQpQuants(x, qw []float32, L []uint8, nmax int32) float32 {
	n := len(x)
	qw, L = qw[:n], L[:n]
	var maxv float32
	for _, v := range x {
		if !(maxv > v) { // MAX(max, x[i])
			maxv = v
		}
	}
	if maxv < groupMaxEps {
		clear(L)
		return 0
	}
	fmax := float32(nmax)
	iscale := fmax / maxv
	for i, v := range x {
		L[i] = uint8(nearestInt(float32(iscale * v)))
	}
	scale := 1 / iscale
	var bestMSE float32
	for i, v := range x {
		diff := v - float32(scale*float32(L[i]))
		bestMSE += float32(float32(qw[i]*diff) * diff)
	}
	for is := -4; is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := (float32(0.1*float32(is)) + fmax) / maxv
		scaleIs := 1 / iscaleIs
		var mse float32
		for i, v := range x {
			l := min(nmax, nearestInt(float32(iscaleIs*v)))
			diff := v - float32(scaleIs*float32(l))
			mse += float32(float32(qw[i]*diff) * diff)
		}
		if mse < bestMSE {
			bestMSE = mse
			iscale = iscaleIs
		}
	}
	var sumlx, suml2 float32
	for i, v := range x {
		l := min(nmax, nearestInt(float32(iscale*v)))
		L[i] = uint8(l)
		f := float32(l)
		sumlx += float32(float32(qw[i]*v) * f)
		suml2 += float32(float32(qw[i]*f) * f)
	}
	for range 5 {
		changed := false
		for i, v := range x {
			w := qw[i]
			li := float32(L[i])
			slx := sumlx - float32(float32(w*v)*li)
			sl2 := suml2 - float32(float32(w*li)*li)
			if !(slx > 0 && sl2 > 0) {
				continue
			}
			newL := min(nmax, nearestInt(float32(v*sl2)/slx))
			if newL == int32(L[i]) {
				continue
			}
			f := float32(newL)
			slx += float32(float32(w*v) * f)
			sl2 += float32(float32(w*f) * f)
			if float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
				L[i] = uint8(newL)
				sumlx, suml2 = slx, sl2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}
