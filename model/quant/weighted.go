package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Importance-weighted quantisation: what ggml_quantize_chunk does when
// llama-quantize passes it an imatrix entry, one weight per column shared
// by every row. The k-quants then run quantize_row_q*_K_impl instead of the
// reference, and the legacy Q4_0, Q4_1, Q5_0 and Q5_1 their *_impl; both
// weigh each value by qw[col] * sqrt(sigma2 + x^2), sigma2 being the mean
// square of the super-block (or, for the legacy types, of the whole row).
// Q8_0 and the float types ignore the weights, as ggml does.

// QuantizeRowsWeighted quantises the rows of src (each rowLen values) into
// dst (each RowSize(t, rowLen) bytes) as ggml_quantize_chunk(t, src, dst, 0,
// nrows, rowLen, weights) does, with up to workers goroutines. weights holds
// one importance weight per column (len(weights) == rowLen); nil weights
// mean no importance matrix, exactly QuantizeRows (which refuses the types
// RequiresImatrix names). F32, F16, BF16 and Q8_0 ignore the weights, as
// ggml does; a type with no weighted quantiser here is an error.
func QuantizeRowsWeighted(t Type, dst []byte, src []float32, rowLen int, weights []float32, workers int) error {
	if weights == nil {
		return QuantizeRows(t, dst, src, rowLen, workers)
	}
	if len(weights) != rowLen {
		return fmt.Errorf("quant: %s: %d importance weights for rows of %d values", t, len(weights), rowLen)
	}
	switch t {
	case F32, F16, BF16, Q8_0:
		return QuantizeRows(t, dst, src, rowLen, workers)
	case Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K:
	case IQ2_XXS, IQ2_XS, IQ3_XXS, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS:
	default:
		return fmt.Errorf("quant: %s: no importance-weighted quantiser for this type", t)
	}
	return quantizeRows(t, dst, src, rowLen, weights, workers)
}

// weightedScratch is the working memory of the weighted quantisers (about
// 2 KiB, on the stack of quantizeWeighted).
type weightedScratch struct {
	fit    fitScratch
	k      kScratch // k.L: the levels of Q2_K, Q4_K and Q5_K
	L8     [QK_K]int8
	weight [32]float32
	sw     [QK_K / 16]float32
	scales [QK_K / 16]float32
	mins   [QK_K / 16]float32
	Ls, Lm [QK_K / 16]uint8
	Ls8    [QK_K / 16]int8
}

// quantizeWeighted quantises whole rows of len(qw) values of a type that
// has a weighted quantiser; the sizes have been checked.
func quantizeWeighted(t Type, dst []byte, src, qw []float32) {
	var s weightedScratch
	rowLen := len(qw)
	rowBytes := RowSize(t, rowLen)
	for r := range len(src) / rowLen {
		x := src[r*rowLen : (r+1)*rowLen]
		y := dst[r*rowBytes : (r+1)*rowBytes]
		switch t {
		case Q4_0, Q4_1, Q5_0, Q5_1:
			legacyRowWeighted(t, y, x, qw, &s)
			continue
		}
		for i := range rowLen / QK_K {
			xb := (*[QK_K]float32)(x[i*QK_K:])
			wb := (*[QK_K]float32)(qw[i*QK_K:])
			switch t {
			case Q2_K:
				q2KBlockWeighted((*[84]byte)(y[i*84:]), xb, wb, &s)
			case Q3_K:
				q3KBlockWeighted((*[110]byte)(y[i*110:]), xb, wb, &s)
			case Q4_K:
				q45KBlockWeighted(y[i*144:(i+1)*144], xb, wb, 15, &s)
				packQ4K((*[144]byte)(y[i*144:]), &s.k.L)
			case Q5_K:
				q45KBlockWeighted(y[i*176:(i+1)*176], xb, wb, 31, &s)
				packQ5K((*[176]byte)(y[i*176:]), &s.k.L)
			case Q6_K:
				quantizeQ6KBlock((*[210]byte)(y[i*210:]), xb, wb, &s.L8, &s.fit)
			}
		}
	}
}

// sumSquares is the C loops' sum of x[i]*x[i], in order.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// sumSquaresRow is sumSquares for the legacy *_impl functions, whose sum
// libggml computes four squares at a time. A NaN in the row makes the sum
// NaN, and when two NaNs meet x86 keeps the first operand's: the compiled C
// adds the squares of lanes 0 and 3 as sum + sq and those of lanes 1 and 2
// as sq + sum, so the sign of the NaN sum is that of the first NaN in the
// row, or of the last one in lane 1 or 2 after it.
func sumSquaresRow(x []float32) float32 {
	s := sumSquares(x)
	if s == s {
		return s
	}
	var nan uint32
	found := false
	for i, v := range x {
		if v == v {
			continue
		}
		if !found || i%4 == 1 || i%4 == 2 {
			nan, found = math.Float32bits(v)|0x00400000, true // v*v: v's NaN, quieted
		}
	}
	return math.Float32frombits(nan)
}

// importance fills w with qw[l] * sqrtf(sigma2 + x[l]^2) and returns the
// sum of w, as the *_impl functions weigh a (sub-)block.
func importance(w, x, qw []float32, sigma2 float32) float32 {
	w, qw = w[:len(x)], qw[:len(x)]
	var sum float32
	for l, v := range x {
		w[l] = float32(qw[l] * sqrt32(sigma2+float32(v*v)))
		sum += w[l]
	}
	return sum
}

// q2KBlockWeighted is one block of quantize_row_q2_K_impl.
func q2KBlockWeighted(y *[84]byte, x, qw *[QK_K]float32, s *weightedScratch) {
	sigma2 := float32(sumSquares(x[:]) / QK_K) // a product by 1/256 once compiled: keep it from fusing
	for j := range QK_K / 16 {
		xs := x[16*j : 16*j+16]
		s.sw[j] = importance(s.weight[:16], xs, qw[16*j:], sigma2)
		s.scales[j], s.mins[j] = makeQkxQuants(xs, s.weight[:16], s.k.L[16*j:16*j+16], &s.fit, 3, -0.9, 0.05, 36, false)
	}
	dm := makeQpQuants(s.scales[:], s.sw[:], s.Ls[:], 15)
	mm := makeQpQuants(s.mins[:], s.sw[:], s.Lm[:], 15)
	putF16(y[80:], dm)
	putF16(y[82:], mm)
	sc := (*[16]byte)(y[0:16])
	for j := range sc {
		sc[j] = s.Ls[j] | s.Lm[j]<<4
	}
	q2Requantize(x, &s.k.L, sc, getF16(y[80:]), getF16(y[82:]))
	pack2Bit((*[64]byte)(y[16:80]), &s.k.L)
}

// q3KBlockWeighted is one block of quantize_row_q3_K_impl.
func q3KBlockWeighted(y *[110]byte, x, qw *[QK_K]float32, s *weightedScratch) {
	sigma2 := float32(float32(2*sumSquares(x[:])) / QK_K)
	for j := range QK_K / 16 {
		xs := x[16*j : 16*j+16]
		s.sw[j] = importance(s.weight[:16], xs, qw[16*j:], sigma2)
		s.scales[j] = makeQxQuants(xs, s.weight[:16], s.L8[16*j:16*j+16], &s.fit, 4)
	}
	sc := (*[12]byte)(y[96:108])
	*sc = [12]byte{}
	dBlock := makeQxQuants(s.scales[:], s.sw[:], s.Ls8[:], &s.fit, 32)
	for j, l := range s.Ls8 {
		putQ3Scale(sc, j, l)
	}
	putF16(y[108:], dBlock)
	q3Requantize(x, &s.L8, sc, getF16(y[108:]))
	packQ3(y, &s.L8)
}

// q45KBlockWeighted is one block of quantize_row_q4_K_impl (nmax 15) or
// quantize_row_q5_K_impl (nmax 31) up to the packing of the levels, which
// it leaves in s.k.L.
func q45KBlockWeighted(y []byte, x, qw *[QK_K]float32, nmax int32, s *weightedScratch) {
	sigma2 := float32(float32(2*sumSquares(x[:])) / QK_K)
	for j := range QK_K / 32 {
		xs := x[32*j : 32*j+32]
		s.sw[j] = importance(s.weight[:], xs, qw[32*j:], sigma2)
		s.scales[j], s.mins[j] = makeQkxQuants(xs, s.weight[:], s.k.L[32*j:32*j+32], &s.fit, nmax, -0.9, 0.05, 36, false)
	}
	dBlock := makeQpQuants(s.scales[:8], s.sw[:8], s.Ls[:8], 63)
	mBlock := makeQpQuants(s.mins[:8], s.sw[:8], s.Lm[:8], 63)
	ls, lm := (*[8]uint8)(s.Ls[:8]), (*[8]uint8)(s.Lm[:8])
	if nmax == 31 { // only the Q5_K code clamps the levels
		for j := range ls {
			ls[j], lm[j] = min(63, ls[j]), min(63, lm[j])
		}
	}
	scales := (*[12]byte)(y[4:16])
	packScalesK4(scales, ls, lm)
	putF16(y[0:], dBlock)
	putF16(y[2:], mBlock)
	kRequantize(x, &s.k, nmax, getF16(y[0:]), getF16(y[2:]), scales)
}

// legacyRowWeighted is quantize_row_q4_0_impl, q4_1, q5_0 or q5_1 for one
// row: sigma2 is the mean square of the whole row.
func legacyRowWeighted(t Type, y []byte, x, qw []float32, s *weightedScratch) {
	sigma2 := float32(sumSquaresRow(x) / float32(len(x)))
	L := s.k.L[:qk]
	for ib := range len(x) / qk {
		xb := x[ib*qk : (ib+1)*qk]
		importance(s.weight[:], xb, qw[ib*qk:], sigma2)
		switch t {
		case Q4_0:
			b := (*[18]byte)(y[ib*18:])
			L8 := s.L8[:qk]
			putF16(b[0:], makeQxQuants(xb, s.weight[:], L8, &s.fit, 8))
			for j := range qk / 2 {
				b[2+j] = uint8(L8[j]) | uint8(L8[j+16])<<4
			}
		case Q5_0:
			b := (*[22]byte)(y[ib*22:])
			L8 := s.L8[:qk]
			putF16(b[0:], makeQxQuants(xb, s.weight[:], L8, &s.fit, 16))
			for j := range qk {
				L[j] = uint8(L8[j])
			}
			binary.LittleEndian.PutUint32(b[2:], pack5Bit(b[6:22], L))
		case Q4_1:
			b := (*[20]byte)(y[ib*20:])
			d, theMin := makeQkxQuants(xb, s.weight[:], L, &s.fit, 15, -0.9, 0.05, 36, false)
			putF16(b[0:], d)
			putF16(b[2:], -theMin)
			for j := range qk / 2 {
				b[4+j] = L[j] | L[j+16]<<4
			}
		case Q5_1:
			b := (*[24]byte)(y[ib*24:])
			d, theMin := makeQkxQuants(xb, s.weight[:], L, &s.fit, 31, -0.9, 0.05, 36, false)
			putF16(b[0:], d)
			putF16(b[2:], -theMin)
			binary.LittleEndian.PutUint32(b[4:], pack5Bit(b[8:24], L))
		}
	}
}

// pack5Bit stores the low four bits of the 32 levels L two to a byte
// (weights j and j+16 in byte j) and returns the fifth bits as Q5_0/Q5_1's
// qh word.
func pack5Bit(qs []byte, L []uint8) uint32 {
	qs, L = qs[:qk/2], L[:qk]
	var qh uint32
	for j := range qk / 2 {
		xi0, xi1 := L[j], L[j+qk/2]
		qs[j] = xi0&0x0F | (xi1&0x0F)<<4
		qh |= uint32(xi0&0x10) >> 4 << j
		qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
	}
	return qh
}
