package safetensors

import (
	"encoding/binary"
	"math"
)

// F16ToF32 converts an IEEE 754 half-precision value to float32. The
// conversion is exact for every input, subnormals, infinities and NaN
// payloads included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN: keep the payload
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: shift the mantissa until its leading 1 is implicit
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToF16 converts float32 to half precision with round-to-nearest-even. It
// is a port of ggml's portable GGML_FP32_TO_FP16 (ggml_compute_fp32_to_fp16,
// from Maratyszcza's FP16 library), so finite values, subnormals and
// infinities round exactly as llama.cpp's do; every NaN becomes the quiet NaN
// 0x7e00 with its sign kept. The scaling trick lets the FPU do the rounding:
// the two multiplications must each round to float32, which Go guarantees for
// float32 operands (it never fuses two multiplications).
func F32ToF16(f float32) uint16 {
	const scaleToInf = float32(0x1.0p+112)
	const scaleToZero = float32(0x1.0p-110)
	base := float32(abs32(f)*scaleToInf) * scaleToZero

	w := math.Float32bits(f)
	shl1w := w + w
	sign := w & 0x80000000
	bias := shl1w & 0xff000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = math.Float32frombits(bias>>1+0x07800000) + base
	b := math.Float32bits(base)
	expBits := (b >> 13) & 0x00007c00
	mantBits := b & 0x00000fff
	nonsign := expBits + mantBits
	if shl1w > 0xff000000 {
		return uint16(sign>>16) | 0x7e00
	}
	return uint16(sign>>16) | uint16(nonsign)
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ 0x80000000) }

// BF16ToF32 converts a bfloat16 value to float32 (exact: bfloat16 is the top
// half of a float32).
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 converts float32 to bfloat16 with round-to-nearest-even, as
// PyTorch does (c10::detail::round_to_nearest_even): every NaN becomes 0x7fc0,
// and subnormals are rounded, not flushed.
func F32ToBF16(f float32) uint16 {
	if f != f {
		return 0x7fc0
	}
	u := math.Float32bits(f)
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// DecodeF32 converts little-endian elements of dtype d (F32, F16 or BF16) in
// src to dst; len(src) must be len(dst) x the element size. It returns false
// for any other dtype.
func DecodeF32(dst []float32, src []byte, d DType) bool {
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	default:
		return false
	}
	return true
}

// EncodeF32 converts src to little-endian elements of dtype d (F32, F16 or
// BF16) in dst, rounding to nearest even; len(dst) must be len(src) x the
// element size. It returns false for any other dtype.
func EncodeF32(dst []byte, src []float32, d DType) bool {
	switch d {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(v))
		}
	default:
		return false
	}
	return true
}
