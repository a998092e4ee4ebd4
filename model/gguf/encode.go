package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/cogumi/cogumi/model/quant"
)

// appendString encodes a GGUF string: uint64 length, bytes, no NUL.
func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes v's payload (its type tag is written by the caller).
func appendValue(b []byte, v Value) []byte {
	le := binary.LittleEndian
	switch x := v.v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		return appendString(b, x)
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	}
	b = le.AppendUint32(b, uint32(v.elem))
	b = le.AppendUint64(b, uint64(v.Len()))
	switch x := v.v.(type) {
	case []uint8:
		b = append(b, x...)
	case []int8:
		for _, e := range x {
			b = append(b, byte(e))
		}
	case []uint16:
		for _, e := range x {
			b = le.AppendUint16(b, e)
		}
	case []int16:
		for _, e := range x {
			b = le.AppendUint16(b, uint16(e))
		}
	case []uint32:
		for _, e := range x {
			b = le.AppendUint32(b, e)
		}
	case []int32:
		for _, e := range x {
			b = le.AppendUint32(b, uint32(e))
		}
	case []float32:
		for _, e := range x {
			b = le.AppendUint32(b, math.Float32bits(e))
		}
	case []bool:
		for _, e := range x {
			if e {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []string:
		for _, e := range x {
			b = appendString(b, e)
		}
	case []uint64:
		for _, e := range x {
			b = le.AppendUint64(b, e)
		}
	case []int64:
		for _, e := range x {
			b = le.AppendUint64(b, uint64(e))
		}
	case []float64:
		for _, e := range x {
			b = le.AppendUint64(b, math.Float64bits(e))
		}
	}
	return b
}

// tensorSize is the data size of a tensor, with the checks a reader needs
// too: 1..4 dimensions, an innermost dimension that is a whole number of
// blocks, and no overflow of int64 (ggml's ne) or of the byte count.
func tensorSize(typ quant.Type, shape []uint64) (uint64, error) {
	if !typ.Valid() {
		return 0, fmt.Errorf("unsupported ggml type %d", uint32(typ))
	}
	if len(shape) < 1 || len(shape) > MaxDims {
		return 0, fmt.Errorf("%d dimensions, want 1..%d", len(shape), MaxDims)
	}
	elems := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v: element count overflows int64", shape)
		}
		elems = lo
	}
	bs := uint64(typ.BlockSize())
	if shape[0]%bs != 0 {
		return 0, fmt.Errorf("shape %v: innermost dimension %d is not a multiple of %s's block size %d", shape, shape[0], typ, bs)
	}
	hi, size := bits.Mul64(elems/bs, uint64(typ.TypeSize()))
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("shape %v: byte size overflows int64", shape)
	}
	return size, nil
}

// alignUp rounds n up to a multiple of a (a power of two); ok is false on
// overflow.
func alignUp(n, a uint64) (uint64, bool) {
	r := (n + a - 1) &^ (a - 1)
	return r, r >= n
}
