package rules

import (
	"context"
	"fmt"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/prune"
)

// Prune zeroes the smallest-magnitude weights of a checkpoint:
//
//	prune "sparse" {
//	  model    = ":base"
//	  sparsity = 0.65        # or pattern = "2:4"
//	}
//
// Its artifact is a checkpoint in the same layout plus prune_report.json.
type Prune struct{}

func (Prune) Kind() string    { return "prune" }
func (Prune) Version() string { return "1" }

func (Prune) Schema() Schema {
	return Schema{
		Attrs: []Attr{
			{Name: "model", Type: cty.String, Required: true, Input: LabelInput, Key: InKey,
				Doc: "a target whose artifact holds one Hugging Face checkpoint directory"},
			{Name: "sparsity", Type: cty.Number, Key: InKey,
				Doc: "fraction of the selected weights to zero, in [0, 1] (unstructured)"},
			{Name: "pattern", Type: cty.String, Key: InKey,
				Doc: `semi-structured "N:M" pruning, e.g. "2:4": N zeros in every M weights along the input dimension`},
			{Name: "scope", Type: cty.String, Key: InKey,
				Doc: `"tensor" (default: each tensor reaches the sparsity) or "global" (one threshold across tensors)`},
			{Name: "include", Type: cty.List(cty.String), Key: InKey,
				Doc: "tensor name patterns to prune instead of the decoder layers' projection weights"},
			{Name: "exclude", Type: cty.List(cty.String), Key: InKey,
				Doc: "tensor name patterns never to prune"},
		},
	}
}

func (Prune) Check(t *target.Target) []AttrError {
	_, hasS := t.Attrs["sparsity"]
	_, hasP := t.Attrs["pattern"]
	var errs []AttrError
	switch {
	case hasS == hasP:
		errs = append(errs, AttrError{Msg: `give either sparsity (e.g. 0.65) or pattern (e.g. "2:4")`})
	case hasP && t.String("scope") != "":
		errs = append(errs, AttrError{Attr: "scope", Msg: "scope applies to unstructured pruning (sparsity), not to a pattern"})
	}
	if hasP {
		if _, _, err := prune.ParsePattern(t.String("pattern")); err != nil {
			errs = append(errs, AttrError{Attr: "pattern", Msg: err.Error()})
		}
	}
	if hasS {
		f, _ := t.Attrs["sparsity"].AsBigFloat().Float64()
		if f < 0 || f > 1 {
			errs = append(errs, AttrError{Attr: "sparsity", Msg: fmt.Sprintf("sparsity %g is not in [0, 1]", f)})
		}
	}
	switch t.String("scope") {
	case "", "tensor", "global":
	default:
		errs = append(errs, AttrError{Attr: "scope", Msg: fmt.Sprintf("scope %q: use \"tensor\" or \"global\"", t.String("scope"))})
	}
	return errs
}

func (Prune) Outs(*target.Target) []string { return nil }

func (Prune) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	m, err := openModelInput(a, "model")
	if err != nil {
		return err
	}
	defer m.Close()
	opts := prune.Options{Pattern: t.String("pattern"), Include: t.Strings("include"), Exclude: t.Strings("exclude")}
	if v, ok := t.Attrs["sparsity"]; ok {
		opts.Sparsity, _ = v.AsBigFloat().Float64()
	}
	if t.String("scope") == "global" {
		opts.Scope = prune.Global
	}
	rep, err := prune.PruneCheckpoint(ctx, m, a.Out, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Log, "pruned %s: %d of %d selected weights are zero (%.2f%%); %.2f%% of the whole model\n",
		rep.Method, rep.Selected.Zeros, rep.Selected.Total, 100*ratio(rep.Selected.Zeros, rep.Selected.Total),
		100*ratio(rep.Model.Zeros, rep.Model.Total))
	return nil
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
