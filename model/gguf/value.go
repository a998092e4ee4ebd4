// Package gguf writes and reads GGUF v3 files, the model format of ggml and
// llama.cpp (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// The writer streams: the header (metadata and tensor infos) is complete as
// soon as the tensors are declared, because every offset follows from the
// shapes and types, so tensor data can then be written one tensor (or one
// row) at a time in constant memory. The reader maps the file and validates
// everything it is told before believing it, since a GGUF may come from
// anywhere.
package gguf

import (
	"errors"
	"fmt"
)

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The metadata value types of GGUF v3.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// String names t as the GGUF spec does ("uint32", "array").
func (t ValueType) String() string {
	switch t {
	case TypeUint8:
		return "uint8"
	case TypeInt8:
		return "int8"
	case TypeUint16:
		return "uint16"
	case TypeInt16:
		return "int16"
	case TypeUint32:
		return "uint32"
	case TypeInt32:
		return "int32"
	case TypeFloat32:
		return "float32"
	case TypeBool:
		return "bool"
	case TypeString:
		return "string"
	case TypeArray:
		return "array"
	case TypeUint64:
		return "uint64"
	case TypeInt64:
		return "int64"
	case TypeFloat64:
		return "float64"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar of type t, 0 for strings,
// arrays and unknown types.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value: a scalar, a string, or an array of either
// (GGUF arrays may nest, but llama.cpp never writes nested arrays and this
// package rejects them).
type Value struct {
	typ  ValueType
	elem ValueType // element type when typ is TypeArray
	v    any       // the Go value: uint8 ... float64, bool, string, or a slice of one
}

// Type is the value's type tag.
func (v Value) Type() ValueType { return v.typ }

// ElemType is the element type of an array value (meaningless otherwise).
func (v Value) ElemType() ValueType { return v.elem }

// Any returns the value as the Go type that holds it: uint8, int8, uint16,
// int16, uint32, int32, float32, bool, string, uint64, int64, float64, or a
// slice of one of these for an array.
func (v Value) Any() any { return v.v }

// Len is the number of elements of an array value, or 1 for a scalar.
func (v Value) Len() int {
	switch s := v.v.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []float32:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	}
	return 1
}

// String formats the value for messages; long arrays are abbreviated.
func (v Value) String() string {
	if v.typ == TypeArray {
		return fmt.Sprintf("[%d x %s]", v.Len(), v.elem)
	}
	if s, ok := v.v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v.v)
}

// ValueOf converts a Go value to a metadata value. Accepted: uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64, slices of these, and Value itself. Plain int and uint are
// refused: GGUF readers check the exact type of many keys (llama.cpp wants
// uint32 for llama.context_length, float32 for the RMS epsilon), so the
// caller has to choose.
func ValueOf(x any) (Value, error) {
	switch x := x.(type) {
	case Value:
		if x.typ > TypeFloat64 || x.typ == TypeArray && (x.elem > TypeFloat64 || x.elem == TypeArray) || x.v == nil {
			return Value{}, errors.New("gguf: invalid Value")
		}
		return x, nil
	case uint8:
		return Value{typ: TypeUint8, v: x}, nil
	case int8:
		return Value{typ: TypeInt8, v: x}, nil
	case uint16:
		return Value{typ: TypeUint16, v: x}, nil
	case int16:
		return Value{typ: TypeInt16, v: x}, nil
	case uint32:
		return Value{typ: TypeUint32, v: x}, nil
	case int32:
		return Value{typ: TypeInt32, v: x}, nil
	case float32:
		return Value{typ: TypeFloat32, v: x}, nil
	case bool:
		return Value{typ: TypeBool, v: x}, nil
	case string:
		return Value{typ: TypeString, v: x}, nil
	case uint64:
		return Value{typ: TypeUint64, v: x}, nil
	case int64:
		return Value{typ: TypeInt64, v: x}, nil
	case float64:
		return Value{typ: TypeFloat64, v: x}, nil
	case []uint8:
		return Value{typ: TypeArray, elem: TypeUint8, v: x}, nil
	case []int8:
		return Value{typ: TypeArray, elem: TypeInt8, v: x}, nil
	case []uint16:
		return Value{typ: TypeArray, elem: TypeUint16, v: x}, nil
	case []int16:
		return Value{typ: TypeArray, elem: TypeInt16, v: x}, nil
	case []uint32:
		return Value{typ: TypeArray, elem: TypeUint32, v: x}, nil
	case []int32:
		return Value{typ: TypeArray, elem: TypeInt32, v: x}, nil
	case []float32:
		return Value{typ: TypeArray, elem: TypeFloat32, v: x}, nil
	case []bool:
		return Value{typ: TypeArray, elem: TypeBool, v: x}, nil
	case []string:
		return Value{typ: TypeArray, elem: TypeString, v: x}, nil
	case []uint64:
		return Value{typ: TypeArray, elem: TypeUint64, v: x}, nil
	case []int64:
		return Value{typ: TypeArray, elem: TypeInt64, v: x}, nil
	case []float64:
		return Value{typ: TypeArray, elem: TypeFloat64, v: x}, nil
	case int, uint, []int, []uint:
		return Value{}, fmt.Errorf("gguf: %T has no fixed size: use uint32, int32, uint64, ...", x)
	}
	return Value{}, fmt.Errorf("gguf: cannot store a %T as metadata", x)
}

// As converts v to T if v holds exactly a T (no numeric conversion: a
// uint32 key read as uint64 is an error, so that a file with the wrong
// types is noticed).
func As[T any](v Value) (T, error) {
	t, ok := v.v.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("holds %s, not %T", v.describe(), zero)
	}
	return t, nil
}

// describe names the value's type for errors: "uint32", "array of string".
func (v Value) describe() string {
	if v.typ == TypeArray {
		return "array of " + v.elem.String()
	}
	return v.typ.String()
}
