package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// decoder reads little-endian fields; the first error sticks and later
// reads return zero values, so callers check once per record.
type decoder struct {
	b   []byte
	off uint64
	err error
}

func (d *decoder) left() uint64 { return uint64(len(d.b)) - d.off }

func (d *decoder) take(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > d.left() {
		d.err = fmt.Errorf("%s of %d bytes at offset %d runs past the end of the file (%d bytes left)", what, n, d.off, d.left())
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1, "uint8"); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2, "uint16"); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4, "uint32"); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8, "uint64"); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string {
	n := d.u64()
	return string(d.take(n, "string"))
}

func (d *decoder) boolean() bool {
	at := d.off
	switch b := d.u8(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		if d.err == nil {
			d.err = fmt.Errorf("bool byte %#x at offset %d is neither 0 nor 1", b, at)
		}
		return false
	}
}

// value reads one value of type typ.
func (d *decoder) value(typ ValueType) (Value, error) {
	var v any
	switch typ {
	case TypeUint8:
		v = d.u8()
	case TypeInt8:
		v = int8(d.u8())
	case TypeUint16:
		v = d.u16()
	case TypeInt16:
		v = int16(d.u16())
	case TypeUint32:
		v = d.u32()
	case TypeInt32:
		v = int32(d.u32())
	case TypeFloat32:
		v = math.Float32frombits(d.u32())
	case TypeBool:
		v = d.boolean()
	case TypeString:
		v = d.str()
	case TypeUint64:
		v = d.u64()
	case TypeInt64:
		v = int64(d.u64())
	case TypeFloat64:
		v = math.Float64frombits(d.u64())
	case TypeArray:
		return d.array()
	default:
		return Value{}, fmt.Errorf("unknown value type %d", uint32(typ))
	}
	if d.err != nil {
		return Value{}, d.err
	}
	return Value{typ: typ, v: v}, nil
}

// array reads an array header and its elements; the count is checked
// against the bytes left before anything is allocated.
func (d *decoder) array() (Value, error) {
	elem := ValueType(d.u32())
	n := d.u64()
	if d.err != nil {
		return Value{}, d.err
	}
	if elem == TypeArray {
		return Value{}, errors.New("nested arrays are not supported")
	}
	minSize := uint64(elem.fixedSize())
	if elem == TypeString {
		minSize = 8
	}
	if minSize == 0 {
		return Value{}, fmt.Errorf("array of unknown value type %d", uint32(elem))
	}
	if n > d.left()/minSize {
		return Value{}, fmt.Errorf("array of %d %s at offset %d cannot fit in the %d bytes left", n, elem, d.off, d.left())
	}
	v, err := d.elements(elem, int(n))
	if err != nil {
		return Value{}, err
	}
	return Value{typ: TypeArray, elem: elem, v: v}, nil
}

func (d *decoder) elements(elem ValueType, n int) (any, error) {
	le := binary.LittleEndian
	var out any
	if elem == TypeString {
		s := make([]string, n)
		for i := range s {
			s[i] = d.str()
			if d.err != nil {
				return nil, fmt.Errorf("string %d of %d: %w", i, n, d.err)
			}
		}
		return s, nil
	}
	raw := d.take(uint64(n)*uint64(elem.fixedSize()), "array")
	if d.err != nil {
		return nil, d.err
	}
	switch elem {
	case TypeUint8:
		out = slices.Clone(raw)
	case TypeInt8:
		out = fill(n, func(i int) int8 { return int8(raw[i]) })
	case TypeBool:
		for i, b := range raw {
			if b > 1 {
				return nil, fmt.Errorf("bool %d of the array is %#x, neither 0 nor 1", i, b)
			}
		}
		out = fill(n, func(i int) bool { return raw[i] == 1 })
	case TypeUint16:
		out = fill(n, func(i int) uint16 { return le.Uint16(raw[2*i:]) })
	case TypeInt16:
		out = fill(n, func(i int) int16 { return int16(le.Uint16(raw[2*i:])) })
	case TypeUint32:
		out = fill(n, func(i int) uint32 { return le.Uint32(raw[4*i:]) })
	case TypeInt32:
		out = fill(n, func(i int) int32 { return int32(le.Uint32(raw[4*i:])) })
	case TypeFloat32:
		out = fill(n, func(i int) float32 { return math.Float32frombits(le.Uint32(raw[4*i:])) })
	case TypeUint64:
		out = fill(n, func(i int) uint64 { return le.Uint64(raw[8*i:]) })
	case TypeInt64:
		out = fill(n, func(i int) int64 { return int64(le.Uint64(raw[8*i:])) })
	case TypeFloat64:
		out = fill(n, func(i int) float64 { return math.Float64frombits(le.Uint64(raw[8*i:])) })
	}
	return out, nil
}

func fill[T any](n int, at func(int) T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = at(i)
	}
	return s
}
