package quant

import "sync"

// The non-linear 4-bit formats (ggml-common.h):
//
//	IQ4_NL: d f16, qs[16]                                  (18 bytes, 32 weights)
//	IQ4_XS: d f16, scales_h u16, scales_l[4], qs[128]      (136 bytes, 256 weights)
//
// A weight is d (times a 6-bit sub-block scale minus 32 in IQ4_XS) times
// one of the sixteen levels of kvaluesIQ4NL, indexed by a nibble.
//
// ggml_quantize_chunk runs quantize_iq4_nl / quantize_iq4_xs with or
// without importance weights, both with ntry = 7 (the _ref functions'
// ntry = -1 is not reached through it), so that is the path ported here.

// iq4Scratch is quantize_row_iq4_nl_impl's working memory.
type iq4Scratch struct {
	L      [QK_K]uint8
	weight [32]float32
	scales [QK_K / 32]float32
}

// iq4Levels is kvaluesIQ4NL as float32, with a table that finds the pair
// of levels around a value without best_index_int8's binary search (whose
// unpredictable branches made it most of IQ4_NL's time).
type iq4Levels struct {
	f [16]float32
	// upper[k+127] is the index of the first level above k, for the
	// integers k from -127 to 112: as the levels are integers, that is the
	// first level above any x in [k, k+1), which is what the binary search
	// ends on.
	upper [240]uint8
}

var iq4LevelTable = sync.OnceValue(func() *iq4Levels {
	var t iq4Levels
	vals := kvaluesIQ4NL()
	for i, v := range vals {
		t.f[i] = float32(v)
	}
	for k := range t.upper {
		mu := 1
		for mu < 15 && int(vals[mu]) <= k-127 {
			mu++
		}
		t.upper[k] = uint8(mu)
	}
	return &t
})

// bestIndexInt8 is best_index_int8 over the sixteen IQ4 levels: the index
// of the level nearest x, the lower one on a tie (by the same float32
// comparison), 0 and 15 beyond the ends, and 15 for NaN.
func (t *iq4Levels) bestIndexInt8(x float32) uint8 {
	if x <= t.f[0] {
		return 0
	}
	if x >= t.f[15] || x != x {
		return 15
	}
	// -127 < x < 113, so x+127 (exact in float64) truncates to floor(x)+127.
	mu := t.upper[int(float64(x)+127)]
	if x-t.f[mu-1] < t.f[mu]-x {
		return mu - 1
	}
	return mu
}

// iq4SubScale fits the sub-block xb (32 weights) as quantize_row_iq4_nl_impl
// does with ntry = 7, writing its levels into Lb and returning its scale;
// ok is false for an all-zero sub-block (scale 0, Lb untouched).
func iq4SubScale(lv *iq4Levels, xb, weight []float32, Lb []uint8) (d float32, ok bool) {
	const ntry = 7
	xb, weight, Lb = xb[:32], weight[:32], Lb[:32]
	var amax, maxv float32
	for _, v := range xb {
		if ax := abs32(v); ax > amax {
			amax, maxv = ax, v
		}
	}
	if amax < groupMaxEps {
		return 0, false
	}
	d = -maxv / lv.f[0]
	id := 1 / d
	var sumqx, sumq2 float32
	for j, v := range xb {
		l := lv.bestIndexInt8(float32(id * v))
		Lb[j] = l
		q := lv.f[l]
		wq := float32(weight[j] * q)
		sumqx += float32(wq * v)
		sumq2 += float32(wq * q)
	}
	d = 0
	if sumq2 > 0 {
		d = sumqx / sumq2
	}
	best := float32(d * sumqx)
	for itry := -ntry; itry <= ntry; itry++ {
		id = (float32(itry) + lv.f[0]) / maxv // itry+values[0], an exact integer
		sumqx, sumq2 = 0, 0
		for j, v := range xb {
			q := lv.f[lv.bestIndexInt8(float32(id*v))]
			wq := float32(weight[j] * q)
			sumqx += float32(wq * v)
			sumq2 += float32(wq * q)
		}
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			d = sumqx / sumq2
			best = float32(d * sumqx)
		}
	}
	return d, true
}

// iq4Weights fills weight with the fitting weights of sub-block xb:
// qw*sqrt(sigma2 + x^2) with importance weights qw, else x^2.
func iq4Weights(weight, xb, qw []float32, sigma2 float32) {
	if qw != nil {
		for j, v := range xb[:32] {
			weight[j] = float32(qw[j] * sqrt32(float32(sigma2+float32(v*v))))
		}
		return
	}
	for j, v := range xb[:32] {
		weight[j] = float32(v * v)
	}
}

// iq4Sigma2 is 2/n times the sum of squares of x.
func iq4Sigma2(x []float32) float32 {
	return float32(sumSquares(x) * (2 / float32(len(x))))
}

// packIQ4 writes levels two to a byte: the first 16 of each 32 in the low
// nibbles, the next 16 in the high ones.
func packIQ4(q4 []byte, L []uint8) {
	for i := range len(L) / 32 {
		for j := range 16 {
			q4[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// quantizeIQ4NL quantises src into IQ4_NL blocks (quantize_iq4_nl); qw is
// nil or holds an importance weight for each value of src. It cannot fail.
func quantizeIQ4NL(dst []byte, src, qw []float32) error {
	lv := iq4LevelTable()
	var s iq4Scratch
	for ib := range len(src) / 32 {
		x := src[32*ib : 32*ib+32]
		y := dst[18*ib : 18*ib+18]
		var w []float32
		if qw != nil {
			w = qw[32*ib : 32*ib+32]
		}
		iq4Weights(s.weight[:], x, w, iq4Sigma2(x))
		d, _ := iq4SubScale(lv, x, s.weight[:], s.L[:32])
		putF16(y[0:], d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, v := range x {
			s.L[j] = lv.bestIndexInt8(float32(id * v))
		}
		packIQ4(y[2:18], s.L[:32])
	}
	return nil
}

// quantizeIQ4XS quantises src into IQ4_XS super-blocks (quantize_iq4_xs).
func quantizeIQ4XS(dst []byte, src, qw []float32) error {
	lv := iq4LevelTable()
	var s iq4Scratch
	for ibl := range len(src) / QK_K {
		x := src[QK_K*ibl : QK_K*(ibl+1)]
		y := dst[136*ibl : 136*(ibl+1)]
		sigma2 := iq4Sigma2(x)
		var maxScale, amaxScale float32
		for ib := range QK_K / 32 {
			xb := x[32*ib : 32*ib+32]
			var w []float32
			if qw != nil {
				w = qw[QK_K*ibl+32*ib : QK_K*ibl+32*ib+32]
			}
			iq4Weights(s.weight[:], xb, w, sigma2)
			d, _ := iq4SubScale(lv, xb, s.weight[:], s.L[32*ib:32*ib+32])
			s.scales[ib] = d
			if ad := abs32(d); ad > amaxScale {
				amaxScale, maxScale = ad, d
			}
		}
		d := -maxScale / 32
		putF16(y[0:], d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var scalesH uint16
		scalesL := y[4:8]
		for ib := range QK_K / 32 {
			l := max(-32, min(31, nearestInt(float32(id*s.scales[ib]))))
			dl := float32(d * float32(l))
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			for j, v := range x[32*ib : 32*ib+32] {
				s.L[32*ib+j] = lv.bestIndexInt8(float32(idl * v))
			}
			l += 32
			lo, hi := uint8(l&0xf), uint16(l>>4)
			if ib%2 == 0 {
				scalesL[ib/2] = lo
			} else {
				scalesL[ib/2] |= lo << 4
			}
			scalesH |= hi << (2 * (ib % 8))
		}
		y[2], y[3] = byte(scalesH), byte(scalesH>>8)
		packIQ4(y[8:136], s.L[:])
	}
	return nil
}

// dequantizeIQ4NL is dequantize_row_iq4_nl.
func dequantizeIQ4NL(dst []float32, src []byte) {
	values := kvaluesIQ4NL()
	for ib := range len(dst) / 32 {
		b := src[18*ib : 18*ib+18]
		y := dst[32*ib : 32*ib+32]
		d := getF16(b)
		for j, q := range b[2:18] {
			y[j] = d * float32(values[q&0xf])
			y[j+16] = d * float32(values[q>>4])
		}
	}
}

// dequantizeIQ4XS is dequantize_row_iq4_xs.
func dequantizeIQ4XS(dst []float32, src []byte) {
	values := kvaluesIQ4NL()
	for ibl := range len(dst) / QK_K {
		b := src[136*ibl : 136*(ibl+1)]
		y := dst[QK_K*ibl : QK_K*(ibl+1)]
		d := getF16(b)
		scalesH := uint16(b[2]) | uint16(b[3])<<8
		qs := b[8:]
		for ib := range QK_K / 32 {
			ls := int32(b[4+ib/2]>>(4*(ib%2)))&0xf | int32(scalesH>>(2*ib))&3<<4
			dl := float32(d * float32(ls-32))
			for j, q := range qs[16*ib : 16*ib+16] {
				y[32*ib+j] = dl * float32(values[q&0xf])
				y[32*ib+j+16] = dl * float32(values[q>>4])
			}
		}
	}
}
