package rules

import (
	"context"
	"fmt"
	"strings"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/awq"
)

// AWQ applies activation-aware weight quantisation's scaling to a
// checkpoint, for a 4-bit format chosen by target:
//
//	awq "q4" {
//	  model       = ":sparse"
//	  calibration = ":calib"   # a calibrate target
//	  bits        = 4
//	  target      = "Q4_K"     # Q4_0, Q4_K (default) or g128
//	  duo_scaling = false
//	  grid        = 20
//	}
//
// Its artifact is the scaled checkpoint (same layout and dtype as the
// model, the same function in full precision, ready for a gguf target of
// the same 4-bit type) plus awq_report.json. The search uses every CPU of
// the machine.
type AWQ struct{}

func (AWQ) Kind() string { return "awq" }

// Version 1: AutoAWQ's scale search (ratios i/grid, i < grid, with an
// explicit RTN candidate), errors measured through the repository's ggml
// quantisers, scaled weights rounded to the checkpoint's dtype before
// quantising.
// Version includes the kernel: machines whose arithmetic rounds differently
// may choose other scales, so they do not share results.
func (AWQ) Version() string { return "2/" + awq.Kernel() } // 2: the report names the architecture and the bias that absorbed 1/s

// awqParams are the attributes of an awq target. The defaults of target
// and grid are awq.TargetQ4_K and awq.DefaultGrid (TestAWQDefaults).
// search_stride has none: unset, every row is scored, and the report
// says nothing of a stride.
type awqParams struct {
	Model        string `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face checkpoint directory"`
	Calibration  string `cogumi:"calibration,key,required,input=label" doc:"a calibrate target of the same model: its calibration.safetensors holds the linears' input statistics"`
	Bits         int    `cogumi:"bits,key" default:"4" doc:"weight bits; 4 is the only value supported"`
	Target       string `cogumi:"target,key" default:"Q4_K" doc:"the format the search optimises for: \"Q4_0\" (ggml, symmetric blocks of 32), \"Q4_K\" (ggml k-quant super-blocks) or \"g128\" (AutoAWQ's asymmetric groups of 128)"`
	DuoScaling   bool   `cogumi:"duo_scaling,key" default:"false" doc:"scales from activation and weight statistics (mean|x|^a / mean|w|^(1-a)), as AutoAWQ's duo_scaling"`
	Grid         int    `cogumi:"grid,key" default:"20"`
	SearchStride *int   `cogumi:"search_stride,key"`
}

func (AWQ) Schema() Schema {
	attrs := attrsOf[awqParams]()
	// These docs name the awq package's limits.
	attrs = withDoc(attrs, "grid", fmt.Sprintf("number of exponents a = i/grid (i = 0 .. grid-1) tried per group; at most %d", awq.MaxGrid))
	attrs = withDoc(attrs, "search_stride", fmt.Sprintf("score the exponents on every Nth block of 16 weight rows (N = 2 .. %d: about N times faster); the chosen scales are checked on all rows and kept only if they beat plain rounding there; when unset, every row", awq.MaxSearchStride))
	return Schema{Summary: "activation-aware 4-bit scaling of a checkpoint, searched under the real quantiser", Attrs: attrs, Traits: Traits{AllCPUs: true}}
}

// options are the awq package's options for p.
func (p *awqParams) options() awq.Options {
	o := awq.Options{Target: p.Target, Bits: p.Bits, Grid: p.Grid, DuoScaling: p.DuoScaling}
	if p.SearchStride != nil {
		o.SearchStride = *p.SearchStride
	}
	return o
}

func (AWQ) Check(t *target.Target) []AttrError {
	p, errs := decode[awqParams](t)
	if len(errs) > 0 {
		return errs
	}
	o := p.options()
	if o.Bits != 4 {
		errs = append(errs, AttrError{Attr: "bits", Msg: fmt.Sprintf("bits = %d is not supported: AWQ here writes 4-bit formats (%s); use bits = 4",
			o.Bits, strings.Join(awq.Targets(), ", "))})
	}
	ok := false
	for _, name := range awq.Targets() {
		ok = ok || name == o.Target
	}
	if !ok {
		errs = append(errs, AttrError{Attr: "target", Msg: fmt.Sprintf("target %q is not supported; use one of %s",
			o.Target, strings.Join(awq.Targets(), ", "))})
	}
	if o.Grid < 1 || o.Grid > awq.MaxGrid {
		errs = append(errs, AttrError{Attr: "grid", Msg: fmt.Sprintf("grid = %d: want a whole number of steps from 1 to %d",
			o.Grid, awq.MaxGrid)})
	}
	if p.SearchStride != nil && (o.SearchStride < 1 || o.SearchStride > awq.MaxSearchStride) {
		errs = append(errs, AttrError{Attr: "search_stride", Msg: fmt.Sprintf("search_stride = %d: want a whole number from 1 to %d",
			o.SearchStride, awq.MaxSearchStride)})
	}
	return errs
}

// Outs are not declared: the scaled checkpoint has the model's layout
// (its shard and tokenizer files), known only from the input.
func (AWQ) Outs(*target.Target) []string { return nil }

func (AWQ) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[awqParams](a)
	if err != nil {
		return err
	}
	m, err := openModelInput(a, "model")
	if err != nil {
		return err
	}
	defer m.Close()
	dir, ok := a.InputDirs["calibration"]
	if !ok {
		return fmt.Errorf("calibration: no input staged")
	}
	path, err := awq.FindCalibration(dir)
	if err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	cal, err := awq.OpenCalibration(path)
	if err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	defer cal.Close()
	o := p.options()
	o.Log = a.Log
	rep, err := awq.Run(ctx, m, cal, a.Out, o)
	if err != nil {
		return err
	}
	t := rep.Totals
	fmt.Fprintf(a.Log, "awq %s: %d groups scaled for %s, %d skipped, %d improved; error %.3g -> %.3g (%+.0f%%); search %.1f s\n",
		a.Target.Label, t.Searched, rep.Target, t.Skipped, t.Improved, t.RTNError, t.AWQError, 100*t.Change, rep.SearchSeconds)
	return nil
}
