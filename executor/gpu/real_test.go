package gpu

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestDetectReal runs the real nvidia-smi on a GPU machine. CI has none, so
// it runs only when COGUMI_TEST_REAL_GPUS=1 (see examples/gpu/README.md).
func TestDetectReal(t *testing.T) {
	if os.Getenv("COGUMI_TEST_REAL_GPUS") != "1" {
		t.Skip("set COGUMI_TEST_REAL_GPUS=1 on a machine with NVIDIA GPUs")
	}
	devs, err := Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) == 0 {
		t.Fatal("nvidia-smi found no GPU")
	}
	for _, d := range devs {
		t.Logf("%d %s %q %d MiB", d.Index, d.UUID, d.Name, d.MemoryMiB)
		if !strings.HasPrefix(d.UUID, "GPU-") {
			t.Errorf("UUID %q lacks the GPU- prefix CUDA_VISIBLE_DEVICES accepts", d.UUID)
		}
		if MatchType(d, "h100") && strings.Contains(d.Name, "80GB") {
			for _, need := range []string{"80GB", "80GiB"} {
				m, _ := ParseMemory(need)
				t.Logf("needs %s: %v", need, MemoryFits(d, m))
			}
		}
	}
	a := NewAllocator(devs)
	t.Logf("Check(%d+1 GPUs): %v", len(devs), a.Check(Need{Count: len(devs) + 1, Type: "h100"}))
	got, err := a.Acquire(context.Background(), Need{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CUDA_VISIBLE_DEVICES=%s", VisibleDevices(got))
}
