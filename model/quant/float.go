package quant

import (
	"encoding/binary"
	"math"
)

// FP32ToFP16 converts f to IEEE half precision exactly as ggml's
// ggml_compute_fp32_to_fp16 does: round to nearest even, overflow to
// infinity, and every NaN becomes the quiet NaN 0x7E00 with f's sign.
// It is the software path (from Maratyszcza/FP16), which is what
// libggml-base uses; a hardware F16C conversion would keep NaN payloads.
func FP32ToFP16(f float32) uint16 {
	var h [2]byte
	fp32ToFP16Row(h[:], []float32{f})
	return binary.LittleEndian.Uint16(h[:])
}

// fp32ToFP16Row converts src into dst (2 bytes a value, little-endian). The
// conversion lives in a loop, and FP32ToFP16 calls it with one value,
// because it is too large for Go to inline and a call per value would
// halve the speed of ConvertF16.
func fp32ToFP16Row(dst []byte, src []float32) {
	const scaleToInf = float32(0x1p+112)
	const scaleToZero = float32(0x1p-110)
	dst = dst[:2*len(src)]
	for i, f := range src {
		// Both products are rounded separately in C; the conversions stop
		// Go from fusing the second one with the addition below.
		base := float32(float32(abs32(f)*scaleToInf) * scaleToZero)
		w := math.Float32bits(f)
		shl1w := w + w
		sign := w & 0x80000000
		bias := max(shl1w&0xFF000000, 0x71000000)
		base = math.Float32frombits((bias>>1)+0x07800000) + base
		bits := math.Float32bits(base)
		expBits := (bits >> 13) & 0x00007C00
		mantissaBits := bits & 0x00000FFF
		h := uint16(sign>>16 | (expBits + mantissaBits))
		if shl1w > 0xFF000000 {
			h = uint16(sign>>16) | 0x7E00
		}
		binary.LittleEndian.PutUint16(dst[2*i:], h)
	}
}

// FP16ToFP32 converts an IEEE half to float32 (exact for every input),
// following ggml_compute_fp16_to_fp32.
func FP16ToFP32(h uint16) float32 {
	w := uint32(h) << 16
	sign := w & 0x80000000
	twoW := w + w

	const expOffset = uint32(0xE0) << 23
	const expScale = float32(0x1p-112)
	normalized := math.Float32frombits((twoW>>4)+expOffset) * expScale

	const magicMask = uint32(126) << 23
	const magicBias = float32(0.5)
	denormalized := math.Float32frombits((twoW>>17)|magicMask) - magicBias

	const denormalizedCutoff = uint32(1) << 27
	if twoW < denormalizedCutoff {
		return math.Float32frombits(sign | math.Float32bits(denormalized))
	}
	return math.Float32frombits(sign | math.Float32bits(normalized))
}

// FP32ToBF16 converts f to bfloat16 as ggml_compute_fp32_to_bf16 does:
// round to nearest even, NaNs forced quiet (bit 6 of the result set) with
// their sign and top payload bits kept, subnormals kept.
func FP32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + ((u >> 16) & 1))) >> 16)
}

// BF16ToFP32 widens a bfloat16 (exact).
func BF16ToFP32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// ConvertF16 writes src as little-endian F16 into dst (2 bytes a value),
// as ggml_fp32_to_fp16_row.
func ConvertF16(dst []byte, src []float32) error {
	if err := checkRow(F16, len(dst), len(src)); err != nil {
		return err
	}
	fp32ToFP16Row(dst, src)
	return nil
}

// ConvertBF16 writes src as little-endian BF16 into dst (2 bytes a value),
// as ggml_fp32_to_bf16_row_ref (the path ggml_quantize_chunk takes).
func ConvertBF16(dst []byte, src []float32) error {
	if err := checkRow(BF16, len(dst), len(src)); err != nil {
		return err
	}
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], FP32ToBF16(v))
	}
	return nil
}

// ConvertF32 writes src as little-endian F32 bytes into dst.
func ConvertF32(dst []byte, src []float32) error {
	if err := checkRow(F32, len(dst), len(src)); err != nil {
		return err
	}
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return nil
}

// abs32 clears the sign bit, as C's fabsf (also for NaN).
func abs32(f float32) float32 {
	return math.Float32frombits(math.Float32bits(f) &^ 0x80000000)
}

// putF16 stores the half-precision form of f at b[0:2].
func putF16(b []byte, f float32) {
	binary.LittleEndian.PutUint16(b, FP32ToFP16(f))
}

// getF16 reads a little-endian half at b[0:2] as float32.
func getF16(b []byte) float32 {
	return FP16ToFP32(binary.LittleEndian.Uint16(b))
}

// truncInt32 is C's float-to-integer cast as x86-64 compiles it
// (cvttss2si): truncation toward zero, and the "integer indefinite"
// 0x80000000 for NaN and out-of-range values. Go's own conversion leaves
// those cases to the platform (arm64 saturates), so the quantisers use this
// wherever ggml casts a float to an integer type; narrower C casts
// ((int8_t), (uint8_t)) then keep the low bits, as the compiled C does.
func truncInt32(f float32) int32 {
	if f >= -2147483648 && f < 2147483648 {
		return int32(f)
	}
	return math.MinInt32
}

// roundInt32 is truncInt32(roundf(f)): round half away from zero. Adding
// ±0.5 in float64 and truncating is exact for a float32: float64 has room
// for the sum unless it is far from the next integer, where its rounding
// cannot cross one. Unlike comparing the remainder with ±0.5 it has no
// unpredictable branch.
func roundInt32(f float32) int32 {
	// The conversion keeps a caller's product (roundf(x*id)) from fusing
	// with anything here.
	f = float32(f)
	if !(abs32(f) < 0x1p31) {
		return math.MinInt32
	}
	return int32(float64(f) + copysignHalf(f))
}

// copysignHalf is copysign(0.5, f) as a float64.
func copysignHalf(f float32) float64 {
	return math.Float64frombits(0x3FE0000000000000 | uint64(math.Float32bits(f)&0x80000000)<<32)
}

// nearestInt is ggml's nearest_int: adding 1.5*2^23 puts the rounded value
// (round half to even) in the low mantissa bits. The assertion
// |f| <= 4194303 is compiled out in release builds, so out-of-range, Inf
// and NaN inputs give whatever the bit trick gives; this reproduces that.
func nearestInt(f float32) int32 {
	// float32(f) keeps a caller's product from fusing with this addition.
	val := float32(f) + 12582912
	i := int32(math.Float32bits(val))
	return (i & 0x007fffff) - 0x00400000
}
