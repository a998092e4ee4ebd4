package zpack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/zpack/internal/synth"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzDecompress when
// ZPACK_WRITE_SEEDS=1 (after a format change); otherwise it checks that the
// committed seeds still decompress, so they stay meaningful.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecompress")
	if os.Getenv("ZPACK_WRITE_SEEDS") != "1" {
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) == 0 {
			t.Fatalf("no fuzz seeds in %s: %v", dir, err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "bad-") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			var in []byte
			if _, err := fmt.Sscanf(strings.TrimPrefix(string(b), "go test fuzz v1\n"), "[]byte(%q)", &in); err != nil {
				t.Fatalf("seed %s: %v", e.Name(), err)
			}
			if _, err := decompressBytes(in); err != nil {
				t.Errorf("seed %s no longer decompresses: %v", e.Name(), err)
			}
		}
		return
	}
	_, sample := sampleContainer(t)
	_, zst := roundTrip(t, []byte(strings.Repeat("seed ", 200)), Options{})
	seeds := map[string][]byte{
		"sample":      sample,
		"zst":         zst,
		"empty":       containerOf(t, nil, 0),
		"plain":       containerOf(t, []byte(strings.Repeat("not safetensors ", 30)), 0),
		"bf16":        containerOf(t, safetensors(t, synth.Tensor{Name: "w", Dtype: "BF16", Data: gaussian16(t, 300, 0.02, 0, 5, synth.BF16)}), 100),
		"f16":         containerOf(t, safetensors(t, synth.Tensor{Name: "w", Dtype: "F16", Data: gaussian16(t, 301, 0.02, 0, 6, synth.F16)}), 100),
		"bad-trunc":   sample[:len(sample)/2],
		"bad-version": append([]byte("CGZP\x02\x00"), sample[6:]...),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, in := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
