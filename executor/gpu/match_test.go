package gpu

import (
	"strings"
	"testing"
)

func TestMatchType(t *testing.T) {
	tests := []struct {
		name, typ string
		want      bool
	}{
		{"NVIDIA H100 80GB HBM3", "h100", true},
		{"NVIDIA H100 80GB HBM3", "H100", true},
		{"NVIDIA H100 PCIe", "h100", true},
		{"NVIDIA H100 80GB HBM3", "", true},
		{"NVIDIA RTX A1000", "a100", false},
		{"NVIDIA A100-SXM4-80GB", "a100", true},
		{"NVIDIA A100-SXM4-80GB", "a100 80gb", true},
		{"NVIDIA A100-SXM4-80GB", "a100-80gb", true},
		{"NVIDIA A100-PCIE-40GB", "a100-80gb", false},
		{"NVIDIA A100-SXM4-80GB", "sxm4-80gb", true},
		{"NVIDIA H100 80GB HBM3", "h10", false},
		{"NVIDIA H100 80GB HBM3", "h1000", false},
		{"Tesla V100-SXM2-16GB", "v100", true},
	}
	for _, tt := range tests {
		if got := MatchType(Device{Name: tt.name}, tt.typ); got != tt.want {
			t.Errorf("MatchType(%q, %q) = %v, want %v", tt.name, tt.typ, got, tt.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in    string
		bytes int64
		str   string
	}{
		{"80GB", 80e9, "80 GB"},
		{"80gb", 80e9, "80 GB"},
		{"80G", 80e9, "80 GB"},
		{"40GiB", 40 << 30, "40 GiB"},
		{"40 gi", 40 << 30, "40 GiB"},
		{"81559MiB", 81559 << 20, "81559 MiB"},
		{"1.5TB", 15e11, "1.5 TB"},
		{"512", 512, "512 B"},
	}
	for _, tt := range tests {
		m, err := ParseMemory(tt.in)
		if err != nil {
			t.Errorf("ParseMemory(%q): %v", tt.in, err)
			continue
		}
		if m.Bytes != tt.bytes || m.String() != tt.str {
			t.Errorf("ParseMemory(%q) = %d bytes %q, want %d %q", tt.in, m.Bytes, m, tt.bytes, tt.str)
		}
	}
	for _, bad := range []string{"", "GB", "80 GBs", "lots", "1.2.3GB", "80 PB"} {
		if _, err := ParseMemory(bad); err == nil {
			t.Errorf("ParseMemory(%q) succeeded, want an error", bad)
		}
	}
}

func TestMemoryFits(t *testing.T) {
	h100 := Device{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559}
	a100 := Device{Index: 1, Name: "NVIDIA A100-PCIE-40GB", MemoryMiB: 40960}
	tests := []struct {
		dev     Device
		need    string
		wantErr string
	}{
		{h100, "80GB", ""},
		{h100, "79GiB", ""},
		{h100, "81559MiB", ""},
		{h100, "80GiB", "needs 80 GiB of GPU memory; NVIDIA H100 80GB HBM3 has 81559 MiB = 79.6 GiB (85.5 GB): did you mean 80GB?"},
		{h100, "81560MiB", "needs 81560 MiB of GPU memory; NVIDIA H100 80GB HBM3 has 81559 MiB = 79.6 GiB (85.5 GB): did you mean 81560MB?"},
		{h100, "90GB", "needs 90 GB of GPU memory; NVIDIA H100 80GB HBM3 has 81559 MiB = 85.5 GB (79.6 GiB)"},
		{a100, "40GB", ""},
		{a100, "40GiB", ""},
		{a100, "41GiB", "has 40960 MiB = 40.0 GiB (42.9 GB): did you mean 41GB?"},
		{a100, "80GB", "needs 80 GB of GPU memory; NVIDIA A100-PCIE-40GB has 40960 MiB = 42.9 GB (40.0 GiB)"},
		{Device{Name: "X"}, "1GB", "X (GPU 0) does not report its memory"},
	}
	for _, tt := range tests {
		m, err := ParseMemory(tt.need)
		if err != nil {
			t.Fatal(err)
		}
		err = MemoryFits(tt.dev, m)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("MemoryFits(%s, %s): %v", tt.dev.Name, tt.need, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("MemoryFits(%s, %s) = %v, want %q", tt.dev.Name, tt.need, err, tt.wantErr)
		}
		if strings.HasSuffix(tt.wantErr, ")") && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("MemoryFits(%s, %s) = %v: suggests a unit that does not fit either", tt.dev.Name, tt.need, err)
		}
	}
}
