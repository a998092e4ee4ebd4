package quant

import (
	"encoding/binary"
	"fmt"
)

// The 2-bit lattice formats (ggml-common.h), 256 weights each:
//
//	IQ2_XXS: d f16, qs[16] u32                           (66 bytes)
//	IQ2_XS:  d f16, qs[32] u16, scales[8]                (74 bytes)
//	IQ2_S:   d f16, qs[32], signs[32], qh[8], scales[8]  (82 bytes)
//
// Each group of eight weights is a point of a 256-point (IQ2_XXS) or
// 512-point (IQ2_XS) grid of levels 0..2, with seven sign bits (the eighth
// makes the count of negatives even). IQ2_XXS stores, per 32 weights, two
// u32: four 8-bit grid indices, then four 7-bit signs and a 4-bit scale;
// IQ2_XS stores a u16 per group (9-bit index, 7-bit signs) and a 4-bit
// scale per 16 weights. ggml quantises both only with importance weights.
// IQ2_S (which llama.cpp's IQ3_XXS mix uses for attn_q and attn_k) has a
// 1024-point grid (the two high index bits in qh), keeps all eight sign
// bits of a group, and works without importance weights.

const iq2KMaxQ = 3

// iq2Scratch is the working memory of one sub-block (32 weights for
// IQ2_XXS, 16 for IQ2_XS).
type iq2Scratch struct {
	weight, waux, xval [32]float32
	L, Laux            [32]int8
	Lqp                [32]uint8
	onGrid, onGridAux  [2]bool
	scales             [QK_K / 16]float32
}

// quantizeIQ2XXS quantises src into IQ2_XXS super-blocks
// (quantize_iq2_xxs); qw holds a weight for each value of src.
func quantizeIQ2XXS(dst []byte, src, qw []float32) error {
	g := gridIQ2XXS()
	var s iq2Scratch
	for ibl := range len(src) / QK_K {
		x := src[QK_K*ibl : QK_K*(ibl+1)]
		y := dst[66*ibl : 66*(ibl+1)]
		clear(y)
		var q2 [2 * QK_K / 32]uint32
		sigma2 := sumSquares(x) / QK_K
		var maxScale float32
		for ib := range QK_K / 32 {
			xb := x[32*ib : 32*ib+32]
			latticeWeights(s.weight[:], s.waux[:], xb, qw[QK_K*ibl+32*ib:QK_K*ibl+32*ib+32], sigma2)
			var signs [4]uint8
			for k := range 4 {
				signs[k] = evenSigns(s.xval[8*k:], xb[8*k:], s.weight[8*k:])
			}
			maxv := maxOf(s.xval[:])
			if maxv < groupMaxEps {
				s.scales[ib] = 0
				s.L = [32]int8{}
				continue
			}
			scale := makeQpQuants(s.xval[:], s.weight[:], s.Lqp[:], iq2KMaxQ+1)
			for i, l := range s.Lqp {
				s.L[i] = int8(l)
			}
			effMax := float32(scale * iq2KMaxQ)
			if effMax <= 0 {
				s.scales[ib] = 0
				s.L = [32]int8{}
				continue
			}
			scale, ok := g.searchScale(s.xval[:], s.weight[:], s.waux[:], iq2KMaxQ, 6, 0.1, effMax, scale,
				s.L[:], s.Laux[:], nil, nil)
			if !ok {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			if scale > 0 {
				if scale, ok = g.resnap(s.xval[:], s.weight[:], s.waux[:], iq2KMaxQ, scale, s.L[:], nil); !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k] & 127
				}
			}
			for k := range 4 {
				j, ok := g.gridIndex(s.L[8*k:])
				if !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
				q2[2*ib] |= uint32(j) << (8 * k)
				q2[2*ib+1] |= uint32(signs[k]) << (7 * k)
			}
			if !(scale >= 0) {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			s.scales[ib] = scale
			if !(maxScale > scale) {
				maxScale = scale
			}
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(y, d)
		id := 1 / d
		for ib := range QK_K / 32 {
			q2[2*ib+1] |= superScaleCode(id, s.scales[ib]) << 28
		}
		for i, v := range q2 {
			binary.LittleEndian.PutUint32(y[2+4*i:], v)
		}
	}
	return nil
}

// quantizeIQ2XS quantises src into IQ2_XS super-blocks (quantize_iq2_xs).
func quantizeIQ2XS(dst []byte, src, qw []float32) error {
	g := gridIQ2XS()
	var s iq2Scratch
	for ibl := range len(src) / QK_K {
		x := src[QK_K*ibl : QK_K*(ibl+1)]
		y := dst[74*ibl : 74*(ibl+1)]
		clear(y)
		var q2 [2 * QK_K / 16]uint16
		sigma2 := sumSquares(x) / QK_K
		var maxScale float32
		for ib := range QK_K / 16 {
			xb := x[16*ib : 16*ib+16]
			weight, waux, xval := s.weight[:16], s.waux[:16], s.xval[:16]
			L, Laux := s.L[:16], s.Laux[:16]
			latticeWeights(weight, waux, xb, qw[QK_K*ibl+16*ib:QK_K*ibl+16*ib+16], sigma2)
			var signs [2]uint8
			for k := range 2 {
				signs[k] = evenSigns(xval[8*k:], xb[8*k:], weight[8*k:])
			}
			maxv := maxOf(xval)
			clear(L)
			if maxv < groupMaxEps {
				s.scales[ib] = 0
				continue
			}
			s.onGrid = [2]bool{true, true}
			scale, ok := g.searchScale(xval, weight, waux, iq2KMaxQ, 9, 0.1, maxv, maxv/(2*iq2KMaxQ-1),
				L, Laux, s.onGrid[:], s.onGridAux[:])
			if !ok {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			if !allTrue(s.onGrid[:]) && scale > 0 {
				if scale, ok = g.resnap(xval, weight, waux, iq2KMaxQ, scale, L, s.onGrid[:]); !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k] & 127
				}
			}
			for k := range 2 {
				j, ok := g.gridIndex(L[8*k:])
				if !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
				q2[2*ib+k] = uint16(j) | uint16(signs[k])<<9
			}
			if !(scale >= 0) {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			s.scales[ib] = scale
			if !(maxScale > scale) {
				maxScale = scale
			}
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(y, d)
		id := 1 / d
		scales := y[66:74]
		for ib := range QK_K / 16 {
			l := byte(superScaleCode(id, s.scales[ib]))
			if ib%2 == 0 {
				scales[ib/2] = l
			} else {
				scales[ib/2] |= l << 4
			}
		}
		for i, v := range q2 {
			binary.LittleEndian.PutUint16(y[2+2*i:], v)
		}
	}
	return nil
}

// quantizeIQ2S quantises src into IQ2_S super-blocks (quantize_iq2_s); qw
// is nil or holds a weight for each value of src.
func quantizeIQ2S(dst []byte, src, qw []float32) error {
	g := gridIQ2S()
	var s iq2Scratch
	for ibl := range len(src) / QK_K {
		x := src[QK_K*ibl : QK_K*(ibl+1)]
		y := dst[82*ibl : 82*(ibl+1)]
		clear(y)
		qs, signsOut, qh, scales := y[2:34], y[34:66], y[66:74], y[74:82]
		sigma2 := float32(2*sumSquares(x)) / QK_K
		var maxScale float32
		for ib := range QK_K / 16 {
			xb := x[16*ib : 16*ib+16]
			weight, waux, xval := s.weight[:16], s.waux[:16], s.xval[:16]
			L, Laux := s.L[:16], s.Laux[:16]
			if qw != nil {
				latticeWeights(weight, waux, xb, qw[QK_K*ibl+16*ib:QK_K*ibl+16*ib+16], sigma2)
			} else {
				for i, v := range xb {
					weight[i] = float32(0.25*sigma2) + float32(v*v)
				}
				for i, w := range weight {
					waux[i] = sqrt32(w)
				}
			}
			var signs [2]uint8
			for k := range 2 {
				for i, v := range xb[8*k : 8*k+8] {
					if v >= 0 {
						xval[8*k+i] = v
					} else {
						xval[8*k+i] = -v
						signs[k] |= 1 << i
					}
				}
			}
			maxv := maxOf(xval)
			clear(L)
			if maxv < 1e-8 { // GROUP_MAX_EPS_IQ2_S
				s.scales[ib] = 0
				continue
			}
			s.onGrid = [2]bool{true, true}
			scale, ok := g.searchScale(xval, weight, waux, iq2KMaxQ, 9, 0.1, maxv, maxv/(2*iq2KMaxQ-1),
				L, Laux, s.onGrid[:], s.onGridAux[:])
			if !ok {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			if !allTrue(s.onGrid[:]) && scale > 0 {
				if scale, ok = g.resnap(xval, weight, waux, iq2KMaxQ, scale, L, s.onGrid[:]); !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k]
				}
			}
			for k := range 2 {
				j, ok := g.gridIndex(L[8*k:])
				if !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
				i8 := 2*ib + k
				qs[i8] = byte(j)
				qh[i8/4] |= byte(j>>8) << (2 * (i8 % 4))
				signsOut[i8] = signs[k]
			}
			if !(scale >= 0) {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			s.scales[ib] = scale
			if !(maxScale > scale) {
				maxScale = scale
			}
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(y, float32(d*0.9875))
		id := 1 / d
		for ib := range QK_K / 16 {
			l := byte(superScaleCode(id, s.scales[ib]))
			if ib%2 == 0 {
				scales[ib/2] = l
			} else {
				scales[ib/2] |= l << 4
			}
		}
	}
	return nil
}

// dequantizeIQ2S is dequantize_row_iq2_s.
func dequantizeIQ2S(dst []float32, src []byte) {
	grid := valuesIQ2S()
	for ibl := range len(dst) / QK_K {
		b := src[82*ibl : 82*(ibl+1)]
		y := dst[QK_K*ibl : QK_K*(ibl+1)]
		d := getF16(b)
		qs, signs, qh, scales := b[2:34], b[34:66], b[66:74], b[74:82]
		for ib := range QK_K / 32 {
			db := [2]float32{
				float32(float32(d*float32(0.5+float32(scales[ib]&0xf))) * 0.25),
				float32(float32(d*float32(0.5+float32(scales[ib]>>4))) * 0.25),
			}
			for l := range 4 {
				j := int(qs[4*ib+l]) | int(qh[ib])<<(8-2*l)&0x300
				gp := grid[8*j : 8*j+8]
				sg := signs[4*ib+l]
				out := y[32*ib+8*l:]
				for k, v := range gp {
					out[k] = float32(db[l/2]*float32(v)) * signOf(sg, k)
				}
			}
		}
	}
}

// dequantizeIQ2XXS is dequantize_row_iq2_xxs.
func dequantizeIQ2XXS(dst []float32, src []byte) {
	grid := valuesIQ2XXS()
	for ibl := range len(dst) / QK_K {
		b := src[66*ibl : 66*(ibl+1)]
		y := dst[QK_K*ibl : QK_K*(ibl+1)]
		d := getF16(b)
		for ib := range QK_K / 32 {
			idx := b[2+8*ib : 2+8*ib+4]
			aux := binary.LittleEndian.Uint32(b[2+8*ib+4:])
			db := float32(float32(d*float32(0.5+float32(aux>>28))) * 0.25)
			for l := range 4 {
				gp := grid[8*int(idx[l]) : 8*int(idx[l])+8]
				signs := signOdd(uint8(aux >> (7 * l) & 127))
				out := y[32*ib+8*l:]
				for j, v := range gp {
					out[j] = float32(db*float32(v)) * signOf(signs, j)
				}
			}
		}
	}
}

// dequantizeIQ2XS is dequantize_row_iq2_xs.
func dequantizeIQ2XS(dst []float32, src []byte) {
	grid := valuesIQ2XS()
	for ibl := range len(dst) / QK_K {
		b := src[74*ibl : 74*(ibl+1)]
		y := dst[QK_K*ibl : QK_K*(ibl+1)]
		d := getF16(b)
		scales := b[66:74]
		for ib := range QK_K / 32 {
			db := [2]float32{
				float32(float32(d*float32(0.5+float32(scales[ib]&0xf))) * 0.25),
				float32(float32(d*float32(0.5+float32(scales[ib]>>4))) * 0.25),
			}
			for l := range 4 {
				q := binary.LittleEndian.Uint16(b[2+2*(4*ib+l):])
				gp := grid[8*int(q&511) : 8*int(q&511)+8]
				signs := signOdd(uint8(q >> 9))
				out := y[32*ib+8*l:]
				for j, v := range gp {
					out[j] = float32(db[l/2]*float32(v)) * signOf(signs, j)
				}
			}
		}
	}
}
