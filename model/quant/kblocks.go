package quant

// QuantizeQ4_K quantises src (a multiple of 256 values) into dst
// (len(src)/256*144 bytes) as quantize_row_q4_K_ref, which is what
// ggml_quantize_chunk (and so llama-quantize) runs for Q4_K when no
// importance matrix is given.
func QuantizeQ4_K(dst []byte, src []float32) error {
	if err := checkRow(Q4_K, len(dst), len(src)); err != nil {
		return err
	}
	var s kScratch
	for i := range len(src) / QK_K {
		x := (*[QK_K]float32)(src[i*QK_K:])
		y := (*[144]byte)(dst[i*144:])
		scales := (*[12]byte)(y[4:16])
		d, dmin := kScalesAndMins(x, &s, 15, -1, 0.1, 20, scales)
		putF16(y[0:], d)
		putF16(y[2:], dmin)
		kRequantize(x, &s, 15, getF16(y[0:]), getF16(y[2:]), scales)
		packQ4K(y, &s.L)
	}
	return nil
}

// packQ4K stores the 4-bit levels L of a Q4_K block: weights l and l+32 of
// each 64 in the low and high nibble of byte l of its 32.
func packQ4K(y *[144]byte, L *[QK_K]uint8) {
	q := y[16:]
	for j := 0; j < QK_K; j += 64 {
		for l := range 32 {
			q[l] = L[j+l] | L[j+l+32]<<4
		}
		q = q[32:]
	}
}

// QuantizeQ5_K quantises src into dst as quantize_row_q5_K_ref (llama.cpp
// uses Q5_K in its Q4_K_S mix).
func QuantizeQ5_K(dst []byte, src []float32) error {
	if err := checkRow(Q5_K, len(dst), len(src)); err != nil {
		return err
	}
	var s kScratch
	for i := range len(src) / QK_K {
		x := (*[QK_K]float32)(src[i*QK_K:])
		y := (*[176]byte)(dst[i*176:])
		scales := (*[12]byte)(y[4:16])
		d, dmin := kScalesAndMins(x, &s, 31, -0.5, 0.1, 15, scales)
		putF16(y[0:], d)
		putF16(y[2:], dmin)
		kRequantize(x, &s, 31, getF16(y[0:]), getF16(y[2:]), scales)
		packQ5K(y, &s.L)
	}
	return nil
}

// packQ5K stores the 5-bit levels L of a Q5_K block: the low four bits as
// packQ4K does, the fifth in qh (two bits of byte j per 64 weights).
func packQ5K(y *[176]byte, L *[QK_K]uint8) {
	qh := (*[32]byte)(y[16:48])
	*qh = [32]byte{}
	ql := y[48:]
	m1, m2 := uint8(1), uint8(2)
	for n := 0; n < QK_K; n += 64 {
		for j := range 32 {
			l1 := L[n+j]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			l2 := L[n+j+32]
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
		ql = ql[32:]
	}
}

// QuantizeQ6_K quantises src into dst as quantize_row_q6_K_ref (what
// ggml_quantize_chunk runs for Q6_K without an importance matrix).
func QuantizeQ6_K(dst []byte, src []float32) error {
	if err := checkRow(Q6_K, len(dst), len(src)); err != nil {
		return err
	}
	var L [QK_K]int8
	for i := range len(src) / QK_K {
		quantizeQ6KBlock((*[210]byte)(dst[i*210:]), (*[QK_K]float32)(src[i*QK_K:]), nil, &L, nil)
	}
	return nil
}

// quantizeQ6KBlock is one block of quantize_row_q6_K_ref (qw nil) or of
// quantize_row_q6_K_impl with the importance weights qw of its 256
// columns (then s is the fits' scratch).
func quantizeQ6KBlock(y *[210]byte, x *[QK_K]float32, qw *[QK_K]float32, L *[QK_K]int8, s *fitScratch) {
	var scales [QK_K / 16]float32
	var maxScale, maxAbsScale float32
	for ib := range QK_K / 16 {
		var sc float32
		if qw == nil {
			sc = makeQxQuants16((*[16]float32)(x[16*ib:]), (*[16]int8)(L[16*ib:]))
		} else {
			sc = makeQxQuants(x[16*ib:16*ib+16], qw[16*ib:16*ib+16], L[16*ib:16*ib+16], s, 32)
		}
		scales[ib] = sc
		if a := abs32(sc); a > maxAbsScale {
			maxAbsScale, maxScale = a, sc
		}
	}
	if maxAbsScale < groupMaxEps {
		*y = [210]byte{}
		putF16(y[208:], 0)
		return
	}
	iscale := -128 / maxScale
	putF16(y[208:], 1/iscale)
	sc := (*[16]byte)(y[192:208])
	for ib := range QK_K / 16 {
		sc[ib] = byte(min(127, nearestInt(float32(iscale*scales[ib]))))
	}
	d16 := getF16(y[208:])
	for j := range QK_K / 16 {
		d := float32(d16 * float32(int8(sc[j])))
		if d == 0 {
			continue
		}
		for ii := range 16 {
			l := nearestInt(x[16*j+ii] / d)
			L[16*j+ii] = int8(max(-32, min(31, l)) + 32)
		}
	}
	ql := y[0:128]
	qh := y[128:192]
	for j := 0; j < QK_K; j += 128 {
		for l := range 32 {
			q1 := uint8(L[j+l]) & 0xF
			q2 := uint8(L[j+l+32]) & 0xF
			q3 := uint8(L[j+l+64]) & 0xF
			q4 := uint8(L[j+l+96]) & 0xF
			ql[l] = q1 | q3<<4
			ql[l+32] = q2 | q4<<4
			qh[l] = uint8(L[j+l]>>4) | uint8(L[j+l+32]>>4)<<2 | uint8(L[j+l+64]>>4)<<4 | uint8(L[j+l+96]>>4)<<6
		}
		ql = ql[64:]
		qh = qh[32:]
	}
}

// DequantizeQ4_K expands Q4_K blocks into dst as dequantize_row_q4_K.
func DequantizeQ4_K(dst []float32, src []byte) error {
	if err := checkRow(Q4_K, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / QK_K {
		b := (*[144]byte)(src[i*144:])
		y := dst[i*QK_K : (i+1)*QK_K]
		d, dmin := getF16(b[0:]), getF16(b[2:])
		scales := (*[12]byte)(b[4:16])
		q := b[16:]
		for j, is := 0, 0; j < QK_K; j, is = j+64, is+2 {
			sc1, m1 := getScaleMinK4(is, scales)
			sc2, m2 := getScaleMinK4(is+1, scales)
			d1, dm1 := float32(d*float32(sc1)), float32(dmin*float32(m1))
			d2, dm2 := float32(d*float32(sc2)), float32(dmin*float32(m2))
			for l := range 32 {
				y[j+l] = float32(d1*float32(q[l]&0xF)) - dm1
				y[j+32+l] = float32(d2*float32(q[l]>>4)) - dm2
			}
			q = q[32:]
		}
	}
	return nil
}

// DequantizeQ5_K expands Q5_K blocks into dst as dequantize_row_q5_K.
func DequantizeQ5_K(dst []float32, src []byte) error {
	if err := checkRow(Q5_K, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / QK_K {
		b := (*[176]byte)(src[i*176:])
		y := dst[i*QK_K : (i+1)*QK_K]
		d, dmin := getF16(b[0:]), getF16(b[2:])
		scales := (*[12]byte)(b[4:16])
		qh := b[16:48]
		ql := b[48:]
		u1, u2 := uint8(1), uint8(2)
		for j, is := 0, 0; j < QK_K; j, is = j+64, is+2 {
			sc1, m1 := getScaleMinK4(is, scales)
			sc2, m2 := getScaleMinK4(is+1, scales)
			d1, dm1 := float32(d*float32(sc1)), float32(dmin*float32(m1))
			d2, dm2 := float32(d*float32(sc2)), float32(dmin*float32(m2))
			for l := range 32 {
				v1, v2 := ql[l]&0xF, ql[l]>>4
				if qh[l]&u1 != 0 {
					v1 += 16
				}
				if qh[l]&u2 != 0 {
					v2 += 16
				}
				y[j+l] = float32(d1*float32(v1)) - dm1
				y[j+32+l] = float32(d2*float32(v2)) - dm2
			}
			ql = ql[32:]
			u1 <<= 2
			u2 <<= 2
		}
	}
	return nil
}

// DequantizeQ6_K expands Q6_K blocks into dst as dequantize_row_q6_K.
func DequantizeQ6_K(dst []float32, src []byte) error {
	if err := checkRow(Q6_K, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / QK_K {
		b := (*[210]byte)(src[i*210:])
		y := dst[i*QK_K : (i+1)*QK_K]
		d := getF16(b[208:])
		ql, qh, sc := b[0:128], b[128:192], b[192:208]
		for n := 0; n < QK_K; n += 128 {
			for l := range 32 {
				is := l / 16
				q1 := int8(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
				q2 := int8(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
				q3 := int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				y[n+l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				y[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				y[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				y[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
			ql, qh, sc = ql[64:], qh[32:], sc[8:]
		}
	}
	return nil
}
