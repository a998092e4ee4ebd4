package quant

// The 2- and 3-bit k-quant super-block formats (ggml-common.h), 256
// weights in sixteen sub-blocks of 16:
//
//	Q2_K: scales[16], qs[64], d f16, dmin f16           (84 bytes)
//	Q3_K: hmask[32], qs[64], scales[12], d f16          (110 bytes)
//
// A Q2_K scales byte holds a sub-block's 4-bit scale (low nibble) and 4-bit
// min (high nibble). Q3_K's twelve scale bytes hold sixteen 6-bit signed
// scales (offset by 32): the low nibbles in bytes 0..7 (sub-blocks 0..7 in
// the low halves, 8..15 in the high halves), the top two bits in bytes
// 8..11. Both pack four 2-bit levels a byte, weights l, l+32, l+64, l+96 of
// each 128; Q3_K keeps each level's third bit in hmask (bit j/32 of byte
// j%32).

// QuantizeQ2_K quantises src (a multiple of 256 values) into dst
// (len(src)/256*84 bytes) as quantize_row_q2_K_ref, which is what
// ggml_quantize_chunk runs for Q2_K without an importance matrix.
func QuantizeQ2_K(dst []byte, src []float32) error {
	if err := checkRow(Q2_K, len(dst), len(src)); err != nil {
		return err
	}
	var s fitScratch
	var L [QK_K]uint8
	var w, scales, mins [QK_K / 16]float32
	for i := range len(src) / QK_K {
		x := (*[QK_K]float32)(src[i*QK_K:])
		y := (*[84]byte)(dst[i*84:])
		var maxScale, maxMin float32
		for j := range QK_K / 16 {
			xs := x[16*j : 16*j+16]
			for l, v := range xs {
				w[l] = abs32(v)
			}
			scales[j], mins[j] = makeQkxQuants(xs, w[:], L[16*j:16*j+16], &s, 3, -0.5, 0.1, 15, true)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		sc := (*[16]byte)(y[0:16])
		if maxScale > 0 {
			iscale := 15 / maxScale
			for j := range sc {
				sc[j] = uint8(nearestInt(float32(iscale * scales[j])))
			}
			putF16(y[80:], maxScale/15)
		} else {
			*sc = [16]byte{}
			putF16(y[80:], 0)
		}
		if maxMin > 0 {
			iscale := 15 / maxMin
			for j := range sc {
				sc[j] |= uint8(nearestInt(float32(iscale*mins[j])) << 4)
			}
			putF16(y[82:], maxMin/15)
		} else {
			putF16(y[82:], 0)
		}
		q2Requantize(x, &L, sc, getF16(y[80:]), getF16(y[82:]))
		pack2Bit((*[64]byte)(y[16:80]), &L)
	}
	return nil
}

// q2Requantize recomputes the levels of each sub-block against the stored
// F16 scales, as the second half of the Q2_K quantisers; sub-blocks whose
// scale is zero keep the levels of the fit.
func q2Requantize(x *[QK_K]float32, L *[QK_K]uint8, sc *[16]byte, d16, dmin16 float32) {
	for j := range QK_K / 16 {
		d := float32(d16 * float32(sc[j]&0xF))
		if d == 0 {
			continue
		}
		dm := float32(dmin16 * float32(sc[j]>>4))
		for ii := range 16 {
			l := nearestInt((x[16*j+ii] + dm) / d)
			L[16*j+ii] = uint8(max(0, min(3, l)))
		}
	}
}

// pack2Bit stores the 2-bit levels L (each 0..3) four to a byte, weights
// l, l+32, l+64, l+96 of each 128 in byte l of its 32.
func pack2Bit(qs *[64]byte, L *[QK_K]uint8) {
	for j := 0; j < QK_K; j += 128 {
		for l := range 32 {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// makeQ3Quants16 is make_q3_quants for n = 16, nmax = 4, do_rmse = true (the
// only way quantize_row_q3_K_ref calls it): a symmetric fit with levels
// -4..3, weighted by x^2, refined by moving single levels for up to 5
// rounds; L receives the levels plus 4.
func makeQ3Quants16(x *[16]float32, L *[16]int8) float32 {
	const nmax = 4
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
	iscale := -nmax / maxv
	var sumlx, suml2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
		L[i] = int8(l)
		w[i] = float32(v * v)
		wx[i] = float32(w[i] * v)
		f := float32(l)
		sumlx += float32(wx[i] * f)
		suml2 += float32(float32(w[i]*f) * f)
	}
	for range 5 {
		changed := false
		for i, v := range x {
			li := float32(L[i])
			slx := sumlx - float32(wx[i]*li)
			if !(slx > 0) {
				continue
			}
			sl2 := suml2 - float32(float32(w[i]*li)*li)
			newL := max(-nmax, min(nmax-1, nearestInt(float32(v*sl2)/slx)))
			if newL == int32(L[i]) {
				continue
			}
			f := float32(newL)
			slx += float32(wx[i] * f)
			sl2 += float32(float32(w[i]*f) * f)
			if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
				L[i] = int8(newL)
				sumlx, suml2 = slx, sl2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for i := range L {
		L[i] += nmax
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// QuantizeQ3_K quantises src into dst as quantize_row_q3_K_ref (what
// ggml_quantize_chunk runs for Q3_K without an importance matrix).
func QuantizeQ3_K(dst []byte, src []float32) error {
	if err := checkRow(Q3_K, len(dst), len(src)); err != nil {
		return err
	}
	var L [QK_K]int8
	var scales [QK_K / 16]float32
	for i := range len(src) / QK_K {
		x := (*[QK_K]float32)(src[i*QK_K:])
		y := (*[110]byte)(dst[i*110:])
		var maxScale, amax float32
		for j := range QK_K / 16 {
			scales[j] = makeQ3Quants16((*[16]float32)(x[16*j:]), (*[16]int8)(L[16*j:]))
			if a := abs32(scales[j]); a > amax {
				amax, maxScale = a, scales[j]
			}
		}
		sc := (*[12]byte)(y[96:108])
		*sc = [12]byte{}
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range QK_K / 16 {
				// int8_t l = nearest_int(...): truncated to 8 bits first.
				l := int8(nearestInt(float32(iscale * scales[j])))
				putQ3Scale(sc, j, max(-32, min(31, l))+32)
			}
			putF16(y[108:], 1/iscale)
		} else {
			putF16(y[108:], 0)
		}
		q3Requantize(x, &L, sc, getF16(y[108:]))
		packQ3(y, &L)
	}
	return nil
}

// putQ3Scale ORs the 6-bit scale level l (0..63) of sub-block j into the
// twelve zeroed scale bytes of a Q3_K block.
func putQ3Scale(sc *[12]byte, j int, l int8) {
	if j < 8 {
		sc[j] = uint8(l) & 0xF
	} else {
		sc[j-8] |= (uint8(l) & 0xF) << 4
	}
	sc[j%4+8] |= uint8(l>>4) << (2 * (j / 4))
}

// q3Scale unpacks the signed scale of sub-block j of a Q3_K block.
func q3Scale(sc *[12]byte, j int) int8 {
	var lo uint8
	if j < 8 {
		lo = sc[j] & 0xF
	} else {
		lo = sc[j-8] >> 4
	}
	return int8(lo|(sc[8+j%4]>>(2*(j/4))&3)<<4) - 32
}

// q3Requantize recomputes the levels (plus 4) of each sub-block against the
// stored scales, as the second half of the Q3_K quantisers; sub-blocks whose
// scale is zero keep the levels of the fit.
func q3Requantize(x *[QK_K]float32, L *[QK_K]int8, sc *[12]byte, d16 float32) {
	for j := range QK_K / 16 {
		d := float32(d16 * float32(q3Scale(sc, j)))
		if d == 0 {
			continue
		}
		for ii := range 16 {
			l := nearestInt(x[16*j+ii] / d)
			L[16*j+ii] = int8(max(-4, min(3, l)) + 4)
		}
	}
}

// packQ3 stores the levels L (each 0..7) of a Q3_K block: the third bit in
// hmask, the low two bits in qs. It changes L as the C code does
// ("if (L[j] > 3) { hmask |= ...; L[j] -= 4; }"), without the branch,
// which for levels 0..7 is taken half the time at random.
func packQ3(y *[110]byte, L *[QK_K]int8) {
	hmask := (*[32]byte)(y[0:32])
	*hmask = [32]byte{}
	for b := range 8 {
		Lb := (*[32]int8)(L[32*b:])
		for m := range 32 {
			h := uint8(Lb[m]) >> 2 & 1
			hmask[m] |= h << b
			Lb[m] -= int8(h << 2)
		}
	}
	qs := y[32:96]
	for j := 0; j < QK_K; j += 128 {
		for l := range 32 {
			qs[j/4+l] = uint8(L[j+l]) | uint8(L[j+l+32])<<2 | uint8(L[j+l+64])<<4 | uint8(L[j+l+96])<<6
		}
	}
}

// DequantizeQ2_K expands Q2_K blocks into dst as dequantize_row_q2_K.
func DequantizeQ2_K(dst []float32, src []byte) error {
	if err := checkRow(Q2_K, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / QK_K {
		b := (*[84]byte)(src[i*84:])
		y := (*[QK_K]float32)(dst[i*QK_K:])
		d, dmin := getF16(b[80:]), getF16(b[82:])
		for n := 0; n < QK_K; n += 128 {
			q := b[16+n/4 : 16+n/4+32]
			for j := range 4 {
				shift := 2 * j
				for half := range 2 {
					sc := b[n/16+2*j+half]
					dl, ml := float32(d*float32(sc&0xF)), float32(dmin*float32(sc>>4))
					out := y[n+32*j+16*half:]
					for l := range 16 {
						out[l] = float32(dl*float32(q[16*half+l]>>shift&3)) - ml
					}
				}
			}
		}
	}
	return nil
}

// DequantizeQ3_K expands Q3_K blocks into dst as dequantize_row_q3_K.
func DequantizeQ3_K(dst []float32, src []byte) error {
	if err := checkRow(Q3_K, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / QK_K {
		b := (*[110]byte)(src[i*110:])
		y := (*[QK_K]float32)(dst[i*QK_K:])
		d := getF16(b[108:])
		sc := (*[12]byte)(b[96:108])
		hm := b[0:32]
		m := uint8(1)
		for n := 0; n < QK_K; n += 128 {
			q := b[32+n/4 : 32+n/4+32]
			for j := range 4 {
				shift := 2 * j
				for half := range 2 {
					dl := float32(d * float32(q3Scale(sc, n/16+2*j+half)))
					out := y[n+32*j+16*half:]
					for l := range 16 {
						v := int8(q[16*half+l] >> shift & 3)
						if hm[16*half+l]&m == 0 {
							v -= 4
						}
						out[l] = dl * float32(v)
					}
				}
				m <<= 1
			}
		}
	}
	return nil
}
