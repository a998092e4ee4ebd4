package zpack

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/zpack/internal/synth"
)

// allPatterns returns every 16-bit value once, little-endian.
func allPatterns() []byte {
	b := make([]byte, 0, 2*65536)
	for v := range 65536 {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestPlanesBF16(t *testing.T) {
	all := allPatterns()
	for n := 0; n <= 20; n++ { // the 8-value loop and every tail length
		checkBF16(t, all[2*40000:2*(40000+n)])
	}
	checkBF16(t, all)
	checkBF16(t, all[6:])
}

func checkBF16(t *testing.T, raw []byte) {
	t.Helper()
	n := len(raw) / 2
	exp, sm := make([]byte, n), make([]byte, n)
	splitBF16(raw, exp, sm)
	for i := range n {
		v := binary.LittleEndian.Uint16(raw[2*i:])
		if exp[i] != byte(v>>7) {
			t.Fatalf("value %#04x: exponent %#02x, want %#02x", v, exp[i], byte(v>>7))
		}
		if sm[i]>>7 != byte(v>>15) || sm[i]&0x7f != byte(v&0x7f) {
			t.Fatalf("value %#04x: sign+mantissa %#02x", v, sm[i])
		}
	}
	back := make([]byte, len(raw))
	mergeBF16(back, exp, sm)
	if !bytes.Equal(back, raw) {
		t.Fatalf("%d values: mergeBF16(splitBF16(x)) != x", n)
	}
}

func TestPlanesF16(t *testing.T) {
	all := allPatterns()
	// Every length up to two packing groups and then some, so each tail
	// length of the 3-bit plane is covered, and the full value range.
	for n := 0; n <= 40; n++ {
		checkF16(t, all[2*1000:2*(1000+n)])
	}
	checkF16(t, all)
	checkF16(t, all[2:]) // 65535 values: not a multiple of 8
}

func checkF16(t *testing.T, raw []byte) {
	t.Helper()
	lens, ok := planeLens(kindF16, len(raw))
	if !ok {
		t.Fatalf("planeLens(f16, %d) not ok", len(raw))
	}
	exp, lo, hi := make([]byte, lens[0]), make([]byte, lens[1]), make([]byte, lens[2])
	splitF16(raw, exp, lo, hi)
	for i := range len(raw) / 2 {
		v := binary.LittleEndian.Uint16(raw[2*i:])
		if exp[i] != byte(v>>10)&0x1f || lo[i] != byte(v) {
			t.Fatalf("value %#04x: exponent %#02x, low %#02x", v, exp[i], lo[i])
		}
	}
	// The 3-bit plane as the format documents it: value j of each group of
	// 8 at bits 3(j%8).. of a little-endian 24-bit word.
	want := make([]byte, len(hi))
	for i := range len(raw) / 2 {
		v := binary.LittleEndian.Uint16(raw[2*i:])
		x := uint32(v>>15)<<2 | uint32(v>>8&3)
		word := x << (3 * (i % 8))
		for k := range 3 {
			if b := 3*(i/8) + k; b < len(want) {
				want[b] |= byte(word >> (8 * k))
			}
		}
	}
	if !bytes.Equal(hi, want) {
		t.Fatalf("%d values: 3-bit plane differs from the documented layout", len(raw)/2)
	}
	back := make([]byte, len(raw))
	if err := mergeF16(back, exp, lo, hi); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, raw) {
		t.Fatalf("%d values: mergeF16(splitF16(x)) != x", len(raw)/2)
	}
	if len(exp) > 0 {
		exp[len(exp)-1] = 32
		if err := mergeF16(back, exp, lo, hi); err == nil {
			t.Error("mergeF16 accepted an exponent of 32")
		}
	}
}

func TestConversions(t *testing.T) {
	tests := []struct {
		f         float32
		bf16, f16 uint16
	}{
		{0, 0, 0},
		{1, 0x3f80, 0x3c00},
		{-2, 0xc000, 0xc000},
		{0.02, 0x3ca4, 0x251f},
		{65504, 0x4780, 0x7bff},
		{1e6, 0x4974, 0x7c00},              // F16 overflows to +Inf
		{5.960464477539063e-08, 0x3380, 1}, // smallest F16 subnormal
		{1e-9, 0x3089, 0},
	}
	for _, tc := range tests {
		if got := synth.BF16(tc.f); got != tc.bf16 {
			t.Errorf("BF16(%g) = %#04x, want %#04x", tc.f, got, tc.bf16)
		}
		if got := synth.F16(tc.f); got != tc.f16 {
			t.Errorf("F16(%g) = %#04x, want %#04x", tc.f, got, tc.f16)
		}
	}
}

func TestPlanSegments(t *testing.T) {
	file := func(m map[string]any, dataLen int) []byte {
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
		return append(append(out, js...), make([]byte, dataLen)...)
	}
	type T = map[string]any
	tensor := func(dtype string, b, e int) T {
		return T{"dtype": dtype, "shape": []int{}, "data_offsets": []int{b, e}}
	}
	tests := []struct {
		name string
		data []byte
		want string // kind:length ...; @H is the header length, @H4 and @H3 it plus 4 and 3, @ALL the file
	}{
		{"empty", nil, ""},
		{"short", []byte("abc"), "plain:3"},
		{"huge header length", append(binary.LittleEndian.AppendUint64(nil, 1<<40), "{}"...), "plain:10"},
		{"bad json", append(binary.LittleEndian.AppendUint64(nil, 3), "{x}"...), "plain:11"},
		{"one bf16", file(T{"a": tensor("BF16", 0, 8)}, 8), "plain:@H bf16-planes:8"},
		{"gap and tail", file(T{"a": tensor("F16", 4, 8)}, 12), "plain:@H4 f16-planes:4 plain:4"},
		{"adjacent merge", file(T{"a": tensor("BF16", 0, 4), "b": tensor("BF16", 4, 8), "c": tensor("F32", 8, 12)}, 12), "plain:@H bf16-planes:8 plain:4"},
		{"odd bf16 is plain", file(T{"a": tensor("BF16", 0, 3)}, 3), "plain:@H3"},
		{"metadata ignored", file(T{"__metadata__": T{"format": "pt"}, "a": tensor("BF16", 0, 2)}, 2), "plain:@H bf16-planes:2"},
		{"out of range", file(T{"a": tensor("BF16", 0, 10)}, 8), "plain:@ALL"},
		{"overlap", file(T{"a": tensor("BF16", 0, 6), "b": tensor("BF16", 4, 8)}, 8), "plain:@ALL"},
		{"negative", file(T{"a": tensor("BF16", -2, 2)}, 8), "plain:@ALL"},
		{"three offsets", file(T{"a": T{"dtype": "BF16", "data_offsets": []int{0, 2, 4}}}, 8), "plain:@ALL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs, err := planSegments(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			h := 0
			if len(tc.data) >= 8 {
				h = 8 + int(binary.LittleEndian.Uint64(tc.data))
			}
			want := strings.NewReplacer(
				"@H4", strconv.Itoa(h+4),
				"@H3", strconv.Itoa(h+3),
				"@H", strconv.Itoa(h),
				"@ALL", strconv.Itoa(len(tc.data)),
			).Replace(tc.want)
			got := ""
			var end int64
			for i, s := range segs {
				if i > 0 {
					got += " "
				}
				got += s.kind.String() + ":" + strconv.FormatInt(s.n, 10)
				if s.off != end {
					t.Errorf("segment %d starts at %d, want %d", i, s.off, end)
				}
				end = s.off + s.n
			}
			if end != int64(len(tc.data)) {
				t.Errorf("segments cover %d bytes of %d", end, len(tc.data))
			}
			if got != want {
				t.Errorf("segments %q, want %q", got, want)
			}
		})
	}
}
