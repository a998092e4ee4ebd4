package quant

import (
	"encoding/binary"
	"fmt"
)

// The 3-bit lattice formats (ggml-common.h), 256 weights each:
//
//	IQ3_XXS: d f16, qs[64] grid indices, scales_and_signs[8] u32      (98 bytes)
//	IQ3_S:   d f16, qs[64], qh[8], signs[32], scales[4]               (110 bytes)
//
// Each group of four weights is a point of a 256-point (IQ3_XXS) or
// 512-point (IQ3_S, the ninth index bit in qh) grid of levels 0..7. IQ3_XXS
// keeps seven sign bits per eight weights (the eighth makes the count of
// negatives even) and a 4-bit scale per 32 weights in the top of each u32;
// IQ3_S keeps all eight sign bits and packs two 4-bit scales a byte.

const iq3KMaxQ = 8

// iq3Scratch is the working memory of one 32-weight sub-block.
type iq3Scratch struct {
	weight, waux, xval [32]float32
	L, Laux            [32]int8
	onGrid, onGridAux  [8]bool
	scales             [QK_K / 32]float32
}

// quantizeIQ3XXS quantises src into IQ3_XXS super-blocks
// (quantize_iq3_xxs); qw is nil or holds a weight for each value of src.
func quantizeIQ3XXS(dst []byte, src, qw []float32) error {
	g := gridIQ3XXS()
	var s iq3Scratch
	for ibl := range len(src) / QK_K {
		x := src[QK_K*ibl : QK_K*(ibl+1)]
		y := dst[98*ibl : 98*(ibl+1)]
		clear(y)
		qs, scalesAndSigns := y[2:66], y[66:98]
		sigma2 := float32(2*sumSquares(x)) / QK_K
		var maxScale float32
		for ib := range QK_K / 32 {
			xb := x[32*ib : 32*ib+32]
			var w []float32
			if qw != nil {
				w = qw[QK_K*ibl+32*ib : QK_K*ibl+32*ib+32]
			}
			latticeWeights(s.weight[:], s.waux[:], xb, w, sigma2)
			var signs [4]uint8
			for k := range 4 {
				signs[k] = evenSigns(s.xval[8*k:], xb[8*k:], s.weight[8*k:])
			}
			maxv := maxOf(s.xval[:])
			s.L = [32]int8{}
			if maxv < 1e-8 { // GROUP_MAX_EPS_IQ3_XXS
				s.scales[ib] = 0
				continue
			}
			s.onGrid = [8]bool{true, true, true, true, true, true, true, true}
			scale, ok := g.searchScale(s.xval[:], s.weight[:], s.waux[:], iq3KMaxQ, 15, 0.2, maxv, maxv/(2*iq3KMaxQ-1),
				s.L[:], s.Laux[:], s.onGrid[:], s.onGridAux[:])
			if !ok {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			if !allTrue(s.onGrid[:]) && scale > 0 {
				if scale, ok = g.resnap(s.xval[:], s.weight[:], s.waux[:], iq3KMaxQ, scale, s.L[:], s.onGrid[:]); !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k] & 127
				}
			}
			for k := range 8 {
				j, ok := g.gridIndex(s.L[4*k:])
				if !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
				qs[8*ib+k] = byte(j)
			}
			binary.LittleEndian.PutUint32(scalesAndSigns[4*ib:], uint32(signs[0])|uint32(signs[1])<<7|uint32(signs[2])<<14|uint32(signs[3])<<21)
			if !(scale >= 0) {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			s.scales[ib] = scale
			if !(maxScale > scale) {
				maxScale = scale
			}
		}
		if maxScale == 0 {
			clear(y)
			continue
		}
		d := maxScale / 31
		putF16(y, float32(d*1.0125))
		id := 1 / d
		for ib := range QK_K / 32 {
			v := binary.LittleEndian.Uint32(scalesAndSigns[4*ib:])
			binary.LittleEndian.PutUint32(scalesAndSigns[4*ib:], v|superScaleCode(id, s.scales[ib])<<28)
		}
	}
	return nil
}

// quantizeIQ3S quantises src into IQ3_S super-blocks (quantize_iq3_s).
//
// Like the reference it advances its write position in qs and signs only
// past sub-blocks it quantised: after an all-zero sub-block the following
// ones' indices and signs land 8 and 4 bytes early (qh and the scales are
// indexed by sub-block and stay in place). The bytes must match, so that
// is kept.
func quantizeIQ3S(dst []byte, src, qw []float32) error {
	g := gridIQ3S()
	var s iq3Scratch
	for ibl := range len(src) / QK_K {
		x := src[QK_K*ibl : QK_K*(ibl+1)]
		y := dst[110*ibl : 110*(ibl+1)]
		clear(y)
		qs, qh, signsOut, scalesOut := y[2:66], y[66:74], y[74:106], y[106:110]
		sigma2 := float32(2*sumSquares(x)) / QK_K
		var maxScale float32
		for ib := range QK_K / 32 {
			xb := x[32*ib : 32*ib+32]
			var w []float32
			if qw != nil {
				w = qw[QK_K*ibl+32*ib : QK_K*ibl+32*ib+32]
			}
			latticeWeights(s.weight[:], s.waux[:], xb, w, sigma2)
			var signs [4]uint8
			for k := range 4 {
				for i, v := range xb[8*k : 8*k+8] {
					if v >= 0 {
						s.xval[8*k+i] = v
					} else {
						s.xval[8*k+i] = -v
						signs[k] |= 1 << i
					}
				}
			}
			maxv := maxOf(s.xval[:])
			s.L = [32]int8{}
			if maxv == 0 {
				s.scales[ib] = 0
				continue
			}
			s.onGrid = [8]bool{}
			scale, ok := g.searchScale(s.xval[:], s.weight[:], s.waux[:], iq3KMaxQ, 9, 0.2, maxv, maxv/(2*iq3KMaxQ-1),
				s.L[:], s.Laux[:], s.onGrid[:], s.onGridAux[:])
			if !ok {
				return fmt.Errorf("block %d: %w", ibl, errOffGrid)
			}
			if !allTrue(s.onGrid[:]) && scale > 0 {
				if scale, ok = g.resnap(s.xval[:], s.weight[:], s.waux[:], iq3KMaxQ, scale, s.L[:], nil); !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k]
				}
			}
			for k := range 8 {
				j, ok := g.gridIndex(s.L[4*k:])
				if !ok {
					return fmt.Errorf("block %d: %w", ibl, errOffGrid)
				}
				qs[k] = byte(j)
				qh[ib] |= byte(j>>8) << k
			}
			qs = qs[8:]
			copy(signsOut, signs[:])
			signsOut = signsOut[4:]
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
		putF16(y, float32(d*1.033))
		id := 1 / d
		for ib := 0; ib < QK_K/32; ib += 2 {
			scalesOut[ib/2] = byte(superScaleCode(id, s.scales[ib]) | superScaleCode(id, s.scales[ib+1])<<4)
		}
	}
	return nil
}

// allTrue reports whether every flag is set.
func allTrue(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

// signOf is the sign factor for bit j of a sign byte: -1 when set.
func signOf(signs uint8, j int) float32 {
	if signs>>j&1 != 0 {
		return -1
	}
	return 1
}

// dequantizeIQ3XXS is dequantize_row_iq3_xxs.
func dequantizeIQ3XXS(dst []float32, src []byte) {
	grid := valuesIQ3XXS()
	for ibl := range len(dst) / QK_K {
		b := src[98*ibl : 98*(ibl+1)]
		y := dst[QK_K*ibl : QK_K*(ibl+1)]
		d := getF16(b)
		qs, ss := b[2:66], b[66:98]
		for ib := range QK_K / 32 {
			aux := binary.LittleEndian.Uint32(ss[4*ib:])
			db := float32(float32(d*float32(0.5+float32(aux>>28))) * 0.5)
			for l := range 4 {
				signs := signOdd(uint8(aux >> (7 * l) & 127))
				g1 := grid[4*int(qs[8*ib+2*l]):]
				g2 := grid[4*int(qs[8*ib+2*l+1]):]
				out := y[32*ib+8*l:]
				for j := range 4 {
					out[j] = float32(db*float32(g1[j])) * signOf(signs, j)
					out[j+4] = float32(db*float32(g2[j])) * signOf(signs, j+4)
				}
			}
		}
	}
}

// dequantizeIQ3S is dequantize_row_iq3_s.
func dequantizeIQ3S(dst []float32, src []byte) {
	grid := valuesIQ3S()
	for ibl := range len(dst) / QK_K {
		b := src[110*ibl : 110*(ibl+1)]
		y := dst[QK_K*ibl : QK_K*(ibl+1)]
		d := getF16(b)
		qs, qh, signs, scales := b[2:66], b[66:74], b[74:106], b[106:110]
		for ib := range QK_K / 32 {
			sc := scales[ib/2] >> (4 * (ib % 2)) & 0xf
			db := float32(d * float32(1+2*int32(sc)))
			for l := range 4 {
				i1 := int(qs[8*ib+2*l]) | int(qh[ib])<<(8-2*l)&256
				i2 := int(qs[8*ib+2*l+1]) | int(qh[ib])<<(7-2*l)&256
				sg := signs[4*ib+l]
				out := y[32*ib+8*l:]
				for j := range 4 {
					out[j] = float32(db*float32(grid[4*i1+j])) * signOf(sg, j)
					out[j+4] = float32(db*float32(grid[4*i2+j])) * signOf(sg, j+4)
				}
			}
		}
	}
}
