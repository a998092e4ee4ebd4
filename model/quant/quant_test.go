package quant_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/quant"
)

func TestTypeTable(t *testing.T) {
	tests := []struct {
		typ        quant.Type
		id         uint32
		name       string
		block, siz int
	}{
		{quant.F32, 0, "F32", 1, 4},
		{quant.F16, 1, "F16", 1, 2},
		{quant.Q4_0, 2, "Q4_0", 32, 18},
		{quant.Q4_1, 3, "Q4_1", 32, 20},
		{quant.Q5_0, 6, "Q5_0", 32, 22},
		{quant.Q5_1, 7, "Q5_1", 32, 24},
		{quant.Q8_0, 8, "Q8_0", 32, 34},
		{quant.Q2_K, 10, "Q2_K", 256, 84},
		{quant.Q3_K, 11, "Q3_K", 256, 110},
		{quant.Q4_K, 12, "Q4_K", 256, 144},
		{quant.Q5_K, 13, "Q5_K", 256, 176},
		{quant.Q6_K, 14, "Q6_K", 256, 210},
		{quant.BF16, 30, "BF16", 1, 2},
		{quant.IQ2_XXS, 16, "IQ2_XXS", 256, 66},
		{quant.IQ2_XS, 17, "IQ2_XS", 256, 74},
		{quant.IQ3_XXS, 18, "IQ3_XXS", 256, 98},
		{quant.IQ4_NL, 20, "IQ4_NL", 32, 18},
		{quant.IQ3_S, 21, "IQ3_S", 256, 110},
		{quant.IQ2_S, 22, "IQ2_S", 256, 82},
		{quant.IQ4_XS, 23, "IQ4_XS", 256, 136},
	}
	for _, tt := range tests {
		if uint32(tt.typ) != tt.id || tt.typ.String() != tt.name || tt.typ.BlockSize() != tt.block || tt.typ.TypeSize() != tt.siz {
			t.Errorf("%v: id %d block %d size %d, want %d %s %d %d", tt.typ, uint32(tt.typ), tt.typ.BlockSize(), tt.typ.TypeSize(), tt.id, tt.name, tt.block, tt.siz)
		}
		if got, err := quant.ParseType(strings.ToLower(tt.name)); err != nil || got != tt.typ {
			t.Errorf("ParseType(%q) = %v, %v", strings.ToLower(tt.name), got, err)
		}
		if got := quant.RowSize(tt.typ, 4096); got != 4096/tt.block*tt.siz {
			t.Errorf("RowSize(%v, 4096) = %d", tt.typ, got)
		}
	}
	if len(quant.Types()) != len(tests) {
		t.Errorf("Types() has %d entries, the table %d", len(quant.Types()), len(tests))
	}
	for _, bad := range []quant.Type{4, 5, 9, 15, 29, 31, 1 << 31} {
		if bad.Valid() || quant.RowSize(bad, 256) != -1 || !strings.HasPrefix(bad.String(), "type(") {
			t.Errorf("type %d should be unknown", uint32(bad))
		}
	}
	if quant.RowSize(quant.Q4_K, 100) != -1 || quant.RowSize(quant.Q8_0, -32) != -1 {
		t.Error("RowSize accepted a length that is not a multiple of the block size")
	}
	if _, err := quant.ParseType("Q3_K_M"); err == nil {
		t.Error("ParseType accepted the mix name Q3_K_M")
	}
}

func TestFP16KnownAnswers(t *testing.T) {
	tests := []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3C00},
		{-2, 0xC000},
		{65504, 0x7BFF},
		{65519.996, 0x7BFF}, // below the midpoint to infinity
		{65520, 0x7C00},     // the midpoint rounds (to even) to infinity
		{1e10, 0x7C00},
		{float32(math.Inf(-1)), 0xFC00},
		{0x1p-24, 0x0001},     // smallest subnormal
		{0x1p-25, 0x0000},     // tie between 0 and 2^-24 goes to even (0)
		{0x1.8p-24, 0x0002},   // tie between 1 and 2 subnormal ulps goes to 2
		{1 + 0x1p-11, 0x3C00}, // tie: even mantissa stays
		{1 + 0x3p-11, 0x3C02}, // tie: odd mantissa rounds up
		{float32(math.NaN()), 0x7E00},
		{math.Float32frombits(0xFF812345), 0xFE00}, // NaN payload dropped, sign kept
	}
	row := make([]byte, 2)
	for _, tt := range tests {
		if got := quant.FP32ToFP16(tt.f); got != tt.h {
			t.Errorf("FP32ToFP16(%g) = %#04x, want %#04x", tt.f, got, tt.h)
		}
		if err := quant.ConvertF16(row, []float32{tt.f}); err != nil || binary.LittleEndian.Uint16(row) != tt.h {
			t.Errorf("ConvertF16(%g) = %x, want %#04x", tt.f, row, tt.h)
		}
	}
	// The scalar and the row conversion agree on a sweep of float32 bit
	// patterns (every 4099th, which covers each exponent and NaN), so a
	// change to either shows up here.
	src := make([]float32, 0, 1<<20)
	for b := uint64(0); b < 1<<32; b += 4099 {
		src = append(src, math.Float32frombits(uint32(b)))
	}
	rowOut := make([]byte, 2*len(src))
	if err := quant.ConvertF16(rowOut, src); err != nil {
		t.Fatal(err)
	}
	for i, f := range src {
		if got, want := binary.LittleEndian.Uint16(rowOut[2*i:]), quant.FP32ToFP16(f); got != want {
			t.Fatalf("ConvertF16(%#08x) = %#04x, FP32ToFP16 says %#04x", math.Float32bits(f), got, want)
		}
	}
	// Every half converts to float32 and back unchanged (NaNs to the
	// canonical quiet NaN).
	for h := range 1 << 16 {
		f := quant.FP16ToFP32(uint16(h))
		want := uint16(h)
		if h&0x7C00 == 0x7C00 && h&0x03FF != 0 {
			want = uint16(h)&0x8000 | 0x7E00
			if !math.IsNaN(float64(f)) {
				t.Fatalf("FP16ToFP32(%#04x) = %g, want NaN", h, f)
			}
		}
		if got := quant.FP32ToFP16(f); got != want {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, got)
		}
	}
}

func TestBF16KnownAnswers(t *testing.T) {
	tests := []struct {
		bits uint32
		h    uint16
	}{
		{0x3F800000, 0x3F80},             // 1
		{0x3F808000, 0x3F80},             // tie, even stays
		{0x3F818000, 0x3F82},             // tie, odd rounds up
		{0x3F808001, 0x3F81},             // above the tie
		{0x7F7FFFFF, 0x7F80},             // max float rounds to infinity
		{0x00000001, 0x0000},             // subnormal kept (rounded)
		{0x00018000, 0x0002},             // subnormal tie to even
		{0x7FC00000, 0x7FC0},             // quiet NaN
		{0x7F800001, 0x7FC0},             // signalling NaN forced quiet
		{0xFF812345, 0xFFC1},             // negative NaN keeps sign and top payload
		{0xFF800000, 0xFF80},             // -Inf
		{math.Float32bits(-1.5), 0xBFC0}, // -1.5
	}
	for _, tt := range tests {
		if got := quant.FP32ToBF16(math.Float32frombits(tt.bits)); got != tt.h {
			t.Errorf("FP32ToBF16(%#08x) = %#04x, want %#04x", tt.bits, got, tt.h)
		}
	}
	if quant.BF16ToFP32(0x3F80) != 1 {
		t.Error("BF16ToFP32(0x3F80) != 1")
	}
}

// TestRoundTripError checks each quantiser against its dequantiser: the
// error of a weight is bounded by a fraction of its block's largest
// magnitude that depends on the bit width.
func TestRoundTripError(t *testing.T) {
	bounds := map[quant.Type]float64{
		quant.F32: 0, quant.F16: 1e-3, quant.BF16: 8e-3,
		quant.Q8_0: 1.0 / 127, quant.Q6_K: 1.0 / 20, quant.Q5_0: 1.0 / 15, quant.Q5_1: 1.0 / 15,
		quant.Q5_K: 1.0 / 12, quant.Q4_0: 1.0 / 7, quant.Q4_1: 1.0 / 7, quant.Q4_K: 1.0 / 6,
		quant.Q3_K: 1.0 / 4, quant.Q2_K: 1.0 / 2,
		quant.IQ4_NL: 1.0 / 9, quant.IQ4_XS: 1.0 / 9,
		// The lattice types trade single weights for the block's weighted
		// error (x^2 weighting lets small weights go far off).
		quant.IQ3_S: 0.4, quant.IQ3_XXS: 0.45, quant.IQ2_XS: 0.55, quant.IQ2_XXS: 0.6, quant.IQ2_S: 0.55,
	}
	src := irwinHall(1, 256*64, 0.05)
	for _, typ := range quant.Types() {
		q := make([]byte, quant.RowSize(typ, len(src)))
		if err := quantizeAny(typ, q, src, 256, 1); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		back := make([]float32, len(src))
		if err := quant.Dequantize(typ, back, q); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		for b := 0; b < len(src); b += 256 {
			var amax float64
			for _, v := range src[b : b+256] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for i := b; i < b+256; i++ {
				if e := math.Abs(float64(back[i] - src[i])); e > bounds[typ]*amax*1.01 {
					t.Fatalf("%v: weight %d: %g came back as %g (error %.3g of the block max %.3g)", typ, i, src[i], back[i], e/amax, amax)
				}
			}
		}
	}
}

func TestBadSizes(t *testing.T) {
	for _, typ := range quant.Types() {
		n := typ.BlockSize() * 2
		if typ.BlockSize() > 1 {
			if err := quant.Quantize(typ, make([]byte, quant.RowSize(typ, n)), make([]float32, n+1)); err == nil {
				t.Errorf("%v: a length off the block size was accepted", typ)
			}
			if err := quant.Dequantize(typ, make([]float32, n-1), make([]byte, quant.RowSize(typ, n))); err == nil {
				t.Errorf("%v: dequantising into a short buffer was accepted", typ)
			}
		}
		if err := quant.Quantize(typ, make([]byte, quant.RowSize(typ, n)-1), make([]float32, n)); err == nil {
			t.Errorf("%v: a short destination was accepted", typ)
		}
		if err := quant.Dequantize(typ, make([]float32, n), make([]byte, quant.RowSize(typ, n)+1)); err == nil {
			t.Errorf("%v: a long source was accepted", typ)
		}
	}
	if err := quant.Quantize(quant.Type(99), nil, nil); err == nil {
		t.Error("unknown type accepted")
	}
	if err := quant.QuantizeRows(quant.Q4_K, make([]byte, 144), make([]float32, 256), 0, 2); err == nil {
		t.Error("QuantizeRows accepted a row length of 0")
	}
	if err := quant.QuantizeRows(quant.Q4_K, make([]byte, 144), make([]float32, 256), 100, 2); err == nil {
		t.Error("QuantizeRows accepted a row length off the block size")
	}
	if err := quant.QuantizeRows(quant.Q8_0, make([]byte, 34*3), make([]float32, 64*2), 64, 2); err == nil {
		t.Error("QuantizeRows accepted a destination of the wrong size")
	}
}

// TestQuantizeRowsWorkers checks that the split over goroutines changes
// no byte and that a row's quantisation allocates nothing.
func TestQuantizeRowsWorkers(t *testing.T) {
	const rowLen = 512
	src := irwinHall(3, rowLen*100, 1)
	for _, typ := range quant.Types() {
		want := make([]byte, quant.RowSize(typ, len(src)))
		if err := quantizeAny(typ, want, src, rowLen, 1); err != nil {
			t.Fatal(err)
		}
		for _, w := range []int{0, 1, 2, 3, 7, 64} {
			got := make([]byte, len(want))
			if err := quantizeAny(typ, got, src, rowLen, w); err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%v with %d workers differs from the serial result", typ, w)
			}
		}
		row := src[:rowLen]
		dst := make([]byte, quant.RowSize(typ, rowLen))
		var w []float32
		if quant.RequiresImatrix(typ) {
			w = unitWeights(rowLen)
		}
		if n := testing.AllocsPerRun(10, func() { _ = quant.QuantizeRowsWeighted(typ, dst, row, rowLen, w, 1) }); n != 0 {
			t.Errorf("%v: %v allocations per row", typ, n)
		}
	}
}

var update = flag.Bool("update", false, "print new golden digests for TestGolden")

// golden pins the output for a platform-independent input, checked against
// libggml when it was recorded (and by TestMatchesLibggml and
// TestIQuantsMatchLibggml), so that a change shows up even where the
// library is not installed.
var golden = map[quant.Type]string{
	quant.F32:  "0ac8373231cf6414865472349969019a9413078a54deed4cfdac5777d4bbabf5",
	quant.F16:  "ffc503c8ab70959a2cab33f26c049b531bbe879603ae8806303ab6fe3f979831",
	quant.Q4_0: "c96f87af2f647b7f9ce4db6d44abae586712ff4eb360c1023f2c60f63d15b8ee",
	quant.Q4_1: "5a2f9503b6fbe6f0e30c5e0d8aef190f12db9f83cc01ecc4764baa27eaf3ffc6",
	quant.Q5_0: "8a4118a83cb2703362fd3c110987245bfe4e4a273996a9bb704a133cbecfb6cf",
	quant.Q5_1: "c3ddd9d9f6869df0df480f7f41aee0b6cce576086981ea7e6dd7cf43a8cbdd81",
	quant.Q8_0: "b6964af89cf66359e447156d9a60e537f830d5b80057ec4b74e552689f2f5f02",
	quant.Q4_K: "4be27d73b3d75ccc6514f6fcc252fc0752a7d45c9c327c11e0b65d796406c1d1",
	quant.Q5_K: "7932dfb598887d6e2ed44814eed9007302e8a503e78f33efdf9de600dbf5806b",
	quant.Q2_K: "50cf734eec370ab2aa2ec7c8ff193d02cbec082e38d4d9b87ca632121071f297",
	quant.Q3_K: "2234364a2b21c233a6143ffc9233219b5dc61cac1af27630878faf1db20c785b",
	quant.Q6_K: "2b1e3d23a465a005a349117f87352060aabfdc4810f2ed321bb789d14f8217c0",
	quant.BF16: "426150811cf4d09e26eea062e2ab7a981e5bc51515ab98085fe7778ef7b7394e",

	quant.IQ3_XXS: "80ed0ca5f450b752851ea7a1168894fe4cfb7edeaf489a99097e3198f6891841",
	quant.IQ3_S:   "9f08dce96b8799651b9ff9b9d40959717303a29051f138b891131aa791784126",
	quant.IQ2_S:   "3b45a4ef16b83fc79b2787273c4797759afbf4bb1dfbd17020a1a97dd371fe67",
	quant.IQ4_NL:  "5b41460042f1e31d038c67aaef7879d76067b457406633f401b9fcc77e81aa37",
	quant.IQ4_XS:  "d0bfb0dc1cd52c46f9583023bda947288fe1277bb0899a6d7d9be32407aa8a13",
}

// goldenInput is TestGolden's input; TestMatchesLibggml checks it too.
func goldenInput() []float32 {
	src := irwinHall(42, 256*256, 0.03)
	for i := 0; i < len(src); i += 997 {
		src[i] *= 40 // outliers
	}
	for i := 1024; i < 2048; i++ {
		src[i] = 0 // a zero row
	}
	return src
}

func TestGolden(t *testing.T) {
	src := goldenInput()
	for _, typ := range quant.Types() {
		if quant.RequiresImatrix(typ) {
			continue // TestGoldenWeighted's
		}
		q := make([]byte, quant.RowSize(typ, len(src)))
		if err := quant.QuantizeRows(typ, q, src, 1024, 2); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(q)
		got := hex.EncodeToString(sum[:])
		if *update {
			t.Logf("quant.%v: %q,", typ, got)
			continue
		}
		if want, ok := golden[typ]; !ok || got != want {
			t.Errorf("%v: sha256 %s, want %s", typ, got, want)
		}
	}
}

// quantizeAny quantises rows of rowLen with QuantizeRows, or, for the
// types ggml only quantises with an imatrix, with the weights of
// unitWeights.
func quantizeAny(typ quant.Type, dst []byte, src []float32, rowLen, workers int) error {
	if quant.RequiresImatrix(typ) {
		return quant.QuantizeRowsWeighted(typ, dst, src, rowLen, unitWeights(rowLen), workers)
	}
	return quant.QuantizeRows(typ, dst, src, rowLen, workers)
}

// unitWeights returns deterministic importance weights around 1.
func unitWeights(n int) []float32 {
	w := irwinHall(99, n, 0.5)
	for i := range w {
		w[i] = 1 + w[i]
	}
	return w
}

// irwinHall returns n roughly Gaussian values (the sum of four uniforms)
// from a splitmix64 stream: integer arithmetic and exact float64 steps, so
// every platform and Go version gets the same input.
func irwinHall(seed uint64, n int, scale float64) []float32 {
	state := seed
	next := func() float64 {
		state += 0x9E3779B97F4A7C15
		z := state
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		z ^= z >> 31
		return float64(z>>11) * 0x1p-53
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((next() + next() + next() + next() - 2) * scale)
	}
	return out
}

// ExampleQuantizeRows quantises a 2x256 matrix to Q4_K on two goroutines.
func ExampleQuantizeRows() {
	src := make([]float32, 2*256)
	for i := range src {
		src[i] = float32(math.Sin(float64(i))) * 0.02
	}
	dst := make([]byte, quant.RowSize(quant.Q4_K, len(src)))
	if err := quant.QuantizeRows(quant.Q4_K, dst, src, 256, 2); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(dst), "bytes")
	// Output: 288 bytes
}

// goldenWeighted pins QuantizeRowsWeighted's output for goldenInput and
// goldenWeights, checked against libggml when recorded (see golden).
var goldenWeighted = map[quant.Type]string{
	quant.F32:  "0ac8373231cf6414865472349969019a9413078a54deed4cfdac5777d4bbabf5",
	quant.F16:  "ffc503c8ab70959a2cab33f26c049b531bbe879603ae8806303ab6fe3f979831",
	quant.Q4_0: "8e1fcb0fb25da6f236b91803717c8f1f6fb7feca437de055dd97703626c905da",
	quant.Q4_1: "43db3ffbd93c3d71d2639850b0f544de88ce4fdccf0e1e7faa699951e3083dc8",
	quant.Q5_0: "3ad7c39fd3c9f7a5fe754afbb6d21bea12810dcd35d3de327300df245b71f832",
	quant.Q5_1: "ea6c4b78aad613739f914c6f065c32ca680d478e104d40209357c44a28a22027",
	quant.Q8_0: "b6964af89cf66359e447156d9a60e537f830d5b80057ec4b74e552689f2f5f02",
	quant.Q2_K: "f3a6e0a38fe0539ee74982f31b85cc8309b4a700646e26c7ce2ca7a8ce987f49",
	quant.Q3_K: "f7ea3083364b0d51ccc9719b983a638260762ab3f31c269b5bcd74754ae4b6e7",
	quant.Q4_K: "bf10aea06b8f9ddde37a964006f9ebc5562f40099621e2810dd5a5b3af3369e8",
	quant.Q5_K: "c35aecbf3c397c4f4dd194ce3024ad59d0a4ae4687ebf420f658903b7c84d027",
	quant.Q6_K: "fc5fbea78e0191e340ff0cc562c5371c5b3d5ce6f4ec85dc138c2ff7a89ca517",
	quant.BF16: "426150811cf4d09e26eea062e2ab7a981e5bc51515ab98085fe7778ef7b7394e",

	quant.IQ2_XXS: "71c2e5b3d1bb3f93a974d677de7a4f352e3f56d92fa6fc8e3f015360d03bcfda",
	quant.IQ2_XS:  "c5f6688e79f7928d159f30ec8a9875bc1a11c61bcba0c6295a0081d39a8b9fd1",
	quant.IQ3_XXS: "e59cbad95eff978c78cc06aabe79d017f4085e4d562f455519be72e1fd199c87",
	quant.IQ4_NL:  "bba7e6fa16b1f3b6a775c894455d843cd4953c6164bf42f89e99dbefcb7abebf",
	quant.IQ3_S:   "68a276b20348118e29b919f03b9e16cb9f3cfecb07107098641b9ef58ab4f440",
	quant.IQ2_S:   "d0b38f1619750a8150ed3dc05fd8c7c90cef9a880b890f46e6f9f084cbe67a4c",
	quant.IQ4_XS:  "047e1ae6bd45f27da967bb891f7111016b1199865eed496c5df15c738a42ec65",
}

// goldenWeights is a deterministic importance matrix for rows of 1024,
// with a few zero columns.
func goldenWeights() []float32 {
	w := irwinHall(7, 1024, 1)
	for i, v := range w {
		w[i] = v * v
		if i%97 == 5 {
			w[i] = 0
		}
	}
	return w
}

func TestGoldenWeighted(t *testing.T) {
	src, w := goldenInput(), goldenWeights()
	for _, typ := range quant.Types() {
		q := make([]byte, quant.RowSize(typ, len(src)))
		if err := quant.QuantizeRowsWeighted(typ, q, src, 1024, w, 2); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(q)
		got := hex.EncodeToString(sum[:])
		if *update {
			t.Logf("quant.%v: %q,", typ, got)
			continue
		}
		if want, ok := goldenWeighted[typ]; !ok || got != want {
			t.Errorf("%v: sha256 %s, want %s", typ, got, want)
		}
	}
}

// TestQuantizeRowsWeighted checks the weighted path's contract: nil
// weights are QuantizeRows, types without weights in ggml ignore them, the
// split over goroutines changes no byte, the weights change the output of
// the types that use them, and a row allocates nothing.
func TestQuantizeRowsWeighted(t *testing.T) {
	const rowLen = 512
	src := irwinHall(3, rowLen*100, 1)
	w := irwinHall(5, rowLen, 1)
	for i, v := range w {
		w[i] = v * v
	}
	for _, typ := range quant.Types() {
		plain := make([]byte, quant.RowSize(typ, len(src)))
		got := make([]byte, len(plain))
		want := make([]byte, len(plain))
		if err := quant.QuantizeRowsWeighted(typ, want, src, rowLen, w, 1); err != nil {
			t.Fatal(err)
		}
		if quant.RequiresImatrix(typ) {
			// No unweighted output to compare with (TestIQuantsNeedImatrix).
		} else {
			if err := quant.QuantizeRows(typ, plain, src, rowLen, 1); err != nil {
				t.Fatal(err)
			}
			if err := quant.QuantizeRowsWeighted(typ, got, src, rowLen, nil, 2); err != nil || string(got) != string(plain) {
				t.Errorf("%v: nil weights differ from QuantizeRows (%v)", typ, err)
			}
			ignores := typ == quant.F32 || typ == quant.F16 || typ == quant.BF16 || typ == quant.Q8_0
			if ignores != (string(want) == string(plain)) {
				t.Errorf("%v: weighted output equal to the unweighted one: %v, want %v", typ, !ignores, ignores)
			}
		}
		for _, workers := range []int{0, 2, 3, 64} {
			if err := quant.QuantizeRowsWeighted(typ, got, src, rowLen, w, workers); err != nil || string(got) != string(want) {
				t.Errorf("%v with %d workers differs from the serial result (%v)", typ, workers, err)
			}
		}
		row, dst := src[:rowLen], make([]byte, quant.RowSize(typ, rowLen))
		if n := testing.AllocsPerRun(10, func() { _ = quant.QuantizeRowsWeighted(typ, dst, row, rowLen, w, 1) }); n != 0 {
			t.Errorf("%v: %v allocations per row", typ, n)
		}
	}
	dst := make([]byte, quant.RowSize(quant.Q4_K, len(src)))
	err := quant.QuantizeRowsWeighted(quant.Q4_K, dst, src, rowLen, w[:256], 2)
	if err == nil || !strings.Contains(err.Error(), "256 importance weights for rows of 512 values") {
		t.Errorf("weights of the wrong length: %v", err)
	}
	err = quant.QuantizeRowsWeighted(quant.Type(99), dst, src, rowLen, w, 2)
	if err == nil || !strings.Contains(err.Error(), "no importance-weighted quantiser") {
		t.Errorf("unknown type: %v", err)
	}
	err = quant.QuantizeRowsWeighted(quant.Q4_K, dst[:1], src, rowLen, w, 2)
	if err == nil || !strings.Contains(err.Error(), "need") {
		t.Errorf("short destination: %v", err)
	}
}
