package zpack

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/model/zpack/internal/synth"
)

// zstdCLI returns the zstd command, skipping the test when it is missing,
// except in CI (CI=true), where it must be installed (apt-get install zstd).
func zstdCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("zstd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zstd CLI not found; CI must install it (apt-get install -y zstd)")
		}
		t.Skip("zstd CLI not found; install it with apt-get install -y zstd")
	}
	return p
}

func TestZstdCLIInterop(t *testing.T) {
	zstd := zstdCLI(t)
	ctx := context.Background()
	inputs := map[string][]byte{
		"empty":   {},
		"weights": safetensors(t, synth.Tensor{Name: "w", Dtype: "BF16", Data: gaussian16(t, 3<<20+5, 0.02, 0, 1, synth.BF16)}),
		"text":    bytes.Repeat([]byte("cogumi builds models\n"), 100000),
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := writeFile(t, dir, "in", data)

			// Ours -> zstd -d.
			ours := filepath.Join(dir, "ours.zst")
			if _, err := CompressFile(ctx, src, ours, Options{Threads: 2}); err != nil {
				t.Fatal(err)
			}
			back := filepath.Join(dir, "cli.out")
			if out, err := exec.Command(zstd, "-q", "-d", "-f", ours, "-o", back).CombinedOutput(); err != nil {
				t.Fatalf("zstd -d: %v\n%s", err, out)
			}
			if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
				t.Fatalf("zstd -d gave %d bytes, want %d identical", len(got), len(data))
			}

			// zstd -3 -T2 -> ours.
			theirs := filepath.Join(dir, "cli.zst")
			if out, err := exec.Command(zstd, "-q", "-3", "-T2", "-f", src, "-o", theirs).CombinedOutput(); err != nil {
				t.Fatalf("zstd: %v\n%s", err, out)
			}
			mine := filepath.Join(dir, "ours.out")
			if _, err := DecompressFile(ctx, theirs, mine); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(mine); !bytes.Equal(got, data) {
				t.Fatalf("DecompressFile of zstd's output gave %d bytes, want %d identical", len(got), len(data))
			}
		})
	}
}
