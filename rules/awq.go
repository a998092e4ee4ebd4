package rules

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/zclconf/go-cty/cty"

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

func (AWQ) UsesAllCPUs() bool { return true }
func (AWQ) Kind() string      { return "awq" }

// Version 1: AutoAWQ's scale search (ratios i/grid, i < grid, with an
// explicit RTN candidate), errors measured through the repository's ggml
// quantisers, scaled weights rounded to the checkpoint's dtype before
// quantising.
// Version includes the kernel: machines whose arithmetic rounds differently
// may choose other scales, so they do not share results.
func (AWQ) Version() string { return "1/" + awq.Kernel() }

func (AWQ) Schema() Schema {
	return Schema{
		Attrs: []Attr{
			{Name: "model", Type: cty.String, Required: true, Input: LabelInput, Key: InKey,
				Doc: "a target whose artifact holds one Hugging Face checkpoint directory"},
			{Name: "calibration", Type: cty.String, Required: true, Input: LabelInput, Key: InKey,
				Doc: "a calibrate target of the same model: its calibration.safetensors holds the linears' input statistics"},
			{Name: "bits", Type: cty.Number, Key: InKey,
				Doc: "weight bits; 4 (the default) is the only value supported"},
			{Name: "target", Type: cty.String, Key: InKey,
				Doc: `the format the search optimises for: "Q4_0" (ggml, symmetric blocks of 32), "Q4_K" (ggml k-quant super-blocks; the default) or "g128" (AutoAWQ's asymmetric groups of 128)`},
			{Name: "duo_scaling", Type: cty.Bool, Key: InKey,
				Doc: "scales from activation and weight statistics (mean|x|^a / mean|w|^(1-a)), as AutoAWQ's duo_scaling; default false"},
			{Name: "grid", Type: cty.Number, Key: InKey,
				Doc: fmt.Sprintf("number of exponents a = i/grid (i = 0 .. grid-1) tried per group; default %d, at most %d", awq.DefaultGrid, awq.MaxGrid)},
			{Name: "search_stride", Type: cty.Number, Key: InKey,
				Doc: fmt.Sprintf("score the exponents on every Nth block of 16 weight rows (N = 2 .. %d: about N times faster); the chosen scales are checked on all rows and kept only if they beat plain rounding there; default 1, every row", awq.MaxSearchStride)},
		},
	}
}

// awqOptions reads the target's attributes, defaults applied.
func awqOptions(t *target.Target) awq.Options {
	o := awq.Options{Target: t.String("target"), Bits: 4, Grid: awq.DefaultGrid}
	if o.Target == "" {
		o.Target = awq.TargetQ4_K
	}
	if v, ok := t.Attrs["bits"]; ok && !v.IsNull() {
		o.Bits = intAttr(v)
	}
	if v, ok := t.Attrs["grid"]; ok && !v.IsNull() {
		o.Grid = intAttr(v)
	}
	if v, ok := t.Attrs["duo_scaling"]; ok && !v.IsNull() {
		o.DuoScaling = v.True()
	}
	if v, ok := t.Attrs["search_stride"]; ok && !v.IsNull() {
		o.SearchStride = intAttr(v)
	}
	return o
}

// intAttr returns a whole number's value, or math.MinInt for a fraction
// (which every range check then rejects).
func intAttr(v cty.Value) int {
	f, _ := v.AsBigFloat().Float64()
	if f != math.Trunc(f) || math.Abs(f) > 1<<30 {
		return math.MinInt
	}
	return int(f)
}

func (AWQ) Check(t *target.Target) []AttrError {
	o := awqOptions(t)
	var errs []AttrError
	if v, ok := t.Attrs["bits"]; ok && o.Bits != 4 {
		errs = append(errs, AttrError{Attr: "bits", Msg: fmt.Sprintf("bits = %s is not supported: AWQ here writes 4-bit formats (%s); use bits = 4",
			v.AsBigFloat().Text('g', -1), strings.Join(awq.Targets(), ", "))})
	}
	ok := false
	for _, name := range awq.Targets() {
		ok = ok || name == o.Target
	}
	if !ok {
		errs = append(errs, AttrError{Attr: "target", Msg: fmt.Sprintf("target %q is not supported; use one of %s",
			o.Target, strings.Join(awq.Targets(), ", "))})
	}
	if v, ok := t.Attrs["grid"]; ok && (o.Grid < 1 || o.Grid > awq.MaxGrid) {
		errs = append(errs, AttrError{Attr: "grid", Msg: fmt.Sprintf("grid = %s: want a whole number of steps from 1 to %d",
			v.AsBigFloat().Text('g', -1), awq.MaxGrid)})
	}
	if v, ok := t.Attrs["search_stride"]; ok && (o.SearchStride < 1 || o.SearchStride > awq.MaxSearchStride) {
		errs = append(errs, AttrError{Attr: "search_stride", Msg: fmt.Sprintf("search_stride = %s: want a whole number from 1 to %d",
			v.AsBigFloat().Text('g', -1), awq.MaxSearchStride)})
	}
	return errs
}

func (AWQ) Outs(*target.Target) []string { return nil }

func (AWQ) Execute(ctx context.Context, a *Action) error {
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
	o := awqOptions(a.Target)
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
