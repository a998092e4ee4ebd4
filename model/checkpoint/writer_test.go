package checkpoint_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
)

// copyCheckpoint writes every tensor of m unchanged through a Writer.
func copyCheckpoint(t *testing.T, m *checkpoint.Model, dst string) {
	t.Helper()
	w, err := m.NewWriter(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range m.Tensors() {
		b, err := m.Bytes(tr.Name)
		if err != nil {
			t.Fatal(err)
		}
		tw, err := w.TensorWriter(tr.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Two halves: tensors arrive in pieces when they are streamed.
		tw.Write(b[:len(b)/2])
		if _, err := tw.Write(b[len(b)/2:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWriterCopiesLayoutByteForByte(t *testing.T) {
	for _, o := range []tinyllama.Options{{Shards: 2, Tokenizer: tinyllama.BPE}, {}} {
		src := tiny(t, o)
		// A stray file stays behind: only the checkpoint's own files travel.
		os.WriteFile(filepath.Join(src, "README.md"), []byte("hi"), 0o644)
		m, err := checkpoint.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "out")
		copyCheckpoint(t, m, dst)
		m.Close()
		srcFiles, _ := os.ReadDir(src)
		dstFiles, _ := os.ReadDir(dst)
		if len(dstFiles) != len(srcFiles)-1 {
			t.Errorf("output has %d files, source %d (plus README)", len(dstFiles), len(srcFiles)-1)
		}
		for _, e := range dstFiles {
			a, _ := os.ReadFile(filepath.Join(src, e.Name()))
			b, _ := os.ReadFile(filepath.Join(dst, e.Name()))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs from the source", e.Name())
			}
		}
		m2, err := checkpoint.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		m2.Close()
	}
}

func TestWriterErrors(t *testing.T) {
	m, err := checkpoint.Open(tiny(t, tinyllama.Options{Shards: 2}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ts := m.Tensors()

	dst := filepath.Join(t.TempDir(), "out")
	w, err := m.NewWriter(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.TensorWriter(ts[1].Name); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("out of order: %v", err)
	}
	if err := w.WriteTensor(ts[0].Name, []byte{1, 2, 3}); err != nil {
		t.Fatal(err) // short, noticed when the next tensor starts
	}
	if _, err := w.TensorWriter(ts[1].Name); err == nil || !strings.Contains(err.Error(), "3 bytes written") {
		t.Errorf("short tensor: %v", err)
	}
	w.Abort()
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Errorf("Abort left %v", left)
	}

	dst2 := filepath.Join(t.TempDir(), "out")
	w, err = m.NewWriter(dst2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range ts[:len(ts)-1] {
		b, _ := m.Bytes(tr.Name)
		if err := w.WriteTensor(tr.Name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `tensor "lm_head.weight" and 0 more were never written`) {
		t.Errorf("Close with a missing tensor: %v", err)
	}
	if left, _ := os.ReadDir(dst2); len(left) != 0 {
		t.Errorf("a failed Close left %v", left)
	}
}
