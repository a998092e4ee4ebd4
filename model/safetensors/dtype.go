// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length N, N bytes of JSON describing every tensor
// ({name: {dtype, shape, data_offsets: [begin, end]}} plus an optional
// "__metadata__" map of strings), then the raw little-endian data, with
// offsets relative to the start of the data.
//
// The reader memory-maps the file and validates the whole header before it
// hands out a single byte, because a checkpoint comes from outside and a
// lying header must give one clear error, never a panic or a wrong slice.
// The writer streams tensor by tensor with constant memory and publishes the
// file atomically, so a multi-gigabyte checkpoint never has to fit in RAM and
// a failed write never leaves a partial file behind.
package safetensors

import (
	"fmt"
	"math/bits"
	"strings"
)

// DType is a safetensors element type, spelled as in the header ("F32").
type DType string

// The element types cogumi knows. The names and sizes are the safetensors
// package's own; sub-byte types (F4, F6) are not supported.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// Size returns the size of one element in bytes, or 0 for an unknown type.
// A switch keeps the table immutable (no package-level map to mutate).
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

// IsFloat reports whether ReadF32Rows can convert d to float32.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }

// knownDTypes lists the supported names for error messages.
func knownDTypes() string {
	return strings.Join([]string{"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16",
		"F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"}, ", ")
}

// Info describes one tensor. Begin and End are byte offsets relative to the
// start of the data section, as in the header.
type Info struct {
	Name  string
	DType DType
	Shape []int64
	Begin int64
	End   int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (i Info) NumElements() int64 {
	n := int64(1)
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// Size returns End - Begin, the tensor's size in bytes.
func (i Info) Size() int64 { return i.End - i.Begin }

// RowLen returns the number of elements in one row: the product of every
// dimension but the first. A 1-D tensor is one row, and so is a scalar.
func (i Info) RowLen() int64 {
	if len(i.Shape) <= 1 {
		return i.NumElements()
	}
	n := int64(1)
	for _, d := range i.Shape[1:] {
		n *= d
	}
	return n
}

// Rows returns the number of rows: the first dimension, or 1 for a 1-D tensor
// or a scalar.
func (i Info) Rows() int64 {
	if len(i.Shape) <= 1 {
		return 1
	}
	return i.Shape[0]
}

// byteSize returns elements x element size for a dtype and a shape, or an
// error when a dimension is negative or the product overflows int64.
func byteSize(d DType, shape []int64) (int64, error) {
	size := uint64(d.Size())
	if size == 0 {
		return 0, fmt.Errorf("unknown dtype %q (known: %s)", string(d), knownDTypes())
	}
	n := size
	for _, dim := range shape {
		if dim < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		hi, lo := bits.Mul64(n, uint64(dim))
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("shape %v of %s is too large (its byte size overflows)", shape, d)
		}
		n = lo
	}
	return int64(n), nil
}
