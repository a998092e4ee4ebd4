// Package quant holds byte-identical Go ports of ggml's quantisers
// (ggml-quants.c: what llama-quantize reaches through ggml_quantize_chunk,
// the *_ref functions when no importance matrix is given, the *_impl ones
// and the i-quants' quantize_iq* with one), the matching dequantisers, and
// ggml's F32 -> F16 / BF16 conversions.
//
// Byte identity matters because a cogumi GGUF artifact is content-addressed:
// the same F32 input must give the same bytes as llama.cpp's own quantiser,
// on every platform. Every place where the C reference rounds a product before
// adding it is written as float32(x*y) + z, because Go may otherwise fuse the
// two operations into one FMA (it does on arm64, and on amd64 with
// GOAMD64=v3); TestNoFusedMultiplyAdd checks the compiled code for that.
package quant

import (
	"fmt"
	"strings"
)

// Type is a ggml tensor type; the values are ggml's own ids as stored in a
// GGUF tensor info.
type Type uint32

// The ggml types cogumi reads and writes. The names follow ggml so that they
// can be matched against llama.cpp's sources and GGUF dumps.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q5_0 Type = 6
	Q5_1 Type = 7
	Q8_0 Type = 8
	Q2_K Type = 10
	Q3_K Type = 11
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
	BF16 Type = 30

	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
)

// QK_K is the number of weights in a k-quant super-block.
const QK_K = 256

// traits describes a type's block layout.
type traits struct {
	name      string
	blockSize int // weights per block
	typeSize  int // bytes per block
}

// lookup returns the layout of t. A switch rather than a map keeps the table
// immutable and lets the compiler inline the common cases.
func lookup(t Type) (traits, bool) {
	switch t {
	case F32:
		return traits{"F32", 1, 4}, true
	case F16:
		return traits{"F16", 1, 2}, true
	case BF16:
		return traits{"BF16", 1, 2}, true
	case Q4_0:
		return traits{"Q4_0", 32, 18}, true
	case Q4_1:
		return traits{"Q4_1", 32, 20}, true
	case Q5_0:
		return traits{"Q5_0", 32, 22}, true
	case Q5_1:
		return traits{"Q5_1", 32, 24}, true
	case Q8_0:
		return traits{"Q8_0", 32, 34}, true
	case Q2_K:
		return traits{"Q2_K", QK_K, 84}, true
	case Q3_K:
		return traits{"Q3_K", QK_K, 110}, true
	case Q4_K:
		return traits{"Q4_K", QK_K, 144}, true
	case Q5_K:
		return traits{"Q5_K", QK_K, 176}, true
	case Q6_K:
		return traits{"Q6_K", QK_K, 210}, true
	case IQ2_XXS:
		return traits{"IQ2_XXS", QK_K, 66}, true
	case IQ2_XS:
		return traits{"IQ2_XS", QK_K, 74}, true
	case IQ3_XXS:
		return traits{"IQ3_XXS", QK_K, 98}, true
	case IQ4_NL:
		return traits{"IQ4_NL", 32, 18}, true
	case IQ3_S:
		return traits{"IQ3_S", QK_K, 110}, true
	case IQ2_S:
		return traits{"IQ2_S", QK_K, 82}, true
	case IQ4_XS:
		return traits{"IQ4_XS", QK_K, 136}, true
	}
	return traits{}, false
}

// Types lists every supported type in ggml id order.
func Types() []Type {
	return []Type{F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
		IQ2_XXS, IQ2_XS, IQ3_XXS, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, BF16}
}

// Valid reports whether t is a type this package knows.
func (t Type) Valid() bool {
	_, ok := lookup(t)
	return ok
}

// String returns ggml's name for t ("Q4_K"), or "type(N)" for an unknown id.
func (t Type) String() string {
	if tr, ok := lookup(t); ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of weights in one block of t (1 for float types,
// 0 for an unknown type).
func (t Type) BlockSize() int {
	tr, _ := lookup(t)
	return tr.blockSize
}

// TypeSize is the number of bytes in one block of t (0 for an unknown type).
func (t Type) TypeSize() int {
	tr, _ := lookup(t)
	return tr.typeSize
}

// Quantized reports whether t is a block-quantised type.
func (t Type) Quantized() bool {
	return t.BlockSize() > 1
}

// ParseType accepts ggml's type names, case-insensitively ("q4_k", "BF16").
func ParseType(s string) (Type, error) {
	for _, t := range Types() {
		if strings.EqualFold(t.String(), s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("quant: unknown ggml type %q", s)
}

// RowSize is the number of bytes that n weights of type t take, or -1 when t
// is unknown, n is negative or n is not a multiple of t's block size.
func RowSize(t Type, n int) int {
	tr, ok := lookup(t)
	if !ok || n < 0 || n%tr.blockSize != 0 {
		return -1
	}
	return n / tr.blockSize * tr.typeSize
}

// checkRow validates the sizes of one quantisation or conversion call.
func checkRow(t Type, nDst, nSrc int) error {
	tr, ok := lookup(t)
	if !ok {
		return fmt.Errorf("quant: unknown ggml type %d", uint32(t))
	}
	if nSrc%tr.blockSize != 0 {
		return fmt.Errorf("quant: %s: %d values is not a multiple of the block size %d", tr.name, nSrc, tr.blockSize)
	}
	if want := nSrc / tr.blockSize * tr.typeSize; nDst != want {
		return fmt.Errorf("quant: %s: %d values need %d bytes, got a buffer of %d", tr.name, nSrc, want, nDst)
	}
	return nil
}
