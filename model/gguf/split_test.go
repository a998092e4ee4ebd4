package gguf

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		sizes  []uint64
		lim    SplitLimit
		starts []int
		err    string
	}{
		// By count: a cut before every n-th tensor.
		{[]uint64{1, 2, 3, 4, 5}, SplitLimit{MaxTensors: 2}, []int{0, 2, 4}, ""},
		{[]uint64{1, 2}, SplitLimit{MaxTensors: 128}, []int{0}, ""},
		// By size: each tensor counts padded to 32 bytes.
		{[]uint64{10, 10, 10, 10}, SplitLimit{MaxBytes: 64}, []int{0, 2}, ""},
		{[]uint64{32, 33, 1}, SplitLimit{MaxBytes: 128}, []int{0}, ""},
		{[]uint64{32, 33, 1}, SplitLimit{MaxBytes: 127}, []int{0, 2}, ""},
		{[]uint64{32, 33, 1}, SplitLimit{MaxBytes: 95}, []int{0, 1, 2}, ""},
		// A later tensor over the size gets a shard of its own.
		{[]uint64{10, 100, 10}, SplitLimit{MaxBytes: 64}, []int{0, 1, 2}, ""},
		{[]uint64{100, 10}, SplitLimit{MaxBytes: 64}, nil, "would leave a shard without tensors"},
		{[]uint64{1}, SplitLimit{}, nil, "one of the two"},
		{[]uint64{1}, SplitLimit{MaxBytes: 1, MaxTensors: 1}, nil, "one of the two"},
	} {
		got, err := Split(tc.sizes, tc.lim)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Split(%v, %+v): error %v, want %q", tc.sizes, tc.lim, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.starts) {
			t.Errorf("Split(%v, %+v) = %v, %v; want %v", tc.sizes, tc.lim, got, err, tc.starts)
		}
	}
}

func TestParseSplitSize(t *testing.T) {
	for in, want := range map[string]uint64{"2G": 2e9, "2GB": 2e9, "500M": 500e6, "500mb": 500e6, " 1G ": 1e9} {
		if got, err := ParseSplitSize(in); err != nil || got != want {
			t.Errorf("ParseSplitSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "0G", "-1G", "1.5G", "2K", "G", "2TB"} {
		if _, err := ParseSplitSize(in); err == nil || !strings.Contains(err.Error(), "megabytes or gigabytes") {
			t.Errorf("ParseSplitSize(%q): error %v", in, err)
		}
	}
	if got := SplitPath("m-1.4M-Q8_0", 1, 3); got != "m-1.4M-Q8_0-00002-of-00003.gguf" {
		t.Errorf("SplitPath = %s", got)
	}
}

func TestSplitFirst(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		first string
	}{
		{[]string{"d/m-Q8_0-00002-of-00002.gguf", "d/m-Q8_0-00001-of-00002.gguf"}, "d/m-Q8_0-00001-of-00002.gguf"},
		{[]string{"m-00001-of-00001.gguf"}, "m-00001-of-00001.gguf"},
		{[]string{"d/m-00001-of-00003.gguf", "d/m-00002-of-00003.gguf"}, ""},             // one missing
		{[]string{"d/a-00001-of-00002.gguf", "d/b-00002-of-00002.gguf"}, ""},             // two sets
		{[]string{"d/m-00001-of-00002.gguf", "d/m-00002-of-00002.gguf", "d/x.gguf"}, ""}, // another file
		{[]string{"d/m-00001-of-00002.gguf", "d/m-00001-of-00002.gguf"}, ""},             // twice
		{[]string{"d/m.gguf"}, ""},
		{nil, ""},
	} {
		got, ok := SplitFirst(tc.paths)
		if got != tc.first || ok != (tc.first != "") {
			t.Errorf("SplitFirst(%v) = %q, %v; want %q", tc.paths, got, ok, tc.first)
		}
	}
}
