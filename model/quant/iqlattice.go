package quant

import "errors"

// Helpers shared by the lattice i-quants' quantisers (quantize_row_iq2_xxs_impl,
// quantize_row_iq2_xs_impl, quantize_row_iq3_xxs_impl, quantize_row_iq3_s_impl),
// which fit each sub-block of a super-block the same way: fitting weights
// from the importance weights (or x^2), magnitudes with the signs split
// off, a search over trial scales that snaps each group of levels to the
// grid, a final snap at the chosen scale and a least-squares scale.

// errOffGrid is what the quantisers return where ggml aborts: a group left
// with no grid point (only non-finite input gets there).
var errOffGrid = errors.New("a group of weights has no nearest grid point (the input holds Inf, NaN or values whose squares overflow float32; ggml aborts here)")

// latticeWeights fills weight with qw*sqrt(sigma2 + x^2) (qw non-nil) or
// x^2, and waux with the square roots of weight.
func latticeWeights(weight, waux, xb, qw []float32, sigma2 float32) {
	if qw != nil {
		for i, v := range xb {
			weight[i] = float32(qw[i] * sqrt32(float32(sigma2+float32(v*v))))
		}
	} else {
		for i, v := range xb {
			weight[i] = float32(v * v)
		}
	}
	for i, w := range weight[:len(xb)] {
		waux[i] = sqrt32(w)
	}
}

// evenSigns splits the eight weights xb into magnitudes (xval) and sign
// bits, then, when an odd number are negative, flips the sign of the one
// that matters least (smallest weight*x^2) so that the count is even and
// seven bits can store the signs. It returns those seven bits.
func evenSigns(xval, xb, weight []float32) uint8 {
	xval, xb, weight = xval[:8], xb[:8], weight[:8]
	nflip := 0
	var s uint8
	for i, v := range xb {
		if v >= 0 {
			xval[i] = v
		} else {
			xval[i] = -v
			nflip++
			s |= 1 << i
		}
	}
	if nflip%2 != 0 {
		imin := 0
		lo := float32(float32(weight[0]*xb[0]) * xb[0])
		for i := 1; i < 8; i++ {
			if ax := float32(float32(weight[i]*xb[i]) * xb[i]); ax < lo {
				lo, imin = ax, i
			}
		}
		xval[imin] = -xval[imin]
		s ^= 1 << imin
	}
	return s & 127
}

// maxOf is the references' running MAX(max, x[i]) from x[0] (NaN-sensitive
// in the same way).
func maxOf(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if !(m > v) {
			m = v
		}
	}
	return m
}

// levelsCode rounds a group's magnitudes at inverse scale id to levels
// 0..kMaxQ-1 (nearest_int(0.5*(id*x-1))), stores them in L when L is not
// nil, and returns them packed as the grid map's index.
func (g *iqGrid) levelsCode(xval []float32, id float32, kMaxQ int32, L []int8) int32 {
	var u uint32
	for i, v := range xval[:g.n] {
		l := max(0, min(kMaxQ-1, nearestInt(float32(0.5*(float32(id*v)-1)))))
		if L != nil {
			L[i] = int8(l)
		}
		u |= uint32(l) << (g.bits * uint(i))
	}
	return int32(u)
}

// snap puts group xval on the grid at the given scale: the point its
// rounded levels name when that is on the grid, else the nearest of the
// vector's neighbours. L receives the point's levels; onGrid reports
// whether no neighbour search was needed.
func (g *iqGrid) snap(xval, waux []float32, id, scale float32, kMaxQ int32, L []int8) (onGrid, ok bool) {
	if g.n == 4 && g.bits == 3 {
		return g.snap4(xval, waux, id, scale, kMaxQ, L)
	}
	code := g.kmap[g.levelsCode(xval, id, kMaxQ, L)]
	if code >= 0 {
		return true, true
	}
	_, ok = g.bestNeighbour(code, xval, waux, scale, L)
	return false, ok
}

// snap4 is snap for the grids of four 3-bit levels (IQ3_XXS, IQ3_S), the
// loops written out: the same operations on the same values.
func (g *iqGrid) snap4(xval, waux []float32, id, scale float32, kMaxQ int32, L []int8) (onGrid, ok bool) {
	x, L4 := (*[4]float32)(xval), (*[4]int8)(L)
	hi := kMaxQ - 1
	l0 := max(0, min(hi, nearestInt(float32(0.5*(float32(id*x[0])-1)))))
	l1 := max(0, min(hi, nearestInt(float32(0.5*(float32(id*x[1])-1)))))
	l2 := max(0, min(hi, nearestInt(float32(0.5*(float32(id*x[2])-1)))))
	l3 := max(0, min(hi, nearestInt(float32(0.5*(float32(id*x[3])-1)))))
	L4[0], L4[1], L4[2], L4[3] = int8(l0), int8(l1), int8(l2), int8(l3)
	// The packed vector keeps only each level's low three bits, as
	// levelsCode's does when kMaxQ is at most 8 (IQ3's is 8).
	u := uint32(l0) | uint32(l1)<<3 | uint32(l2)<<6 | uint32(l3)<<9
	if kMaxQ > 8 {
		u = uint32(g.levelsCode(xval, id, kMaxQ, nil))
	}
	code := g.kmap[u]
	if code >= 0 {
		return true, true
	}
	_, ok = g.bestNeighbour4(code, x, (*[4]float32)(waux), scale, L4)
	return false, ok
}

// gridIndex returns the point that levels L name, as the references'
// final lookup (which aborts when L is off the grid).
func (g *iqGrid) gridIndex(L []int8) (int, bool) {
	var u uint16
	for i, l := range L[:g.n] {
		u |= uint16(int32(l) << (g.bits * uint(i)))
	}
	if int(u) >= len(g.kmap) || g.kmap[u] < 0 {
		return 0, false
	}
	return int(g.kmap[u]), true
}

// levelSums returns sum w*x*q and sum w*q*q for the levels L (q = 2l+1).
func levelSums(weight, xval []float32, L []int8) (sumqx, sumq2 float32) {
	for i, w := range weight[:len(L)] {
		q := float32(2*int32(L[i]) + 1)
		sumqx += float32(float32(w*xval[i]) * q)
		sumq2 += float32(float32(w*q) * q)
	}
	return sumqx, sumq2
}

// trialID is (2*kMaxQ-1 + is*step)/den, a trial inverse scale.
func trialID(kMaxQ int32, is int, step, den float32) float32 {
	return float32(float32(2*kMaxQ-1)+float32(float32(is)*step)) / den
}

// superScaleCode is nearest_int(0.5*(id*scale-1)) clamped to 0..15, a
// sub-block scale's 4-bit code.
func superScaleCode(id, scale float32) uint32 {
	return uint32(max(0, min(15, nearestInt(float32(0.5*(float32(id*scale)-1))))))
}

// searchScale tries the inverse scales trialID(kMaxQ, is, step, den) for
// is = -ntrial..ntrial: at each every group of xval is snapped to the grid
// (into Laux), and a trial whose least-squares scale explains more of the
// weighted signal (sumqx^2/sumq2) than the best so far wins: its levels go
// to L, its groups' on-grid flags to onGrid (when not nil). It returns the
// winning scale, or scale unchanged when no trial wins.
func (g *iqGrid) searchScale(xval, weight, waux []float32, kMaxQ int32, ntrial int, step, den, scale float32,
	L, Laux []int8, onGrid, onGridAux []bool) (float32, bool) {
	var best float32
	n := g.n
	for is := -ntrial; is <= ntrial; is++ {
		id := trialID(kMaxQ, is, step, den)
		thisScale := 1 / id
		for k := range len(Laux) / n {
			on, ok := g.snap(xval[n*k:], waux[n*k:], id, thisScale, kMaxQ, Laux[n*k:n*k+n])
			if !ok {
				return 0, false
			}
			if onGridAux != nil {
				onGridAux[k] = on
			}
		}
		sumqx, sumq2 := levelSums(weight, xval, Laux)
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			scale = sumqx / sumq2
			best = float32(scale * sumqx)
			copy(L, Laux)
			copy(onGrid, onGridAux)
		}
	}
	return scale, true
}

// resnap snaps the groups of xval at the final scale into L (all of them,
// or those onGrid does not mark), then refits the least-squares scale.
func (g *iqGrid) resnap(xval, weight, waux []float32, kMaxQ int32, scale float32, L []int8, onGrid []bool) (float32, bool) {
	id := 1 / scale
	n := g.n
	for k := range len(L) / n {
		if onGrid != nil && onGrid[k] {
			continue
		}
		if _, ok := g.snap(xval[n*k:], waux[n*k:], id, scale, kMaxQ, L[n*k:n*k+n]); !ok {
			return 0, false
		}
	}
	if sumqx, sumq2 := levelSums(weight, xval, L); sumq2 > 0 {
		scale = sumqx / sumq2
	}
	return scale, true
}
