package gpu

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	h100a = "0, GPU-055ee11a-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559 MiB"
	h100b = "1, GPU-1d8c0a7e-0000-0000-0000-000000000001, NVIDIA H100 80GB HBM3, 81559 MiB"
	a100  = "0, GPU-a100a100-0000-0000-0000-000000000000, NVIDIA A100-PCIE-40GB, 40960 MiB"
	h100m = "1, GPU-h100h100-0000-0000-0000-000000000001, NVIDIA H100 80GB HBM3, 81559 MiB"
)

// fakeSMI puts an nvidia-smi first on PATH (and alone on it) that prints
// stdout and exits with code, after checking it was asked the expected
// query.
func fakeSMI(t *testing.T, stdout string, code int) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n" +
		"[ \"$1 $2\" = \"--query-gpu=index,uuid,name,memory.total --format=csv,noheader\" ] || { echo \"bad args: $*\" >&2; exit 99; }\n" +
		"cat <<'OUT'\n" + stdout + "\nOUT\n" +
		"exit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		code    int
		want    []Device
		wantErr string
	}{
		{name: "two H100", out: h100a + "\n" + h100b, want: []Device{
			{0, "GPU-055ee11a-0000-0000-0000-000000000000", "NVIDIA H100 80GB HBM3", 81559},
			{1, "GPU-1d8c0a7e-0000-0000-0000-000000000001", "NVIDIA H100 80GB HBM3", 81559},
		}},
		{name: "mixed", out: a100 + "\n" + h100m, want: []Device{
			{0, "GPU-a100a100-0000-0000-0000-000000000000", "NVIDIA A100-PCIE-40GB", 40960},
			{1, "GPU-h100h100-0000-0000-0000-000000000001", "NVIDIA H100 80GB HBM3", 81559},
		}},
		{name: "memory N/A", out: "0, GPU-x, NVIDIA GH200 480GB, [N/A]", want: []Device{{0, "GPU-x", "NVIDIA GH200 480GB", 0}}},
		{name: "none", out: "No devices were found", code: 6, want: []Device{}},
		{name: "empty", out: "", want: []Device{}},
		{name: "garbage", out: h100a + "\nhello world", wantErr: `"hello world"`},
		{name: "bad memory", out: "0, GPU-x, NVIDIA H100, lots", wantErr: `memory.total "lots"`},
		{name: "bad index", out: "x, GPU-x, NVIDIA H100, 1 MiB", wantErr: `index "x"`},
		{name: "driver", out: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", code: 9, wantErr: "couldn't communicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeSMI(t, tt.out, tt.code)
			got, err := Detect(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect() error = %v, want one containing %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect(): %v", err)
			}
			if got == nil || len(got) != len(tt.want) {
				t.Fatalf("Detect() = %#v, want %#v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("device %d = %#v, want %#v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDetectWithoutNvidiaSMI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	got, err := Detect(context.Background())
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Detect() = %#v, %v; want an empty list and no error", got, err)
	}
}

func twoH100(t *testing.T) []Device {
	t.Helper()
	devs, err := parseQuery(h100a + "\n" + h100b)
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

func TestRestrict(t *testing.T) {
	devs := twoH100(t)
	tests := []struct {
		spec    string
		want    []int // indices
		wantErr string
	}{
		{spec: "", want: []int{0, 1}},
		{spec: "none", want: []int{}},
		{spec: "1", want: []int{1}},
		{spec: "1, 0", want: []int{1, 0}},
		{spec: "0,0", want: []int{0}},
		{spec: "GPU-1d8c0a7e-0000-0000-0000-000000000001", want: []int{1}},
		{spec: "1d8c0a7e-0000-0000-0000-000000000001,0", want: []int{1, 0}},
		{spec: "2", wantErr: `no GPU "2" on this machine (it has 0 (NVIDIA H100 80GB HBM3`},
		{spec: "GPU-nope", wantErr: `no GPU "GPU-nope"`},
	}
	for _, tt := range tests {
		got, err := Restrict(devs, tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Restrict(%q) error = %v, want %s", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Restrict(%q): %v", tt.spec, err)
			continue
		}
		var idx []int
		for _, d := range got {
			idx = append(idx, d.Index)
		}
		if len(idx) != len(tt.want) || (len(idx) > 0 && !equalInts(idx, tt.want)) {
			t.Errorf("Restrict(%q) = %v, want %v", tt.spec, idx, tt.want)
		}
	}
}

func equalInts(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestVisibleDevices(t *testing.T) {
	devs := twoH100(t)
	if got, want := VisibleDevices(devs), "GPU-055ee11a-0000-0000-0000-000000000000,GPU-1d8c0a7e-0000-0000-0000-000000000001"; got != want {
		t.Errorf("VisibleDevices = %q, want %q", got, want)
	}
	if got := VisibleDevices(nil); got != "" {
		t.Errorf("VisibleDevices(nil) = %q, want empty (no GPU visible)", got)
	}
}
