package quant_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/quant"
)

// iqTypes are the i-quants, compared with libggml with importance weights
// and, where ggml allows it, without.
var iqTypes = []quant.Type{quant.IQ4_NL, quant.IQ4_XS}

// weightSet is one imatrix entry for rows of a given length.
type weightSet struct {
	name string
	w    []float32 // nil: no imatrix
}

// weightSets returns the importance weights the i-quants are checked with:
// none (where allowed), positive weights spread over four orders of
// magnitude like an imatrix's mean squared activations, the same with a
// third of them zero (channels no calibration token reached), and all
// zero (and TestGolden's for the types that need weights).
func weightSets(typ quant.Type, rowLen int) []weightSet {
	rng := rand.New(rand.NewPCG(18, uint64(rowLen)))
	spread := make([]float32, rowLen)
	zeros := make([]float32, rowLen)
	for i := range spread {
		spread[i] = float32(math.Pow(10, 4*rng.Float64()-2))
		zeros[i] = float32(rng.Float64() * 3)
		if rng.IntN(3) == 0 {
			zeros[i] = 0
		}
	}
	sets := []weightSet{{"spread", spread}, {"zeros", zeros}, {"allzero", make([]float32, rowLen)}}
	if quant.RequiresImatrix(typ) {
		// TestGolden's weights, so that its digests are checked here.
		sets = append([]weightSet{{"unit", unitWeights(rowLen)}}, sets...)
	} else {
		sets = append([]weightSet{{"none", nil}}, sets...)
	}
	return sets
}

// rowGroup is testRows' families of one row length, concatenated so that
// one libggml run covers them all (the lattice types' grids take libggml
// a while to build in each process).
type rowGroup struct {
	rowLen int
	data   []float32
	fams   []rowFamily
	offs   []int // start of each family in data
}

func groupRows(fams []rowFamily) []rowGroup {
	var groups []rowGroup
	for _, f := range fams {
		i := 0
		for i < len(groups) && groups[i].rowLen != f.rowLen {
			i++
		}
		if i == len(groups) {
			groups = append(groups, rowGroup{rowLen: f.rowLen})
		}
		g := &groups[i]
		g.offs = append(g.offs, len(g.data))
		g.fams = append(g.fams, f)
		g.data = append(g.data, f.data...)
	}
	return groups
}

// TestIQuantsMatchLibggml compares every i-quant with ggml_quantize_chunk
// byte for byte on every row family of testRows, with each weight set
// (through QuantizeRowsWeighted on two workers), and the dequantiser with
// libggml's to_float on the reference's own bytes.
func TestIQuantsMatchLibggml(t *testing.T) {
	ref := ggmlRef(t)
	for _, g := range groupRows(testRows()) {
		for _, typ := range iqTypes {
			for _, ws := range weightSets(typ, g.rowLen) {
				t.Run(fmt.Sprintf("%s/rows%d/%s", typ, g.rowLen, ws.name), func(t *testing.T) {
					want, err := ref.quantizeWeighted(typ, g.data, g.rowLen, ws.w)
					if err != nil {
						t.Fatal(err)
					}
					got := make([]byte, quant.RowSize(typ, len(g.data)))
					if err := quant.QuantizeRowsWeighted(typ, got, g.data, g.rowLen, ws.w, 2); err != nil {
						t.Fatal(err)
					}
					for i, f := range g.fams {
						b0 := quant.RowSize(typ, g.offs[i])
						b1 := b0 + quant.RowSize(typ, len(f.data))
						if !bytes.Equal(got[b0:b1], want[b0:b1]) {
							t.Errorf("family %s:", f.name)
							reportDiff(t, typ, f, got[b0:b1], want[b0:b1])
						}
					}
					wantF, err := ref.dequantize(typ, want, g.rowLen)
					if err != nil {
						t.Fatal(err)
					}
					gotF := make([]float32, len(g.data))
					if err := quant.Dequantize(typ, gotF, want); err != nil {
						t.Fatal(err)
					}
					for i := range gotF {
						if math.Float32bits(gotF[i]) != math.Float32bits(wantF[i]) && !(gotF[i] != gotF[i] && wantF[i] != wantF[i]) {
							t.Fatalf("dequantised value %d: %g, libggml's to_float gives %g", i, gotF[i], wantF[i])
						}
					}
				})
			}
		}
	}
}

// TestIQuantsSpecialValues runs the i-quants on rows holding Inf and NaN.
// Where libggml produces output the bytes must match; where it aborts (a
// lattice group with no nearest grid point) Quantize must return an error.
func TestIQuantsSpecialValues(t *testing.T) {
	ref := ggmlRef(t)
	fam := specialRows()
	for _, typ := range iqTypes {
		for _, ws := range weightSets(typ, fam.rowLen)[:2] {
			t.Run(typ.String()+"/"+ws.name, func(t *testing.T) {
				want, refErr := ref.quantizeWeighted(typ, fam.data, fam.rowLen, ws.w)
				got := make([]byte, quant.RowSize(typ, len(fam.data)))
				err := quant.QuantizeRowsWeighted(typ, got, fam.data, fam.rowLen, ws.w, 1)
				switch {
				case refErr != nil && err == nil:
					t.Fatalf("libggml failed (%v) but Quantize succeeded", refErr)
				case refErr == nil && err != nil:
					t.Fatalf("libggml succeeded but Quantize failed: %v", err)
				case refErr == nil && !bytes.Equal(got, want):
					reportDiff(t, typ, fam, got, want)
				}
			})
		}
	}
}

// TestIQuantsNeedImatrix checks that the types ggml refuses without an
// importance matrix are refused here too, with a message that says so.
func TestIQuantsNeedImatrix(t *testing.T) {
	for _, typ := range quant.Types() {
		if !quant.RequiresImatrix(typ) {
			continue
		}
		src := irwinHall(5, 2*256, 1)
		dst := make([]byte, quant.RowSize(typ, len(src)))
		for name, err := range map[string]error{
			"Quantize":     quant.Quantize(typ, dst, src),
			"QuantizeRows": quant.QuantizeRows(typ, dst, src, 256, 2),
		} {
			if err == nil || !strings.Contains(err.Error(), "importance matrix") {
				t.Errorf("%s(%v) without weights: %v, want an error naming the importance matrix", name, typ, err)
			}
		}
		if err := quant.QuantizeRowsWeighted(typ, dst, src, 256, make([]float32, 256), 2); err != nil {
			t.Errorf("%v with weights: %v", typ, err)
		}
	}
	if err := quant.QuantizeRowsWeighted(quant.IQ4_XS, make([]byte, 136), make([]float32, 256), 256, make([]float32, 255), 1); err == nil {
		t.Error("QuantizeRowsWeighted accepted 255 weights for rows of 256")
	}
}
