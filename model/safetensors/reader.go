package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// File is an open, validated, memory-mapped safetensors file. Its methods
// may be called from several goroutines at once; Close must not race with
// them. Slices returned by Bytes point into the read-only mapping: writing to
// them faults, and they are invalid after Close.
type File struct {
	path   string
	mapped []byte // the whole file, nil after Close
	data   []byte // the data section
	infos  []Info // sorted by offset (file order), then name
	index  map[string]int
	meta   map[string]string
}

// Open memory-maps the safetensors file at path and validates its header.
// A bad file gives one *FormatError naming the file, the tensor when there is
// one, and the problem.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	bad := func(format string, args ...any) error {
		return &FormatError{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	if !st.Mode().IsRegular() {
		return nil, bad("not a regular file")
	}
	size := st.Size()
	if size < 8 {
		return nil, bad("truncated: %d bytes, but the header length alone takes 8", size)
	}
	if uint64(size) > math.MaxInt {
		return nil, bad("%d bytes is too large to map on this platform", size)
	}
	var lenBuf [8]byte
	if _, err := fd.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading the header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case n < 2:
		return nil, bad("header length %d is too small (the shortest header, {}, takes 2 bytes)", n)
	case n > MaxHeaderLen:
		return nil, bad("header length %d exceeds the %d-byte limit: not a safetensors file, or a corrupt one", n, MaxHeaderLen)
	case n > uint64(size-8):
		return nil, bad("header length %d runs past the end of the file (%d bytes after the length): the file is truncated or not safetensors", n, size-8)
	}
	mapped, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: mmap: %w", path, err)
	}
	h, err := parseHeader(path, mapped[8:8+n], size-8-int64(n))
	if err != nil {
		_ = unix.Munmap(mapped) // the header error is the one worth reporting
		return nil, err
	}
	f := &File{
		path:   path,
		mapped: mapped,
		data:   mapped[8+n:],
		infos:  h.infos,
		index:  make(map[string]int, len(h.infos)),
		meta:   h.meta,
	}
	for i, info := range h.infos {
		f.index[info.Name] = i
	}
	return f, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in file order: sorted by data offset, ties
// (empty tensors) broken by name. File order lets a caller stream the file
// sequentially.
func (f *File) Names() []string {
	names := make([]string, len(f.infos))
	for i, info := range f.infos {
		names[i] = info.Name
	}
	return names
}

// Infos returns every tensor's description, in the order of Names.
func (f *File) Infos() []Info {
	out := make([]Info, len(f.infos))
	for i, info := range f.infos {
		info.Shape = slices.Clone(info.Shape)
		out[i] = info
	}
	return out
}

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (Info, bool) {
	i, ok := f.index[name]
	if !ok {
		return Info{}, false
	}
	info := f.infos[i]
	info.Shape = slices.Clone(info.Shape)
	return info, true
}

// Bytes returns the named tensor's raw little-endian data, a read-only slice
// of the mapping (nil for an unknown name or a closed file). Its capacity is
// capped so that append cannot write into a neighbour.
func (f *File) Bytes(name string) []byte {
	i, ok := f.index[name]
	if !ok || f.mapped == nil {
		return nil
	}
	info := f.infos[i]
	return f.data[info.Begin:info.End:info.End]
}

// Metadata returns a copy of the header's __metadata__ map (empty if none).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.meta))
	maps.Copy(m, f.meta)
	return m
}

// ReadF32Rows converts rows [row0, row0+nrows) of the named F32, F16 or BF16
// tensor to float32 in dst[:nrows*rowLen]. Rows run along the first
// dimension; a 1-D tensor or a scalar is a single row.
func (f *File) ReadF32Rows(name string, row0, nrows int, dst []float32) error {
	i, ok := f.index[name]
	if !ok {
		return fmt.Errorf("safetensors %s: no tensor %q", f.path, name)
	}
	if f.mapped == nil {
		return fmt.Errorf("safetensors %s: tensor %q: file is closed", f.path, name)
	}
	info := f.infos[i]
	if !info.DType.IsFloat() {
		return fmt.Errorf("safetensors %s: tensor %q: dtype %s cannot be read as float32 (F32, F16 or BF16 only)", f.path, name, info.DType)
	}
	rows, rowLen := info.Rows(), info.RowLen()
	if row0 < 0 || nrows < 0 || int64(row0) > rows || int64(nrows) > rows-int64(row0) {
		return fmt.Errorf("safetensors %s: tensor %q: rows [%d, %d) outside its %d rows", f.path, name, row0, row0+nrows, rows)
	}
	n := int64(nrows) * rowLen
	if int64(len(dst)) < n {
		return fmt.Errorf("safetensors %s: tensor %q: destination holds %d values, %d rows need %d", f.path, name, len(dst), nrows, n)
	}
	es := int64(info.DType.Size())
	begin := info.Begin + int64(row0)*rowLen*es
	DecodeF32(dst[:n], f.data[begin:begin+n*es], info.DType)
	return nil
}

// Close unmaps the file. Slices from Bytes are invalid afterwards. Calling
// Close twice is harmless.
func (f *File) Close() error {
	if f.mapped == nil {
		return nil
	}
	m := f.mapped
	f.mapped, f.data = nil, nil
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("safetensors %s: munmap: %w", f.path, err)
	}
	return nil
}

var _ io.Closer = (*File)(nil)
