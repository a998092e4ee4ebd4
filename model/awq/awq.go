// Package awq implements activation-aware weight quantisation (AWQ, Lin et
// al. 2023) as a checkpoint-to-checkpoint transform: for each group of
// linears that read the same input (q/k/v; o; gate/up; down) it searches
// per-input-channel scales s = mean|x|^a (a on a grid in [0, 1]) that
// minimise the group's output error under the quantiser that will really
// store the weights, multiplies the linears' columns by s and folds 1/s
// into what produces their input (an RMSNorm's weight, or the rows of the
// preceding linear), so that the scaled checkpoint computes the same
// function in full precision and loses less when quantised.
//
// Calibration statistics come from a calibrate target (calibration.safetensors).
// The output is a checkpoint with the source's layout and dtype, ready for
// the gguf rule, plus awq_report.json.
package awq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/safetensors"
)

// ReportFile is written next to the scaled checkpoint's config.json.
const ReportFile = "awq_report.json"

// Options say what to optimise for.
type Options struct {
	Target     string // TargetQ4_0, TargetQ4_K or TargetG128
	Bits       int    // must be 4: every target is a 4-bit format
	DuoScaling bool   // scales from activations and weights (AutoAWQ's duo_scaling)
	Grid       int    // ratios i/Grid, i = 0 .. Grid-1 (default 20, as AutoAWQ)
	// SearchStride > 1 scores the ratios on every SearchStride-th block of
	// 16 weight rows only; the chosen scales are then checked on all rows
	// (and dropped for plain RTN if they are not better there). 0 or 1:
	// every row, as AutoAWQ.
	SearchStride int
	Workers      int // default: GOMAXPROCS
	Log          io.Writer
}

// DefaultGrid is AutoAWQ's n_grid.
const DefaultGrid = 20

// MaxSearchStride bounds SearchStride: a group scored on fewer rows than
// that would choose its scales from noise.
const MaxSearchStride = 16

// MaxGrid bounds the search: beyond it the steps are far finer than the
// error differences they could resolve.
const MaxGrid = 1000

// Validate checks the options alone.
func (o Options) Validate() error {
	if o.Bits != 4 {
		return fmt.Errorf("awq: bits = %d is not supported: the targets (%s, %s, %s) are 4-bit formats", o.Bits, TargetQ4_0, TargetQ4_K, TargetG128)
	}
	if _, err := newQuantizer(o.Target); err != nil {
		return err
	}
	if o.Grid < 1 || o.Grid > MaxGrid {
		return fmt.Errorf("awq: grid = %d: want between 1 and %d steps", o.Grid, MaxGrid)
	}
	if o.SearchStride < 0 || o.SearchStride > MaxSearchStride {
		return fmt.Errorf("awq: search_stride = %d: want between 1 and %d", o.SearchStride, MaxSearchStride)
	}
	return nil
}

// Report is awq_report.json.
type Report struct {
	Version      int    `json:"version"`
	Target       string `json:"target"`
	Bits         int    `json:"bits"`
	DuoScaling   bool   `json:"duo_scaling"`
	Grid         int    `json:"grid"`
	SearchStride int    `json:"search_stride,omitempty"` // > 1: exponents scored on every Nth block of rows
	Calibration  string `json:"calibration"`
	// Architecture is the checkpoint's (config.json's architectures[0]).
	Architecture  string        `json:"architecture"`
	Groups        []GroupReport `json:"groups"`
	Totals        Totals        `json:"totals"`
	SearchSeconds float64       `json:"search_seconds"`
}

// GroupReport is the outcome of one group. Errors are the mean squared
// difference between the full-precision outputs and those of the
// quantised, scaled weights, over every calibration row and every output of
// the group's linears.
type GroupReport struct {
	Layer   int      `json:"layer"`
	Group   string   `json:"group"` // "q/k/v", "o", "gate/up", "down"
	Linears []string `json:"linears"`
	// Skipped says why the group was left unscaled; the fields below are
	// then absent. FoldedInto names what absorbed 1/s: an RMSNorm weight,
	// or a linear's rows and, where the linear has one, its bias.
	Skipped    string   `json:"skipped,omitempty"`
	Rows       int      `json:"rows,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"` // the chosen exponent (0: plain RTN was best)
	Scaled     bool     `json:"scaled"`          // false when no ratio beat plain RTN
	RTNError   *float64 `json:"rtn_error,omitempty"`
	AWQError   *float64 `json:"awq_error,omitempty"`
	Change     *float64 `json:"change,omitempty"` // awq/rtn - 1
	FoldedInto string   `json:"folded_into,omitempty"`
	Seconds    float64  `json:"seconds"`
}

// Totals sum the searched groups.
type Totals struct {
	Groups   int     `json:"groups"`
	Searched int     `json:"searched"`
	Skipped  int     `json:"skipped"`
	Improved int     `json:"improved"`  // groups whose error went down
	RTNError float64 `json:"rtn_error"` // sum of the groups' errors
	AWQError float64 `json:"awq_error"`
	Change   float64 `json:"change"`
}

// groupSpec is one group of linears sharing an input.
type groupSpec struct {
	name    string   // for messages and the report
	input   string   // the first linear: the calibration tensors' prefix
	linears []string // names without ".weight"
	fold    string   // tensor name that absorbs 1/s
	norm    bool     // fold is an RMSNorm weight (else a linear's rows)
}

// layerGroups lists a decoder layer's groups. The same four hold for every
// architecture cogumi supports (model/checkpoint's Archs), and this is why:
//
//   - q/k/v and gate/up: the linears' columns are multiplied by s and the
//     RMSNorm weight that produces their shared input is divided by s, so
//     W diag(s) (x / s) = W x exactly. Every projection's output is
//     unchanged, its bias included (Qwen2's q/k/v biases, Llama's
//     attention_bias and mlp_bias are added after the product and need
//     nothing), and so is everything computed from it: Qwen3's q_norm and
//     k_norm normalise q_proj's and k_proj's outputs, which do not change,
//     so they stay as they are.
//   - o: o_proj's columns are multiplied by s and v_proj's rows divided by
//     s. v = W_v x + b_v must become v / s, so v_proj's bias (Qwen2, or
//     attention_bias) is divided by s with its rows. Attention mixes the v
//     rows of a head linearly, so o_proj's input is divided by s too;
//     this needs o_proj's input channels to be v_proj's output channels,
//     one for one. With grouped-query attention a v channel feeds several
//     heads, so the group is skipped (the report says so). Qwen3 has no
//     norm on v: its heads fold like Llama's.
//   - down: down_proj's columns are multiplied by s and up_proj's rows
//     (and its bias, with mlp_bias) divided by s: silu(gate) * up is
//     linear in up.
//
// Nothing is folded through q_norm or k_norm: Qwen3's per-head RMSNorm
// divides each head by its own RMS, so scales on q_proj's or k_proj's rows
// would not pass through it; and no scale passes from q to k. AWQ only
// folds into what produces a group's input, which these folds respect.
func layerGroups(i int) []groupSpec {
	p := fmt.Sprintf("model.layers.%d.", i)
	return []groupSpec{
		{name: "q/k/v", input: p + "self_attn.q_proj",
			linears: []string{p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"},
			fold:    p + "input_layernorm.weight", norm: true},
		{name: "o", input: p + "self_attn.o_proj", linears: []string{p + "self_attn.o_proj"},
			fold: p + "self_attn.v_proj.weight"},
		{name: "gate/up", input: p + "mlp.gate_proj",
			linears: []string{p + "mlp.gate_proj", p + "mlp.up_proj"},
			fold:    p + "post_attention_layernorm.weight", norm: true},
		{name: "down", input: p + "mlp.down_proj", linears: []string{p + "mlp.down_proj"},
			fold: p + "mlp.up_proj.weight"},
	}
}

// Run searches the scales of every group of src on the calibration, then
// writes the scaled checkpoint and awq_report.json into dstDir. Memory is
// one group's weights and calibration rows at a time. On error nothing is
// left in dstDir.
func Run(ctx context.Context, src *checkpoint.Model, cal *Calibration, dstDir string, opts Options) (Report, error) {
	if opts.Grid == 0 {
		opts.Grid = DefaultGrid
	}
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers()
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	q, _ := newQuantizer(opts.Target)
	cfg := src.Config()
	if cal.Layers >= 0 && cal.Layers != cfg.NumHiddenLayers {
		return Report{}, fmt.Errorf("awq: calibration %s covers %d layers, but the model %s has %d: it was made for another model",
			cal.Path(), cal.Layers, src.Dir(), cfg.NumHiddenLayers)
	}
	qref, _ := src.Tensor("model.layers.0.self_attn.q_proj.weight")
	s := &searcher{q: q, dtype: qref.DType, duo: opts.DuoScaling, grid: opts.Grid, workers: opts.Workers, stride: max(1, opts.SearchStride)}
	rep := Report{Version: 1, Target: opts.Target, Bits: opts.Bits, DuoScaling: opts.DuoScaling, Grid: opts.Grid, SearchStride: opts.SearchStride,
		Calibration: filepath.Base(cal.Path()), Architecture: cfg.Arch.Architecture}
	fold := make(map[string]folding) // tensor name -> how it changes
	start := time.Now()
	for layer := 0; layer < cfg.NumHiddenLayers; layer++ {
		for _, g := range layerGroups(layer) {
			gr, err := s.group(ctx, src, cal, layer, g, fold)
			if err != nil {
				return Report{}, err
			}
			logGroup(opts.Log, gr)
			rep.Groups = append(rep.Groups, gr)
			rep.Totals.add(gr)
		}
	}
	rep.SearchSeconds = time.Since(start).Seconds()
	if err := writeScaled(ctx, src, dstDir, fold); err != nil {
		return Report{}, err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dstDir, ReportFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		return Report{}, fmt.Errorf("awq: writing %s: %w", ReportFile, err)
	}
	return rep, nil
}

func (t *Totals) add(g GroupReport) {
	t.Groups++
	if g.Skipped != "" {
		t.Skipped++
		return
	}
	t.Searched++
	t.RTNError += *g.RTNError
	t.AWQError += *g.AWQError
	if *g.AWQError < *g.RTNError {
		t.Improved++
	}
	if t.RTNError > 0 {
		t.Change = t.AWQError/t.RTNError - 1
	}
}

func logGroup(w io.Writer, g GroupReport) {
	if g.Skipped != "" {
		fmt.Fprintf(w, "layer %d %s: skipped: %s\n", g.Layer, g.Group, g.Skipped)
		return
	}
	note := ""
	if !g.Scaled {
		note = " (no ratio beats plain RTN: unscaled)"
	}
	fmt.Fprintf(w, "layer %d %s: ratio %.2f, error %.3g -> %.3g (%+.0f%%)%s\n",
		g.Layer, g.Group, *g.Ratio, *g.RTNError, *g.AWQError, 100**g.Change, note)
}

// group searches one group and records its folding.
func (s *searcher) group(ctx context.Context, src *checkpoint.Model, cal *Calibration, layer int, g groupSpec, fold map[string]folding) (GroupReport, error) {
	start := time.Now()
	gr := GroupReport{Layer: layer, Group: g.name}
	for _, l := range g.linears {
		gr.Linears = append(gr.Linears, l+".weight")
	}
	first, ok := src.Tensor(g.linears[0] + ".weight")
	if !ok {
		return gr, fmt.Errorf("awq: checkpoint %s has no tensor %q", src.Dir(), g.linears[0]+".weight")
	}
	in := int(first.Shape[1])
	if !g.norm {
		// 1/s goes into the rows of the linear producing this input: it
		// must produce exactly these channels.
		prev, _ := src.Tensor(g.fold)
		if prev.Shape[0] != int64(in) {
			gr.Skipped = fmt.Sprintf("%s has %d outputs but %s has %d inputs (grouped-query attention): the inverse scales cannot be folded",
				g.fold, prev.Shape[0], first.Name, in)
			return gr, nil
		}
	}
	if in%s.q.block() != 0 {
		gr.Skipped = fmt.Sprintf("%s has rows of %d weights, not a multiple of %s's block of %d", first.Name, in, s.q.name(), s.q.block())
		return gr, nil
	}
	x, err := cal.input(g.input, in)
	if err != nil {
		return gr, err
	}
	lins := make([]linear, len(g.linears))
	for i, name := range g.linears {
		t, _ := src.Tensor(name + ".weight")
		if len(t.Shape) != 2 || t.Shape[1] != int64(in) {
			return gr, fmt.Errorf("awq: %s has shape %v; the group %s needs [out, %d]", t.Name, t.Shape, g.name, in)
		}
		l := linear{name: name, out: int(t.Shape[0]), in: in}
		l.w = make([]float32, l.out*in)
		if err := src.ReadF32Rows(t.Name, 0, l.out, l.w); err != nil {
			return gr, fmt.Errorf("awq: %w", err)
		}
		lins[i] = l
	}
	res, err := s.search(ctx, x, lins)
	if err != nil {
		return gr, fmt.Errorf("awq: layer %d %s: %w", layer, g.name, err)
	}
	gr.Rows = x.n
	gr.Ratio, gr.Scaled = &res.ratio, res.scaled
	gr.RTNError, gr.AWQError = &res.rtnErr, &res.awqErr
	change := 0.0
	if res.rtnErr > 0 {
		change = res.awqErr/res.rtnErr - 1
	}
	gr.Change = &change
	gr.Seconds = time.Since(start).Seconds()
	if res.scaled {
		gr.FoldedInto = g.fold
		for _, l := range g.linears {
			fold[l+".weight"] = fold[l+".weight"].withCols(res.scales)
		}
		if g.norm {
			fold[g.fold] = folding{inv: res.scales}
		} else {
			prev := g.fold[:len(g.fold)-len(".weight")]
			fold[g.fold] = fold[g.fold].withRows(res.scales)
			if _, ok := src.Tensor(prev + ".bias"); ok {
				// The bias is part of the rows: it is divided with them.
				fold[prev+".bias"] = folding{inv: res.scales}
				gr.FoldedInto += " and " + prev + ".bias"
			}
		}
	}
	return gr, nil
}

// folding is how one tensor changes: its columns multiplied by cols, its
// rows (or, for a vector, its elements) divided by inv.
type folding struct {
	cols []float32
	inv  []float32
}

func (f folding) withCols(s []float32) folding { f.cols = s; return f }
func (f folding) withRows(s []float32) folding { f.inv = s; return f }

// writeScaled writes src with the foldings applied, tensor by tensor in the
// source's order, in the source's dtypes.
func writeScaled(ctx context.Context, src *checkpoint.Model, dstDir string, fold map[string]folding) error {
	w, err := src.NewWriter(dstDir)
	if err != nil {
		return fmt.Errorf("awq: %w", err)
	}
	for _, t := range src.Tensors() {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return err
		}
		if err := writeTensor(src, w, t, fold); err != nil {
			w.Abort()
			return err
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("awq: %w", err)
	}
	return nil
}

func writeTensor(src *checkpoint.Model, w *checkpoint.Writer, t checkpoint.TensorRef, fold map[string]folding) error {
	raw, err := src.Bytes(t.Name)
	if err != nil {
		return fmt.Errorf("awq: %w", err)
	}
	f, ok := fold[t.Name]
	if !ok {
		if err := w.WriteTensor(t.Name, raw); err != nil {
			return fmt.Errorf("awq: %w", err)
		}
		return nil
	}
	if !t.DType.IsFloat() {
		return fmt.Errorf("awq: tensor %q has dtype %s; only F32, F16 and BF16 tensors can be scaled", t.Name, t.DType)
	}
	rows, cols := 1, 1
	switch len(t.Shape) {
	case 1:
		cols = int(t.Shape[0])
	case 2:
		rows, cols = int(t.Shape[0]), int(t.Shape[1])
	default:
		return fmt.Errorf("awq: tensor %q has shape %v; cannot fold scales into it", t.Name, t.Shape)
	}
	if len(t.Shape) == 1 && len(f.inv) != cols || len(t.Shape) == 2 && (f.cols != nil && len(f.cols) != cols || f.inv != nil && len(f.inv) != rows) {
		return fmt.Errorf("awq: tensor %q has shape %v, which does not match its scales", t.Name, t.Shape)
	}
	tw, err := w.TensorWriter(t.Name)
	if err != nil {
		return fmt.Errorf("awq: %w", err)
	}
	es := t.DType.Size()
	row := make([]float32, cols)
	out := make([]byte, cols*es)
	for r := 0; r < rows; r++ {
		safetensors.DecodeF32(row, raw[r*cols*es:(r+1)*cols*es], t.DType)
		if len(t.Shape) == 1 {
			for i := range row {
				row[i] /= f.inv[i]
			}
		} else {
			for i := range f.cols {
				row[i] *= f.cols[i]
			}
			if f.inv != nil {
				for i := range row {
					row[i] /= f.inv[r]
				}
			}
		}
		safetensors.EncodeF32(out, row, t.DType)
		if _, err := tw.Write(out); err != nil {
			return fmt.Errorf("awq: writing %s: %w", t.Name, err)
		}
	}
	return nil
}
