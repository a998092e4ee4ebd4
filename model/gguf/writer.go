package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/model/quant"
)

// DefaultAlignment is GGUF's alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxTensorName is the longest tensor name llama.cpp accepts (GGML_MAX_NAME
// is 64 bytes including the terminating NUL).
const MaxTensorName = 63

// MaxDims is GGML_MAX_DIMS.
const MaxDims = 4

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name   string
	Type   quant.Type
	Shape  []uint64 // ggml's ne: innermost (contiguous) dimension first
	Offset uint64   // from the start of the data section
	Size   uint64   // bytes of data, without padding
}

// Writer writes a GGUF v3 file: first SetKV and AddTensor, then the data
// of every tensor in the order declared, then Close. The file appears
// under its name only when Close succeeds (it is written to a temporary
// file in the same directory and renamed), so a reader never sees half a
// file. Call Abort (for instance deferred) to drop an unfinished file.
//
// Memory stays constant during the data phase: the header is written as
// soon as the first tensor's data arrives, and data goes straight to the
// file through a buffer. A Writer is not safe for concurrent use.
type Writer struct {
	path      string
	f         *os.File
	bw        *bufio.Writer
	alignment uint64

	kvs     []KV
	kvIndex map[string]int

	tensors  []TensorInfo
	tIndex   map[string]int
	dataSize uint64 // size of the data section so far, padding included

	started bool   // header written, no more declarations
	next    int    // index of the tensor whose data comes next
	cur     int    // index of the tensor being written, or -1
	curDone uint64 // bytes of tensors[cur] written so far
	done    bool   // Close or Abort has run
	err     error  // first write error; every later call returns it
}

// NewWriter starts a GGUF file that Close will publish at path. alignment
// is the data alignment in bytes (0 means DefaultAlignment); it must be a
// power of two, and any other value than 32 is recorded as
// general.alignment (first, unless SetKV placed it), as GGUF requires.
func NewWriter(path string, alignment int) (*Writer, error) {
	if alignment == 0 {
		alignment = DefaultAlignment
	}
	if alignment < 1 || int64(alignment) > 1<<31 || alignment&(alignment-1) != 0 {
		return nil, fmt.Errorf("gguf: alignment %d is not a power of two between 1 and 2^31", alignment)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("gguf: creating %s: %w", path, err)
	}
	w := &Writer{
		path:      path,
		f:         f,
		bw:        bufio.NewWriterSize(f, 1<<20),
		alignment: uint64(alignment),
		kvIndex:   map[string]int{},
		tIndex:    map[string]int{},
		cur:       -1,
	}
	return w, nil
}

// SetKV sets a metadata value (see ValueOf for the Go types accepted).
// Setting a key again replaces its value and keeps its place. Keys are
// written in the order first set.
func (w *Writer) SetKV(key string, value any) error {
	if err := w.declaring("SetKV " + key); err != nil {
		return err
	}
	if key == "" || len(key) > math.MaxUint16 {
		return fmt.Errorf("gguf: key %.40q: length %d is not 1..65535", key, len(key))
	}
	v, err := ValueOf(value)
	if err != nil {
		return fmt.Errorf("gguf: key %q: %w", key, err)
	}
	if key == "general.alignment" {
		if a, ok := v.v.(uint32); !ok || uint64(a) != w.alignment {
			return fmt.Errorf("gguf: general.alignment must be the writer's alignment, uint32(%d), not %s %v", w.alignment, v.describe(), v)
		}
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kvs[i].Value = v
		return nil
	}
	w.kvIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{key, v})
	return nil
}

// AddTensor declares a tensor; shape is ggml's ne, innermost dimension
// first (a PyTorch [rows, cols] weight is {cols, rows}). The innermost
// dimension must be a multiple of typ's block size.
func (w *Writer) AddTensor(name string, typ quant.Type, shape []uint64) error {
	if err := w.declaring("AddTensor " + name); err != nil {
		return err
	}
	if name == "" || len(name) > MaxTensorName {
		return fmt.Errorf("gguf: tensor name %q: length %d is not 1..%d", name, len(name), MaxTensorName)
	}
	if _, dup := w.tIndex[name]; dup {
		return fmt.Errorf("gguf: tensor %q declared twice", name)
	}
	size, err := tensorSize(typ, shape)
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	sum := w.dataSize + size
	end, ok := alignUp(sum, w.alignment)
	if !ok || sum < w.dataSize {
		return fmt.Errorf("gguf: tensor %q: data section would exceed 2^64 bytes", name)
	}
	w.tIndex[name] = len(w.tensors)
	w.tensors = append(w.tensors, TensorInfo{
		Name: name, Type: typ, Shape: append([]uint64(nil), shape...), Offset: w.dataSize, Size: size,
	})
	w.dataSize = end
	return nil
}

// TensorWriter returns the writer for the data of tensor name, which must
// be the next one in declaration order, after the previous one's data is
// complete. Exactly the tensor's Size bytes must be written to it, in as
// many Write calls as convenient (row by row for a large tensor).
func (w *Writer) TensorWriter(name string) (io.Writer, error) {
	if err := w.begin(name); err != nil {
		return nil, err
	}
	return tensorWriter{w}, nil
}

// WriteTensorData writes the whole data of tensor name (see TensorWriter).
func (w *Writer) WriteTensorData(name string, data []byte) error {
	if err := w.begin(name); err != nil {
		return err
	}
	t := w.tensors[w.cur]
	if uint64(len(data)) != t.Size {
		return w.fail(fmt.Errorf("gguf: tensor %q (%s %v) needs %d bytes, got %d", name, t.Type, t.Shape, t.Size, len(data)))
	}
	_, err := tensorWriter{w}.Write(data)
	return err
}

// WriteTensorFrom copies the data of tensor name from r, which must supply
// at least the tensor's Size bytes (only those are read).
func (w *Writer) WriteTensorFrom(name string, r io.Reader) error {
	if err := w.begin(name); err != nil {
		return err
	}
	t := w.tensors[w.cur]
	n, err := io.CopyN(tensorWriter{w}, r, int64(t.Size))
	if err != nil {
		if w.err != nil {
			return w.err
		}
		return w.fail(fmt.Errorf("gguf: tensor %q: reading its data: got %d of %d bytes: %w", name, n, t.Size, err))
	}
	return nil
}

// Close writes what remains, checks that every tensor got all its data,
// and publishes the file at its path. After an error nothing is published
// and the temporary file is removed.
func (w *Writer) Close() error {
	if w.done {
		if w.err != nil {
			return w.err
		}
		return errors.New("gguf: writer already closed")
	}
	if w.err == nil {
		w.finish()
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	w.done = true
	if err := w.bw.Flush(); err != nil {
		return w.abortWith(fmt.Errorf("gguf: writing %s: %w", w.path, err))
	}
	// CreateTemp made the file 0600; a published model is an ordinary file.
	if err := w.f.Chmod(0o644); err != nil {
		return w.abortWith(fmt.Errorf("gguf: writing %s: %w", w.path, err))
	}
	if err := w.f.Sync(); err != nil {
		return w.abortWith(fmt.Errorf("gguf: syncing %s: %w", w.path, err))
	}
	if err := w.f.Close(); err != nil {
		return w.abortWith(fmt.Errorf("gguf: closing %s: %w", w.path, err))
	}
	if err := os.Rename(w.f.Name(), w.path); err != nil {
		return w.abortWith(fmt.Errorf("gguf: publishing %s: %w", w.path, err))
	}
	return nil
}

// Abort drops the file being written. It does nothing after a successful
// Close, so `defer w.Abort()` is safe.
func (w *Writer) Abort() {
	if w.done && w.err == nil {
		return
	}
	w.done = true
	if w.err == nil {
		w.err = errors.New("gguf: writer aborted")
	}
	w.f.Close()
	os.Remove(w.f.Name())
}

func (w *Writer) abortWith(err error) error {
	w.err = err
	w.f.Close()
	os.Remove(w.f.Name())
	return err
}

// finish completes the data phase for Close.
func (w *Writer) finish() {
	if err := w.start(); err != nil {
		return
	}
	if err := w.endTensor(); err != nil {
		return
	}
	if w.next < len(w.tensors) {
		w.fail(fmt.Errorf("gguf: closing with %d of %d tensors written; %q is next",
			w.next, len(w.tensors), w.tensors[w.next].Name))
	}
}

// declaring checks that the writer still accepts declarations.
func (w *Writer) declaring(what string) error {
	switch {
	case w.err != nil:
		return w.err
	case w.done:
		return fmt.Errorf("gguf: %s after Close", what)
	case w.started:
		return fmt.Errorf("gguf: %s after tensor data started", what)
	}
	return nil
}

// begin moves to tensor name's data, writing the header first if needed.
func (w *Writer) begin(name string) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("gguf: tensor %q written after Close", name)
	}
	if err := w.start(); err != nil {
		return err
	}
	if err := w.endTensor(); err != nil {
		return err
	}
	i, ok := w.tIndex[name]
	switch {
	case !ok:
		return w.fail(fmt.Errorf("gguf: tensor %q was not declared", name))
	case i < w.next:
		return w.fail(fmt.Errorf("gguf: tensor %q written twice", name))
	case i > w.next:
		return w.fail(fmt.Errorf("gguf: tensor %q written before %q: data must follow the declaration order", name, w.tensors[w.next].Name))
	}
	w.cur, w.curDone = i, 0
	w.next++
	return nil
}

// endTensor checks the current tensor is complete and pads after it.
func (w *Writer) endTensor() error {
	if w.cur < 0 {
		return nil
	}
	t := w.tensors[w.cur]
	if w.curDone != t.Size {
		return w.fail(fmt.Errorf("gguf: tensor %q got %d of its %d bytes", t.Name, w.curDone, t.Size))
	}
	end, _ := alignUp(t.Offset+t.Size, w.alignment)
	w.cur = -1
	return w.pad(end - t.Offset - t.Size)
}

// start writes the header once.
func (w *Writer) start() error {
	if w.started {
		return nil
	}
	w.started = true
	kvs := w.kvs
	if _, set := w.kvIndex["general.alignment"]; !set && w.alignment != DefaultAlignment {
		kvs = append([]KV{{"general.alignment", Value{typ: TypeUint32, v: uint32(w.alignment)}}}, kvs...)
	}
	var b []byte
	b = append(b, "GGUF"...)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(w.tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b = appendString(b, kv.Key)
		b = binary.LittleEndian.AppendUint32(b, uint32(kv.Value.typ))
		b = appendValue(b, kv.Value)
	}
	for _, t := range w.tensors {
		b = appendString(b, t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Type))
		b = binary.LittleEndian.AppendUint64(b, t.Offset)
	}
	if _, err := w.bw.Write(b); err != nil {
		return w.fail(fmt.Errorf("gguf: writing the header of %s: %w", w.path, err))
	}
	end, _ := alignUp(uint64(len(b)), w.alignment)
	return w.pad(end - uint64(len(b)))
}

func (w *Writer) pad(n uint64) error {
	var zeros [64]byte
	for n > 0 {
		k := min(n, uint64(len(zeros)))
		if _, err := w.bw.Write(zeros[:k]); err != nil {
			return w.fail(fmt.Errorf("gguf: writing %s: %w", w.path, err))
		}
		n -= k
	}
	return nil
}

// fail records the first error; the file is then abandoned.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// tensorWriter accepts exactly the current tensor's bytes.
type tensorWriter struct{ w *Writer }

func (tw tensorWriter) Write(p []byte) (int, error) {
	w := tw.w
	if w.err != nil {
		return 0, w.err
	}
	if w.cur < 0 {
		return 0, w.fail(errors.New("gguf: write to a tensor writer that is no longer current"))
	}
	t := w.tensors[w.cur]
	if uint64(len(p)) > t.Size-w.curDone {
		return 0, w.fail(fmt.Errorf("gguf: tensor %q: %d bytes written past its size %d", t.Name, w.curDone+uint64(len(p))-t.Size, t.Size))
	}
	n, err := w.bw.Write(p)
	w.curDone += uint64(n)
	if err != nil {
		return n, w.fail(fmt.Errorf("gguf: writing %s: %w", w.path, err))
	}
	return n, nil
}
