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
var iqTypes = []quant.Type{quant.IQ4_NL, quant.IQ4_XS, quant.IQ3_S, quant.IQ3_XXS, quant.IQ2_XXS, quant.IQ2_XS, quant.IQ2_S}

// weightSet is one imatrix entry for rows of a given length.
type weightSet struct {
	name string
	w    []float32 // nil: no imatrix
}

// iqWeightSets returns the importance weights the i-quants are checked with:
// none (where allowed), positive weights spread over four orders of
// magnitude like an imatrix's mean squared activations, the same with a
// third of them zero (channels no calibration token reached), and all
// zero.
func iqWeightSets(typ quant.Type, rowLen int) []weightSet {
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
	if !quant.RequiresImatrix(typ) {
		sets = append([]weightSet{{"none", nil}}, sets...)
	}
	return sets
}

// rowGroup is testRows' families of one row length, concatenated so that
// one job covers them all.
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

// overflowRows are finite values whose squares overflow float32 (testRows'
// huge and bits families) and rows holding Inf and NaN (specialRows), as
// one family of rows of 256.
func overflowRows() rowFamily {
	f := specialRows()
	f.name = "overflow"
	for _, g := range testRows() {
		if g.name == "huge" || g.name == "bits" {
			f.data = append(f.data, g.data[:8*g.rowLen]...)
		}
	}
	return f
}

// TestIQuantsMatchLibggml compares every i-quant with ggml_quantize_chunk
// byte for byte on every row family of testRows, with each weight set
// (through QuantizeRowsWeighted on two workers), and the dequantiser with
// libggml's to_float on the reference's own bytes.
//
// One libggml process per type runs all of it, because building the
// lattice types' grids takes libggml up to seconds. The overflow rows come
// last, one job per weight set: where libggml produces output the bytes
// must match; where it aborts (the lattice types, left with a group that
// has no nearest grid point) QuantizeRowsWeighted must fail, and the
// process ends there.
func TestIQuantsMatchLibggml(t *testing.T) {
	ref := ggmlRef(t)
	// The lattice quantisers are slow (in libggml too), so every family is
	// cut to 16 rows; the golden rows stay whole with the first weight set,
	// which is TestGolden's.
	var first, rest []rowFamily
	for _, f := range testRows() {
		if f.name == "huge" || f.name == "bits" {
			continue // overflowRows
		}
		if f.name != "golden" {
			f.data = f.data[:min(len(f.data), 16*f.rowLen)]
			rest = append(rest, f)
		}
		first = append(first, f)
	}
	groupsFirst, groupsRest := groupRows(first), groupRows(rest)
	overflow := groupRows([]rowFamily{overflowRows()})[0]
	for _, typ := range iqTypes {
		t.Run(typ.String(), func(t *testing.T) {
			type run struct {
				g  rowGroup
				ws weightSet
			}
			var runs []run
			for k := range iqWeightSets(typ, 1) {
				groups := groupsRest
				if k == 0 {
					groups = groupsFirst
				}
				for _, g := range groups {
					runs = append(runs, run{g, iqWeightSets(typ, g.rowLen)[k]})
				}
			}
			// TestGoldenWeighted's input and weights.
			gold := groupRows([]rowFamily{{"golden", 1024, goldenInput()}})[0]
			runs = append(runs, run{gold, weightSet{"goldenWeights", goldenWeights()}})
			ordinary := len(runs)
			for _, ws := range iqWeightSets(typ, overflow.rowLen) {
				runs = append(runs, run{overflow, ws})
			}
			jobs := make([]refJob, len(runs))
			for i, r := range runs {
				jobs[i] = refJob{r.g.data, r.g.rowLen, r.ws.w, i < ordinary}
			}
			res, refErr := ref.batch(typ, jobs)
			if len(res) < ordinary {
				t.Fatal(refErr)
			}
			for i, r := range runs[:min(len(runs), len(res)+1)] {
				t.Run(fmt.Sprintf("rows%d/%s", r.g.rowLen, r.ws.name), func(t *testing.T) {
					got := make([]byte, quant.RowSize(typ, len(r.g.data)))
					err := quant.QuantizeRowsWeighted(typ, got, r.g.data, r.g.rowLen, r.ws.w, 2)
					switch {
					case i == len(res) && err == nil:
						t.Fatalf("libggml aborts (%v) but QuantizeRowsWeighted succeeds", refErr)
					case i == len(res):
						t.Logf("libggml aborts and QuantizeRowsWeighted fails: %v", err)
						return
					case err != nil:
						t.Fatal(err)
					}
					for k, f := range r.g.fams {
						b0 := quant.RowSize(typ, r.g.offs[k])
						b1 := b0 + quant.RowSize(typ, len(f.data))
						if !bytes.Equal(got[b0:b1], res[i].q[b0:b1]) {
							t.Errorf("family %s:", f.name)
							reportDiff(t, typ, f, got[b0:b1], res[i].q[b0:b1])
						}
					}
					if jobs[i].dequantize {
						checkDequantize(t, typ, res[i])
					}
				})
			}
		})
	}
}

// checkDequantize compares Dequantize with libggml's to_float on the
// reference's bytes.
func checkDequantize(t *testing.T, typ quant.Type, r refResult) {
	t.Helper()
	got := make([]float32, len(r.f))
	if err := quant.Dequantize(typ, got, r.q); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		w := r.f[i]
		if math.Float32bits(v) != math.Float32bits(w) && !(v != v && w != w) {
			t.Fatalf("dequantised value %d: %g, libggml's to_float gives %g", i, v, w)
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
