package safetensors

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refRound is an independent, obviously-correct round-to-nearest-even
// conversion of f to a binary format with ebits exponent and mbits mantissa
// bits, done in exact float64 arithmetic. NaN is left to the callers.
func refRound(f float32, ebits, mbits uint) uint32 {
	bias := 1<<(ebits-1) - 1
	var sign uint32
	if math.Signbit(float64(f)) {
		sign = 1 << (ebits + mbits)
	}
	inf := sign | (1<<ebits-1)<<mbits
	a := math.Abs(float64(f))
	if a == 0 {
		return sign
	}
	if math.IsInf(a, 0) {
		return inf
	}
	_, e := math.Frexp(a)
	exp := e - 1
	if exp < 1-bias {
		exp = 1 - bias // subnormal: fixed scale
	}
	m := math.RoundToEven(math.Ldexp(a, int(mbits)-exp)) // exact: a has 24 bits
	if m >= float64(uint64(1)<<(mbits+1)) {
		m /= 2
		exp++
	}
	if m < float64(uint64(1)<<mbits) {
		return sign | uint32(m)
	}
	if exp > bias {
		return inf
	}
	return sign | uint32(exp+bias)<<mbits | (uint32(m) - 1<<mbits)
}

func TestF16AllValuesRoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		got := F32ToF16(f)
		want := uint16(h)
		if h&0x7fff > 0x7c00 { // NaN: ggml's portable code makes it 0x7e00
			want = uint16(h&0x8000) | 0x7e00
			if !math.IsNaN(float64(f)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, f)
			}
		} else if refRound(f, 5, 10) != uint32(h) {
			t.Fatalf("F16ToF32(%#04x) = %v is not exact", h, f)
		}
		if got != want {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want %#04x", h, got, want)
		}
	}
}

func TestF32ToF16MatchesReference(t *testing.T) {
	check := func(f float32) {
		t.Helper()
		if math.IsNaN(float64(f)) {
			return
		}
		if got, want := F32ToF16(f), uint16(refRound(f, 5, 10)); got != want {
			t.Fatalf("F32ToF16(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	// Every half value, the midpoints between neighbours (ties) and their
	// float32 neighbours: where rounding bugs live.
	for h := 0; h < 0x7c00; h++ {
		lo, hi := F16ToF32(uint16(h)), F16ToF32(uint16(h+1))
		mid := float32((float64(lo) + float64(hi)) / 2)
		for _, f := range []float32{mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9)} {
			check(f)
			check(-f)
		}
	}
	for _, f := range []float32{65504, 65519.99, 65520, 1e10, float32(math.Inf(1)), 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1.0p-26, 1e-45} {
		check(f)
		check(-f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2_000_000 {
		check(math.Float32frombits(r.Uint32()))
	}
}

func TestF32ToF16Specials(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {0x1p-24, 0x0001},
		{0x1p-25, 0x0000}, {0x1.8p-24, 0x0002}, {float32(math.Inf(-1)), 0xfc00},
		{float32(math.NaN()), 0x7e00}, {math.Float32frombits(0xffc00001), 0xfe00},
	} {
		if got := F32ToF16(tc.f); got != tc.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
}

func TestBF16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BF16ToF32(uint16(h))
		want := uint16(h)
		if math.IsNaN(float64(f)) {
			want = 0x7fc0
		}
		if got := F32ToBF16(f); got != want {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x, want %#04x", h, got, want)
		}
	}
	for _, tc := range []struct {
		bits uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81},
		{0x7f7fffff, 0x7f80}, {0x00000001, 0x0000}, {0x00008000, 0x0000}, {0x00018000, 0x0002},
		{0xffc00001, 0x7fc0},
	} {
		if got := F32ToBF16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tc.bits, got, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2_000_000 {
		f := math.Float32frombits(r.Uint32())
		if math.IsNaN(float64(f)) {
			continue
		}
		if got, want := F32ToBF16(f), uint16(refRound(f, 8, 7)); got != want {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(f), got, want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	src := []float32{0, 1, -2.5, 0.1, 3e-5, 65504}
	for _, d := range []DType{F32, F16, BF16} {
		buf := make([]byte, len(src)*d.Size())
		if !EncodeF32(buf, src, d) {
			t.Fatalf("EncodeF32(%s) refused", d)
		}
		got := make([]float32, len(src))
		if !DecodeF32(got, buf, d) {
			t.Fatalf("DecodeF32(%s) refused", d)
		}
		for i, v := range src {
			var want float32
			switch d {
			case F32:
				want = v
			case F16:
				want = F16ToF32(F32ToF16(v))
			case BF16:
				want = BF16ToF32(F32ToBF16(v))
			}
			if got[i] != want {
				t.Errorf("%s: value %d: got %v, want %v", d, i, got[i], want)
			}
		}
	}
	if EncodeF32(nil, nil, I32) || DecodeF32(nil, nil, U8) {
		t.Error("non-float dtypes must be refused")
	}
}
