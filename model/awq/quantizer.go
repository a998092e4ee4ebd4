package awq

import (
	"fmt"
	"math"

	"github.com/cogumi/cogumi/model/quant"
)

// Targets are the weight formats the search can optimise for.
const (
	TargetQ4_0 = "Q4_0" // ggml Q4_0: symmetric blocks of 32, one F16 scale
	TargetQ4_K = "Q4_K" // ggml Q4_K: super-blocks of 256, 8 sub-blocks with 6-bit scales and mins
	TargetG128 = "g128" // AutoAWQ's format: asymmetric 4-bit min-max groups of 128 with a zero point
)

// Targets lists the accepted target names.
func Targets() []string { return []string{TargetQ4_0, TargetQ4_K, TargetG128} }

// quantizer fake-quantises rows: it replaces weights by what the stored
// format gives back (quantise, then dequantise), so that the search
// measures the error of what will really be stored. Implementations keep
// no state and are safe for concurrent use; scratch is the caller's.
type quantizer interface {
	name() string
	// block is the number of consecutive weights of a row that share
	// quantisation parameters; a row's length must be a multiple of it.
	block() int
	// group is the group size used for the weight statistics of duo
	// scaling (AutoAWQ normalises |w| by its group's maximum).
	group() int
	// roundTrip writes Q^-1(Q(src)) into dst, using scratch for the packed
	// bytes (at most scratchSize(len(src)) bytes).
	roundTrip(dst, src []float32, scratch []byte) error
	scratchSize(n int) int
}

func newQuantizer(target string) (quantizer, error) {
	switch target {
	case TargetQ4_0:
		return ggmlQuantizer{t: quant.Q4_0, q: quant.QuantizeQ4_0, dq: quant.DequantizeQ4_0, g: 32}, nil
	case TargetQ4_K:
		// Statistics per 32-weight sub-block: that is where Q4_K's scales live.
		return ggmlQuantizer{t: quant.Q4_K, q: quant.QuantizeQ4_K, dq: quant.DequantizeQ4_K, g: 32}, nil
	case TargetG128:
		return g128{}, nil
	}
	return nil, fmt.Errorf("awq: target %q is not supported; use one of %s, %s, %s", target, TargetQ4_0, TargetQ4_K, TargetG128)
}

// ggmlQuantizer runs the repository's byte-identical ports of ggml's
// reference quantisers, so the search sees exactly the blocks that the gguf
// rule (and llama-quantize) will write.
type ggmlQuantizer struct {
	t  quant.Type
	q  func([]byte, []float32) error
	dq func([]float32, []byte) error
	g  int
}

func (g ggmlQuantizer) name() string          { return g.t.String() }
func (g ggmlQuantizer) block() int            { return g.t.BlockSize() }
func (g ggmlQuantizer) group() int            { return g.g }
func (g ggmlQuantizer) scratchSize(n int) int { return quant.RowSize(g.t, n) }

func (g ggmlQuantizer) roundTrip(dst, src []float32, scratch []byte) error {
	b := scratch[:quant.RowSize(g.t, len(src))]
	if err := g.q(b, src); err != nil {
		return err
	}
	return g.dq(dst, b)
}

// g128 is AutoAWQ's pseudo_quantize_tensor for w_bit = 4, q_group_size =
// 128, zero_point = True: per group, scale = max(max-min, 1e-5)/15, zero =
// clamp(-round(min/scale), 0, 15), w = (clamp(round(w/scale)+zero, 0, 15) -
// zero) * scale, with torch's round-half-to-even.
type g128 struct{}

func (g128) name() string        { return TargetG128 }
func (g128) block() int          { return 128 }
func (g128) group() int          { return 128 }
func (g128) scratchSize(int) int { return 0 }

func (g128) roundTrip(dst, src []float32, _ []byte) error {
	if len(src)%128 != 0 || len(dst) != len(src) {
		return fmt.Errorf("awq: g128 needs rows of a multiple of 128 weights, got %d", len(src))
	}
	for off := 0; off < len(src); off += 128 {
		x, y := src[off:off+128], dst[off:off+128]
		lo, hi := x[0], x[0]
		for _, v := range x[1:] {
			lo, hi = min(lo, v), max(hi, v)
		}
		scale := max(hi-lo, 1e-5) / 15
		zero := min(max(-float32(math.RoundToEven(float64(lo/scale))), 0), 15)
		for i, v := range x {
			q := min(max(float32(math.RoundToEven(float64(v/scale)))+zero, 0), 15)
			y[i] = (q - zero) * scale
		}
	}
	return nil
}
