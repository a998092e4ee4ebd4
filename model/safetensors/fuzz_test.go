package safetensors

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open: it must return an error or a file
// whose every tensor can be read without a panic. Seeds live in
// testdata/fuzz/FuzzOpen (valid files and near misses).
func FuzzOpen(f *testing.F) {
	f.Add(rawFile(`{"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		sf, err := Open(p)
		if err != nil {
			return
		}
		defer sf.Close()
		sf.Metadata()
		for _, name := range sf.Names() {
			info, ok := sf.Tensor(name)
			if !ok {
				t.Fatalf("Names() lists %q but Tensor() does not know it", name)
			}
			if int64(len(sf.Bytes(name))) != info.Size() {
				t.Fatalf("tensor %q: %d bytes, info says %d", name, len(sf.Bytes(name)), info.Size())
			}
			if !info.DType.IsFloat() || info.RowLen() > 1<<16 {
				continue
			}
			dst := make([]float32, info.RowLen())
			for r := range min(info.Rows(), 4) {
				if err := sf.ReadF32Rows(name, int(r), 1, dst); err != nil {
					t.Fatalf("tensor %q row %d: %v", name, r, err)
				}
			}
		}
	})
}
