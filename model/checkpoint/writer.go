package checkpoint

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/model/safetensors"
)

// layoutFiles are the non-weight files a derived checkpoint keeps. A fixed
// list rather than "everything else" keeps stray files of the source (a
// README, training state) out of the output, whose digest they would change.
func layoutFiles() []string {
	return []string{ConfigFile, GenerationConfigFile, SentencePieceFile, TokenizerJSONFile,
		TokenizerConfigFile, "special_tokens_map.json", "added_tokens.json",
		"chat_template.jinja", "chat_template.json"}
}

// Writer writes a new checkpoint with the layout of an open one: the same
// non-weight files, the same shards holding the same tensors in the same
// order, with the same dtypes and shapes, and the same index. Tensors are
// written one at a time in the order of Model.Tensors, so memory stays
// bounded by what the caller holds.
type Writer struct {
	src     *Model
	dir     string
	order   []TensorRef
	next    int                 // index in order of the next tensor
	shard   *safetensors.Writer // shard being written, nil between shards
	created []string            // files written so far, removed by Abort
	done    bool
}

// NewWriter creates dst (and its parents), copies the non-weight files of m
// into it, and returns a Writer expecting every tensor of m, in the order of
// m.Tensors().
func (m *Model) NewWriter(dst string) (*Writer, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	w := &Writer{src: m, dir: dst, order: m.Tensors()}
	for _, name := range layoutFiles() {
		from := filepath.Join(m.dir, name)
		if !exists(from) {
			continue
		}
		if err := copyFile(from, filepath.Join(dst, name)); err != nil {
			w.Abort()
			return nil, err
		}
		w.created = append(w.created, filepath.Join(dst, name))
	}
	return w, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("checkpoint: copying %s to %s: %w", from, to, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Next returns the tensor expected next, or false when all were written.
func (w *Writer) Next() (TensorRef, bool) {
	if w.next >= len(w.order) {
		return TensorRef{}, false
	}
	return w.order[w.next], true
}

// TensorWriter starts the named tensor, which must be the next one, and
// returns a writer for exactly its bytes (in the source's dtype).
func (w *Writer) TensorWriter(name string) (io.Writer, error) {
	if w.done {
		return nil, fmt.Errorf("checkpoint %s: writer is closed", w.dir)
	}
	t, ok := w.Next()
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: tensor %q written after every tensor of the source", w.dir, name)
	}
	if t.Name != name {
		return nil, fmt.Errorf("checkpoint %s: tensor %q written out of order: %q is next", w.dir, name, t.Name)
	}
	if w.shard != nil && w.order[w.next-1].Shard != t.Shard {
		if err := w.closeShard(); err != nil {
			return nil, err
		}
	}
	if w.shard == nil {
		f := w.src.files[t.Shard]
		sw, err := safetensors.NewWriter(filepath.Join(w.dir, t.Shard), f.Infos(), f.Metadata())
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		w.shard = sw
	}
	w.next++
	tw, err := w.shard.TensorWriter(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return tw, nil
}

// WriteTensor writes the whole of the named tensor, the next one.
func (w *Writer) WriteTensor(name string, data []byte) error {
	tw, err := w.TensorWriter(name)
	if err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (w *Writer) closeShard() error {
	sw := w.shard
	w.shard = nil
	if err := sw.Close(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	w.created = append(w.created, filepath.Join(w.dir, w.order[w.next-1].Shard))
	return nil
}

// Close finishes the last shard, checks that every tensor was written, and
// writes the index (for a sharded source). On error the output is removed.
func (w *Writer) Close() error {
	if w.done {
		return fmt.Errorf("checkpoint %s: writer already closed", w.dir)
	}
	err := w.finish()
	if err != nil {
		w.Abort()
		return err
	}
	w.done = true
	return nil
}

func (w *Writer) finish() error {
	if t, ok := w.Next(); ok {
		return fmt.Errorf("checkpoint %s: tensor %q and %d more were never written", w.dir, t.Name, len(w.order)-w.next-1)
	}
	if w.shard != nil {
		if err := w.closeShard(); err != nil {
			return err
		}
	}
	if !w.src.indexed {
		return nil
	}
	return w.writeIndex()
}

// writeIndex writes model.safetensors.index.json: the source's metadata with
// total_size recomputed, and the weight map.
func (w *Writer) writeIndex() error {
	meta := map[string]any{}
	if len(w.src.indexMeta) > 0 {
		_ = json.Unmarshal(w.src.indexMeta, &meta) // a non-object metadata is dropped
		if meta == nil {
			meta = map[string]any{}
		}
	}
	var total int64
	weightMap := make(map[string]string, len(w.order))
	for _, t := range w.order {
		info, _ := w.src.files[t.Shard].Tensor(t.Name)
		total += info.Size()
		weightMap[t.Name] = t.Shard
	}
	meta["total_size"] = total
	b, err := json.MarshalIndent(map[string]any{"metadata": meta, "weight_map": weightMap}, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint %s: encoding the index: %w", w.dir, err)
	}
	p := filepath.Join(w.dir, IndexFile)
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	w.created = append(w.created, p)
	return nil
}

// Abort removes everything the writer created. It is safe after Close
// fails; after a successful Close it does nothing.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.shard != nil {
		w.shard.Abort()
		w.shard = nil
	}
	for _, p := range w.created {
		os.Remove(p) // best effort: the caller's scratch directory is discarded anyway
	}
}
