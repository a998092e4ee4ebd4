package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Writer streams a safetensors file tensor by tensor in the declared order,
// holding only a small buffer in memory. Nothing appears at the final path
// until Close has checked that every tensor received exactly its byte count;
// then the file is synced and renamed into place. Any error poisons the
// writer: Close reports it and removes the temporary file.
type Writer struct {
	path    string
	tmp     *os.File
	bw      *bufio.Writer
	infos   []Info
	cur     int   // index of the tensor being written, -1 before the first
	written int64 // bytes written to infos[cur]
	err     error // first error; sticky
	done    bool
}

// NewWriter declares the tensors (name, dtype, shape; Begin and End are
// ignored and computed in the given order) and the metadata, writes the
// header to a temporary file next to path, and returns a writer that expects
// the tensors' data in the same order.
//
// The header matches the Python package's layout: compact JSON with
// __metadata__ first (omitted when empty), then the tensors in data order,
// each as {"dtype","shape","data_offsets"}, padded with spaces so that the
// data starts at a multiple of 8 bytes.
func NewWriter(path string, tensors []Info, metadata map[string]string) (*Writer, error) {
	infos := make([]Info, len(tensors))
	seen := make(map[string]bool, len(tensors))
	var off int64
	for i, t := range tensors {
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("safetensors %s: tensor %d has an empty name", path, i)
		case t.Name == metadataKey:
			return nil, fmt.Errorf("safetensors %s: %q is reserved and cannot name a tensor", path, metadataKey)
		case seen[t.Name]:
			return nil, fmt.Errorf("safetensors %s: tensor %q is declared twice", path, t.Name)
		}
		seen[t.Name] = true
		size, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, t.Name, err)
		}
		infos[i] = Info{Name: t.Name, DType: t.DType, Shape: slices.Clone(t.Shape), Begin: off, End: off + size}
		off += size
	}
	hdr, err := encodeHeader(infos, metadata)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	w := &Writer{path: path, tmp: tmp, bw: bufio.NewWriterSize(tmp, 1<<20), infos: infos, cur: -1}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	w.bw.Write(lenBuf[:]) // bufio keeps the first error; checked at Close
	w.bw.Write(hdr)
	return w, nil
}

// encodeHeader renders the header JSON, space-padded to a multiple of 8.
func encodeHeader(infos []Info, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // keys sorted: deterministic output
		if err != nil {
			return nil, fmt.Errorf("encoding metadata: %w", err)
		}
		b.WriteString(`"` + metadataKey + `":`)
		b.Write(m)
	}
	for i, t := range infos {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return nil, fmt.Errorf("encoding tensor name %q: %w", t.Name, err)
		}
		b.Write(name)
		shape := make([]string, len(t.Shape))
		for j, d := range t.Shape {
			shape[j] = fmt.Sprint(d)
		}
		fmt.Fprintf(&b, `:{"dtype":%q,"shape":[%s],"data_offsets":[%d,%d]}`,
			string(t.DType), strings.Join(shape, ","), t.Begin, t.End)
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// Tensors returns the declared tensors with their computed offsets.
func (w *Writer) Tensors() []Info {
	out := make([]Info, len(w.infos))
	for i, t := range w.infos {
		t.Shape = slices.Clone(t.Shape)
		out[i] = t
	}
	return out
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// TensorWriter starts the named tensor, which must be the next one declared
// (the previous one must be complete), and returns a writer for its bytes.
// Writing more than the tensor's size is an error; writing less is reported
// by the next TensorWriter or by Close.
func (w *Writer) TensorWriter(name string) (io.Writer, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.done {
		return nil, fmt.Errorf("safetensors %s: writer is closed", w.path)
	}
	if err := w.checkCurrent(); err != nil {
		return nil, w.fail(err)
	}
	if w.cur+1 >= len(w.infos) {
		return nil, w.fail(fmt.Errorf("safetensors %s: tensor %q written after every declared tensor", w.path, name))
	}
	if next := w.infos[w.cur+1].Name; next != name {
		return nil, w.fail(fmt.Errorf("safetensors %s: tensor %q written out of order: %q is next", w.path, name, next))
	}
	w.cur++
	w.written = 0
	return tensorWriter{w}, nil
}

// WriteTensor writes the whole of the named tensor, the next one declared.
func (w *Writer) WriteTensor(name string, data []byte) error {
	tw, err := w.TensorWriter(name)
	if err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	return w.checkCurrent()
}

// checkCurrent reports a tensor that received fewer bytes than its size.
func (w *Writer) checkCurrent() error {
	if w.cur < 0 {
		return nil
	}
	t := w.infos[w.cur]
	if w.written != t.Size() {
		return fmt.Errorf("safetensors %s: tensor %q: %d bytes written, its shape %v of %s needs %d",
			w.path, t.Name, w.written, t.Shape, t.DType, t.Size())
	}
	return nil
}

type tensorWriter struct{ w *Writer }

func (t tensorWriter) Write(p []byte) (int, error) {
	w := t.w
	if w.err != nil {
		return 0, w.err
	}
	info := w.infos[w.cur]
	if w.done || w.written+int64(len(p)) > info.Size() {
		return 0, w.fail(fmt.Errorf("safetensors %s: tensor %q: more than its %d bytes written", w.path, info.Name, info.Size()))
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	if err != nil {
		return n, w.fail(fmt.Errorf("safetensors %s: %w", w.path, err))
	}
	return n, nil
}

// Close checks that every declared tensor was written in full, then syncs
// the temporary file and renames it to the final path. On any error the
// temporary file is removed and nothing appears at the path.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	err := w.err
	if err == nil {
		err = w.checkCurrent()
	}
	if err == nil && w.cur+1 < len(w.infos) {
		var missing []string
		for _, t := range w.infos[w.cur+1:] {
			missing = append(missing, fmt.Sprintf("%q", t.Name))
		}
		sort.Strings(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		err = fmt.Errorf("safetensors %s: tensors declared but never written: %s", w.path, strings.Join(missing, ", "))
	}
	if err == nil {
		err = w.publish()
	} else {
		w.tmp.Close()
	}
	if err != nil {
		os.Remove(w.tmp.Name())
		w.err = err
		return err
	}
	return nil
}

// publish flushes, syncs and closes the temporary file, then renames it to
// the final path. The sync comes before the rename so that a crash cannot
// leave a complete-looking name over incomplete data.
func (w *Writer) publish() error {
	err := w.bw.Flush()
	if err == nil {
		err = w.tmp.Chmod(0o644) // CreateTemp makes 0600; checkpoints are shared
	}
	if err == nil {
		err = w.tmp.Sync()
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.path)
	}
	if err != nil {
		return fmt.Errorf("safetensors %s: writing: %w", w.path, err)
	}
	return nil
}

// Abort discards everything written so far; nothing appears at the path.
// It is safe to call after Close (it then does nothing).
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.err == nil {
		w.err = fmt.Errorf("safetensors %s: writer aborted", w.path)
	}
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}
