package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cogumi/cogumi/model/quant"
)

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// ErrNotFound is wrapped by the getters when a key or tensor is absent.
var ErrNotFound = errors.New("not found")

// File is a parsed GGUF file. Its tensor data are slices of the mapped
// file: read-only, and valid until Close.
type File struct {
	Version   uint32
	Alignment uint64
	KVs       []KV         // in file order
	Tensors   []TensorInfo // in file order

	data      []byte // the whole file
	dataStart uint64 // file offset of the data section
	kvIndex   map[string]int
	tIndex    map[string]int
	release   func() error
}

// Open maps the GGUF file at path and validates its header (see
// OpenBytes). Close releases the mapping.
func Open(path string) (*File, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := OpenBytes(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	f.release = release
	return f, nil
}

// OpenBytes parses a GGUF file held in memory. Everything the header claims
// is checked against the bytes before use: the magic and version (2 or 3),
// counts that could not fit in the file, string and array lengths past its
// end, unknown or nested value types, duplicate keys or tensor names,
// general.alignment, tensor dimensions (1..4, no overflow, whole blocks),
// unsupported ggml types, and tensor data that is misaligned, overlapping
// or outside the file. A bad file gives an error saying what and where,
// never a panic.
func OpenBytes(data []byte) (*File, error) {
	d := &decoder{b: data}
	if len(data) < 24 {
		return nil, fmt.Errorf("gguf: %d bytes is too short for a GGUF header", len(data))
	}
	if magic := data[:4]; !bytes.Equal(magic, []byte("GGUF")) {
		return nil, fmt.Errorf("gguf: bad magic %q, not a GGUF file", magic)
	}
	d.off = 4
	f := &File{
		Version:   d.u32(),
		Alignment: DefaultAlignment,
		data:      data,
		kvIndex:   map[string]int{},
		tIndex:    map[string]int{},
	}
	if f.Version != 2 && f.Version != 3 {
		return nil, fmt.Errorf("gguf: version %d is not supported (2 and 3 are)", f.Version)
	}
	nTensors, nKVs := d.u64(), d.u64()
	// The smallest KV is 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes,
	// the smallest tensor info 8 + 1 + 4 + 8 + 4 + 8.
	if nKVs > d.left()/14 || nTensors > d.left()/33 || nKVs*14+nTensors*33 > d.left() {
		return nil, fmt.Errorf("gguf: header claims %d tensors and %d metadata entries, more than %d bytes can hold", nTensors, nKVs, len(data))
	}
	for i := range nKVs {
		start := d.off
		key := d.str()
		typ := ValueType(d.u32())
		if d.err != nil {
			return nil, fmt.Errorf("gguf: metadata entry %d at offset %d: %w", i, start, d.err)
		}
		if key == "" || len(key) > math.MaxUint16 {
			return nil, fmt.Errorf("gguf: metadata entry %d at offset %d: key of %d bytes, want 1..65535", i, start, len(key))
		}
		v, err := d.value(typ)
		if err != nil {
			return nil, fmt.Errorf("gguf: metadata %q at offset %d: %w", key, start, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("gguf: metadata key %q appears twice", key)
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{key, v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, isU32 := v.v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("gguf: general.alignment is %s %v, want a power of two as uint32", v.describe(), v)
		}
		f.Alignment = uint64(a)
	}
	if err := f.readTensorInfos(d, nTensors); err != nil {
		return nil, err
	}
	if err := f.checkLayout(d.off); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) readTensorInfos(d *decoder, n uint64) error {
	f.Tensors = make([]TensorInfo, 0, n)
	for i := range n {
		start := d.off
		name := d.str()
		nDims := d.u32()
		if d.err == nil && (nDims < 1 || nDims > MaxDims) {
			return fmt.Errorf("gguf: tensor %q at offset %d: %d dimensions, want 1..%d", name, start, nDims, MaxDims)
		}
		shape := make([]uint64, 0, min(nDims, MaxDims))
		for range min(nDims, MaxDims) {
			shape = append(shape, d.u64())
		}
		typ := quant.Type(d.u32())
		off := d.u64()
		if d.err != nil {
			return fmt.Errorf("gguf: tensor info %d at offset %d: %w", i, start, d.err)
		}
		if name == "" || len(name) > MaxTensorName {
			return fmt.Errorf("gguf: tensor %d at offset %d: name %.80q has %d bytes, want 1..%d", i, start, name, len(name), MaxTensorName)
		}
		if _, dup := f.tIndex[name]; dup {
			return fmt.Errorf("gguf: tensor %q appears twice", name)
		}
		size, err := tensorSize(typ, shape)
		if err != nil {
			return fmt.Errorf("gguf: tensor %q: %w", name, err)
		}
		f.tIndex[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, TensorInfo{Name: name, Type: typ, Shape: shape, Offset: off, Size: size})
	}
	return nil
}

// checkLayout places the data section after the header and checks every
// tensor's bytes lie inside it, aligned and not overlapping another's.
func (f *File) checkLayout(headerEnd uint64) error {
	start, _ := alignUp(headerEnd, f.Alignment) // headerEnd <= len(data), no overflow
	f.dataStart = start
	if start > uint64(len(f.data)) && len(f.Tensors) > 0 {
		// Even a tensor of no bytes would be sliced past the end.
		return fmt.Errorf("gguf: the data section would start at offset %d, past the end of the file (%d bytes)", start, len(f.data))
	}
	var dataLen uint64
	if start <= uint64(len(f.data)) {
		dataLen = uint64(len(f.data)) - start
	}
	order := make([]int, len(f.Tensors))
	for i, t := range f.Tensors {
		order[i] = i
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("gguf: tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return fmt.Errorf("gguf: tensor %q: bytes %d..%d of the data section lie outside the file (data section of %d bytes at offset %d)",
				t.Name, t.Offset, t.Offset+t.Size, dataLen, start)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := f.Tensors[a], f.Tensors[b]
		if c := cmpU64(ta.Offset, tb.Offset); c != 0 {
			return c
		}
		return cmpU64(ta.Size, tb.Size)
	})
	for k := 1; k < len(order); k++ {
		prev, t := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if prev.Size > 0 && t.Offset < prev.Offset+prev.Size {
			return fmt.Errorf("gguf: tensors %q (bytes %d..%d) and %q (from %d) overlap", prev.Name, prev.Offset, prev.Offset+prev.Size, t.Name, t.Offset)
		}
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Close releases the file's mapping; tensor data slices become invalid.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release = nil
	f.data = nil
	return err
}

// DataOffset is the file offset of the data section.
func (f *File) DataOffset() uint64 { return f.dataStart }

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KVs[i].Value, true
}

// Lookup returns key's value as a T, which must be exactly its Go type (see
// Value.Any): Lookup[uint32](f, "llama.block_count").
func Lookup[T any](f *File, key string) (T, error) {
	v, ok := f.Get(key)
	if !ok {
		var zero T
		return zero, fmt.Errorf("gguf: metadata %q: %w", key, ErrNotFound)
	}
	t, err := As[T](v)
	if err != nil {
		return t, fmt.Errorf("gguf: metadata %q %w", key, err)
	}
	return t, nil
}

// String returns a string value.
func (f *File) String(key string) (string, error) { return Lookup[string](f, key) }

// Uint32 returns a uint32 value.
func (f *File) Uint32(key string) (uint32, error) { return Lookup[uint32](f, key) }

// Int32 returns an int32 value.
func (f *File) Int32(key string) (int32, error) { return Lookup[int32](f, key) }

// Uint64 returns a uint64 value.
func (f *File) Uint64(key string) (uint64, error) { return Lookup[uint64](f, key) }

// Float32 returns a float32 value.
func (f *File) Float32(key string) (float32, error) { return Lookup[float32](f, key) }

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) { return Lookup[bool](f, key) }

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, error) { return Lookup[[]string](f, key) }

// Float32s returns an array of float32.
func (f *File) Float32s(key string) ([]float32, error) { return Lookup[[]float32](f, key) }

// Int32s returns an array of int32.
func (f *File) Int32s(key string) ([]int32, error) { return Lookup[[]int32](f, key) }

// Tensor returns the info of tensor name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData returns the bytes of tensor name, a read-only view of the file
// valid until Close.
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: tensor %q: %w", name, ErrNotFound)
	}
	if f.data == nil {
		return nil, fmt.Errorf("gguf: tensor %q: file is closed", name)
	}
	start := f.dataStart + t.Offset // checked by checkLayout
	return f.data[start : start+t.Size : start+t.Size], nil
}
