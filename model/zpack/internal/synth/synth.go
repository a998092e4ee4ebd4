// Package synth makes synthetic 16-bit float weights and safetensors files
// for zpack's tests and benchmark. It is internal: production code never
// depends on it.
package synth

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
)

// BF16 converts f to bfloat16 with round-to-nearest-even, as PyTorch does.
func BF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and non-zero
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F16 converts f to IEEE 754 binary16 with round-to-nearest-even,
// including subnormals, overflow to infinity and NaN.
func F16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // subnormal in f16: units of 2^-24
		s := uint32(126 - exp)
		if s > 24 {
			return sign
		}
		m := mant | 0x800000
		v := m >> s
		rem := m & (1<<s - 1)
		half := uint32(1) << (s - 1)
		if rem > half || (rem == half && v&1 == 1) {
			v++
		}
		return sign | uint16(v)
	}
	v := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && v&1 == 1) {
		v++ // a carry into the exponent is correct, up to infinity
	}
	return sign | uint16(v)
}

// Gaussian writes n little-endian 16-bit values drawn from N(0, std²),
// converted with conv (BF16 or F16). A fraction sparsity of the values
// is zero, as after magnitude pruning. The stream depends only on seed.
func Gaussian(w io.Writer, n int64, std, sparsity float64, seed uint64, conv func(float32) uint16) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	buf := make([]byte, 0, 1<<20)
	for i := int64(0); i < n; i++ {
		var v uint16
		x := r.NormFloat64() * std
		if sparsity == 0 || r.Float64() >= sparsity {
			v = conv(float32(x))
		}
		buf = binary.LittleEndian.AppendUint16(buf, v)
		if len(buf) == cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("write weights: %w", err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write weights: %w", err)
	}
	return nil
}

// Info describes one tensor of a safetensors file: its data is Size bytes.
type Info struct {
	Name  string
	Dtype string
	Shape []int64
	Size  int64
}

type entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Header returns the safetensors prefix (8-byte little-endian length and
// the JSON header, padded with spaces to a multiple of 8) for tensors laid
// out back to back in the order given.
func Header(tensors []Info) ([]byte, error) {
	m := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, t := range tensors {
		if _, dup := m[t.Name]; dup {
			return nil, fmt.Errorf("duplicate tensor %q", t.Name)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		m[t.Name] = entry{Dtype: t.Dtype, Shape: shape, DataOffsets: [2]int64{off, off + t.Size}}
		off += t.Size
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode safetensors header: %w", err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(out, js...), nil
}

// Tensor is a tensor held in memory.
type Tensor struct {
	Name  string
	Dtype string
	Shape []int64
	Data  []byte
}

// Safetensors returns a whole safetensors file holding tensors, in order.
func Safetensors(tensors []Tensor) ([]byte, error) {
	infos := make([]Info, len(tensors))
	for i, t := range tensors {
		infos[i] = Info{Name: t.Name, Dtype: t.Dtype, Shape: t.Shape, Size: int64(len(t.Data))}
	}
	out, err := Header(infos)
	if err != nil {
		return nil, err
	}
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}
