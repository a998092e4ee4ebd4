package quant_test

import (
	"math"
	"math/rand/v2"

	"github.com/cogumi/cogumi/model/quant"
)

// rowFamily is a batch of rows sharing one kind of distribution.
type rowFamily struct {
	name   string
	rowLen int
	data   []float32
}

// testRows returns deterministic rows covering what quantisers meet in
// checkpoints (Gaussian weights, pruned rows, F16/BF16-rounded values) and
// the corners of the references (all-equal, all-zero, huge, tiny and
// subnormal values, outliers, rounding ties, arbitrary bit patterns).
func testRows() []rowFamily {
	rng := rand.New(rand.NewPCG(4, 2026))
	const rowLen, rows = 512, 64
	gen := func(name string, f func(row, i int) float32) rowFamily {
		d := make([]float32, rowLen*rows)
		for r := range rows {
			for i := range rowLen {
				d[r*rowLen+i] = f(r, i)
			}
		}
		return rowFamily{name, rowLen, d}
	}
	gauss := func(s float64) float32 { return float32(rng.NormFloat64() * s) }
	fams := []rowFamily{
		gen("gauss1", func(_, _ int) float32 { return gauss(1) }),
		gen("gauss0.02", func(_, _ int) float32 { return gauss(0.02) }),
		gen("uniform", func(_, _ int) float32 { return float32(rng.Float64()*2 - 1) }),
		gen("positive", func(_, _ int) float32 { return float32(rng.Float64()) }),
		gen("negative", func(_, _ int) float32 { return -float32(rng.Float64()) * 3 }),
		gen("pruned65", func(_, _ int) float32 {
			if rng.Float64() < 0.65 {
				return 0
			}
			return gauss(0.05)
		}),
		gen("pruned2of4", func(_, i int) float32 {
			if i%4 < 2 {
				return 0
			}
			return gauss(0.05)
		}),
		gen("zeros", func(r, i int) float32 {
			// Row r has its first r*8 values zero: whole zero rows, zero
			// blocks and zero sub-blocks next to live ones.
			if i < r*8 || r == 0 {
				return 0
			}
			return gauss(1)
		}),
		gen("equal", func(r, _ int) float32 { return float32(r-32) * 0.37 }),
		gen("huge", func(_, _ int) float32 { return gauss(1e30) }),
		gen("hugeF16", func(_, _ int) float32 { return gauss(3e4) }),
		gen("tiny", func(_, _ int) float32 { return gauss(1e-30) }),
		gen("subnormal", func(_, _ int) float32 { return gauss(1e-40) }),
		gen("f16range", func(_, _ int) float32 { return gauss(1e-6) }),
		gen("outlier", func(r, i int) float32 {
			if i == (r*37)%rowLen {
				return float32(100 * (1 - 2*float64(r%2)))
			}
			return gauss(0.01)
		}),
		gen("ties", func(_, _ int) float32 {
			// Small integers and halves land exactly on rounding ties.
			return float32(rng.IntN(33)-16) * 0.5
		}),
		gen("fromF16", func(_, _ int) float32 { return quant.FP16ToFP32(quant.FP32ToFP16(gauss(0.05))) }),
		gen("fromBF16", func(_, _ int) float32 { return quant.BF16ToFP32(quant.FP32ToBF16(gauss(0.05))) }),
		gen("bits", func(_, _ int) float32 {
			// Any finite float32.
			for {
				v := math.Float32frombits(rng.Uint32())
				if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
					return v
				}
			}
		}),
		gen("mixedscale", func(r, i int) float32 {
			// Sub-blocks of very different scales in one super-block.
			return gauss(math.Pow(10, float64((i/32)%8)-4))
		}),
	}
	// Many rows of the commonest case, in the row length of a small model.
	big := make([]float32, 2048*256)
	for i := range big {
		big[i] = gauss(0.02)
	}
	fams = append(fams, rowFamily{"gaussBig", 2048, big}, rowFamily{"golden", 1024, goldenInput()})
	return fams
}

// specialRows holds Inf and NaN, which no checkpoint should contain; the
// references have no special case for them, so their output is whatever the
// float operations give.
func specialRows() rowFamily {
	rng := rand.New(rand.NewPCG(7, 7))
	const rowLen = 256
	specials := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN())}
	d := make([]float32, rowLen*16)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
		if rng.IntN(50) == 0 {
			d[i] = specials[rng.IntN(len(specials))]
		}
	}
	return rowFamily{"special", rowLen, d}
}

// nanRows holds rows with a few NaNs of both signs (and quiet and
// signalling payloads) at random places: where two NaNs meet, the result's
// sign depends on the operand order of the compiled C.
func nanRows() rowFamily {
	rng := rand.New(rand.NewPCG(9, 9))
	const rowLen, rows = 512, 64
	nans := []uint32{0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF812345}
	d := make([]float32, rowLen*rows)
	for r := range rows {
		row := d[r*rowLen : (r+1)*rowLen]
		for i := range row {
			row[i] = float32(rng.NormFloat64() * 0.05)
		}
		for range 1 + rng.IntN(6) {
			row[rng.IntN(rowLen)] = math.Float32frombits(nans[rng.IntN(len(nans))])
		}
	}
	return rowFamily{"nans", rowLen, d}
}
