package quant

import (
	"encoding/binary"
	"math"
)

// The 32-weight block formats (ggml-common.h):
//
//	Q4_0: d f16, qs[16]                       (18 bytes)
//	Q4_1: d f16, m f16, qs[16]                (20 bytes)
//	Q5_0: d f16, qh u32, qs[16]               (22 bytes)
//	Q5_1: d f16, m f16, qh u32, qs[16]        (24 bytes)
//	Q8_0: d f16, qs[32] int8                  (34 bytes)
//
// In the 4- and 5-bit formats byte j of qs holds weight j in its low nibble
// and weight j+16 in its high nibble; bit j of qh is the fifth bit of weight j.

const qk = 32

// QuantizeQ8_0 quantises src (a multiple of 32 values) into dst
// (len(src)/32*34 bytes) as quantize_row_q8_0_ref.
func QuantizeQ8_0(dst []byte, src []float32) error {
	if err := checkRow(Q8_0, len(dst), len(src)); err != nil {
		return err
	}
	for i := range len(src) / qk {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[34]byte)(dst[i*34:])
		amax, clean := absMax(x)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		if clean && amax <= math.MaxFloat32 && id <= math.MaxFloat32 {
			// No NaN, and every |x*id| is at most about 127, so roundf and
			// the cast cannot leave int32's range: skip roundInt32's check.
			for j, v := range x {
				f := float32(v * id)
				y[2+j] = byte(int32(float64(f) + copysignHalf(f)))
			}
			continue
		}
		for j, v := range x {
			y[2+j] = byte(roundInt32(float32(v * id)))
		}
	}
	return nil
}

// absMax is the Q8_0 reference's loop amax = MAX(amax, fabsf(v)) from 0.
// For non-NaN input it is the largest |v|, found here as the largest bit
// pattern (the order of non-negative floats), which compiles to
// conditional moves; a block holding a NaN takes the C loop itself, whose
// result then depends on where the NaN sits. clean reports a block
// without NaN.
func absMax(x *[qk]float32) (amax float32, clean bool) {
	if m := absMaxBits(x); m <= 0x7f800000 {
		return math.Float32frombits(m), true
	}
	for _, v := range x {
		if av := abs32(v); !(amax > av) {
			amax = av
		}
	}
	return amax, false
}

// absMaxBits is the largest bit pattern of |v| in x; it exceeds 0x7f800000
// exactly when x holds a NaN.
func absMaxBits(x *[qk]float32) uint32 {
	// Four independent chains of conditional moves run about three times
	// faster than one.
	var m0, m1, m2, m3 uint32
	for j := 0; j < qk; j += 4 {
		m0 = max(m0, math.Float32bits(x[j])&0x7fffffff)
		m1 = max(m1, math.Float32bits(x[j+1])&0x7fffffff)
		m2 = max(m2, math.Float32bits(x[j+2])&0x7fffffff)
		m3 = max(m3, math.Float32bits(x[j+3])&0x7fffffff)
	}
	return max(m0, m1, m2, m3)
}

// QuantizeQ4_0 quantises src into dst as quantize_row_q4_0_ref: the scale is
// the value of largest magnitude (sign kept) divided by -8.
func QuantizeQ4_0(dst []byte, src []float32) error {
	if err := checkRow(Q4_0, len(dst), len(src)); err != nil {
		return err
	}
	for i := range len(src) / qk {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[18]byte)(dst[i*18:])
		amax, maxv, clean := absMaxSigned(x)
		d := maxv / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		if clean && amax <= math.MaxFloat32 && id <= math.MaxFloat32 && id >= -math.MaxFloat32 {
			// No NaN, and |x*id| <= 8 (up to rounding), so the casts stay
			// in range: skip truncInt32's check.
			for j := range qk / 2 {
				xi0 := min(15, int32(float32(x[j]*id)+8.5))
				xi1 := min(15, int32(float32(x[qk/2+j]*id)+8.5))
				y[2+j] = uint8(xi0) | uint8(xi1)<<4
			}
			continue
		}
		for j := range qk / 2 {
			x0 := float32(x[j] * id)
			x1 := float32(x[qk/2+j] * id)
			xi0 := min(15, int32(int8(truncInt32(x0+8.5))))
			xi1 := min(15, int32(int8(truncInt32(x1+8.5))))
			y[2+j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
	return nil
}

// QuantizeQ4_1 quantises src into dst as quantize_row_q4_1_ref (scale and
// minimum per block).
func QuantizeQ4_1(dst []byte, src []float32) error {
	if err := checkRow(Q4_1, len(dst), len(src)); err != nil {
		return err
	}
	for i := range len(src) / qk {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[20]byte)(dst[i*20:])
		lo, hi := minMax(x)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		putF16(y[2:], lo)
		for j := range qk / 2 {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[qk/2+j] - lo) * id)
			xi0 := min(15, int32(int8(truncInt32(x0+0.5))))
			xi1 := min(15, int32(int8(truncInt32(x1+0.5))))
			y[4+j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
	return nil
}

// QuantizeQ5_0 quantises src into dst as quantize_row_q5_0_ref.
func QuantizeQ5_0(dst []byte, src []float32) error {
	if err := checkRow(Q5_0, len(dst), len(src)); err != nil {
		return err
	}
	for i := range len(src) / qk {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[22]byte)(dst[i*22:])
		_, maxv, _ := absMaxSigned(x)
		d := maxv / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		var qh uint32
		for j := range qk / 2 {
			x0 := float32(x[j] * id)
			x1 := float32(x[qk/2+j] * id)
			xi0 := uint8(min(31, int32(int8(truncInt32(x0+16.5)))))
			xi1 := uint8(min(31, int32(int8(truncInt32(x1+16.5)))))
			y[6+j] = xi0&0x0F | (xi1&0x0F)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
		}
		binary.LittleEndian.PutUint32(y[2:], qh)
	}
	return nil
}

// QuantizeQ5_1 quantises src into dst as quantize_row_q5_1_ref.
func QuantizeQ5_1(dst []byte, src []float32) error {
	if err := checkRow(Q5_1, len(dst), len(src)); err != nil {
		return err
	}
	for i := range len(src) / qk {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[24]byte)(dst[i*24:])
		lo, hi := minMax(x)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		putF16(y[2:], lo)
		var qh uint32
		for j := range qk / 2 {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[qk/2+j] - lo) * id)
			// (uint8_t)(x0 + 0.5f): no clamp in the reference.
			xi0 := uint8(truncInt32(x0 + 0.5))
			xi1 := uint8(truncInt32(x1 + 0.5))
			y[8+j] = xi0&0x0F | (xi1&0x0F)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
		}
		binary.LittleEndian.PutUint32(y[4:], qh)
	}
	return nil
}

// absMaxSigned returns the largest |v| and the value v it came from, as
// the Q4_0/Q5_0 references find them: if (amax < fabsf(v)) from amax = 0,
// so the first of equal magnitudes wins, a NaN is never chosen, and an
// all-zero block gives +0. The fast path finds the magnitude without
// branches, then the first value that has it. clean reports a block
// without NaN.
func absMaxSigned(x *[qk]float32) (amax, maxv float32, clean bool) {
	m := absMaxBits(x)
	if m == 0 {
		return 0, 0, true
	}
	if m <= 0x7f800000 {
		for _, v := range x {
			if math.Float32bits(v)&0x7fffffff == m {
				return math.Float32frombits(m), v, true
			}
		}
	}
	for _, v := range x {
		if av := abs32(v); amax < av {
			amax, maxv = av, v
		}
	}
	return amax, maxv, false
}

// minMax returns the block's minimum and maximum as the Q4_1/Q5_1
// references find them (starting from FLT_MAX / -FLT_MAX).
func minMax(x *[qk]float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// DequantizeQ8_0 expands Q8_0 blocks into dst as dequantize_row_q8_0.
func DequantizeQ8_0(dst []float32, src []byte) error {
	if err := checkRow(Q8_0, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / qk {
		b := (*[34]byte)(src[i*34:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(b[0:])
		for j := range y {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
	return nil
}

// DequantizeQ4_0 expands Q4_0 blocks into dst as dequantize_row_q4_0.
func DequantizeQ4_0(dst []float32, src []byte) error {
	if err := checkRow(Q4_0, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / qk {
		b := (*[18]byte)(src[i*18:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(b[0:])
		for j := range qk / 2 {
			y[j] = float32(int32(b[2+j]&0x0F)-8) * d
			y[j+qk/2] = float32(int32(b[2+j]>>4)-8) * d
		}
	}
	return nil
}

// DequantizeQ4_1 expands Q4_1 blocks into dst as dequantize_row_q4_1.
func DequantizeQ4_1(dst []float32, src []byte) error {
	if err := checkRow(Q4_1, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / qk {
		b := (*[20]byte)(src[i*20:])
		y := (*[qk]float32)(dst[i*qk:])
		d, m := getF16(b[0:]), getF16(b[2:])
		for j := range qk / 2 {
			y[j] = float32(float32(b[4+j]&0x0F)*d) + m
			y[j+qk/2] = float32(float32(b[4+j]>>4)*d) + m
		}
	}
	return nil
}

// DequantizeQ5_0 expands Q5_0 blocks into dst as dequantize_row_q5_0.
func DequantizeQ5_0(dst []float32, src []byte) error {
	if err := checkRow(Q5_0, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / qk {
		b := (*[22]byte)(src[i*22:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(b[0:])
		qh := binary.LittleEndian.Uint32(b[2:])
		for j := range qk / 2 {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(int32(b[6+j]&0x0F|h0)-16) * d
			y[j+qk/2] = float32(int32(b[6+j]>>4|h1)-16) * d
		}
	}
	return nil
}

// DequantizeQ5_1 expands Q5_1 blocks into dst as dequantize_row_q5_1.
func DequantizeQ5_1(dst []float32, src []byte) error {
	if err := checkRow(Q5_1, len(src), len(dst)); err != nil {
		return err
	}
	for i := range len(dst) / qk {
		b := (*[24]byte)(src[i*24:])
		y := (*[qk]float32)(dst[i*qk:])
		d, m := getF16(b[0:]), getF16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		for j := range qk / 2 {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(float32(b[8+j]&0x0F|h0)*d) + m
			y[j+qk/2] = float32(float32(b[8+j]>>4|h1)*d) + m
		}
	}
	return nil
}
