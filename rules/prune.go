package rules

import (
	"context"
	"fmt"

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

// pruneParams are the attributes of a prune target. Sparsity, pattern
// and scope are pointers: which of them is written matters.
type pruneParams struct {
	Model    string   `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face checkpoint directory"`
	Sparsity *float64 `cogumi:"sparsity,key" doc:"fraction of the selected weights to zero, in [0, 1] (unstructured)"`
	Pattern  *string  `cogumi:"pattern,key" doc:"semi-structured \"N:M\" pruning, e.g. \"2:4\": N zeros in every M weights along the input dimension"`
	Scope    *string  `cogumi:"scope,key" doc:"\"tensor\" (when unset: each tensor reaches the sparsity) or \"global\" (one threshold across tensors)"`
	Include  []string `cogumi:"include,key" doc:"tensor name patterns to prune instead of the decoder layers' projection weights"`
	Exclude  []string `cogumi:"exclude,key" doc:"tensor name patterns never to prune"`
}

func (Prune) Schema() Schema {
	return Schema{Summary: "magnitude pruning of a checkpoint, unstructured or N:M", Attrs: attrsOf[pruneParams]()}
}

func (Prune) Check(t *target.Target) []AttrError {
	p, errs := decode[pruneParams](t)
	if len(errs) > 0 {
		return errs
	}
	hasS, hasP := p.Sparsity != nil, p.Pattern != nil
	switch {
	case hasS == hasP:
		errs = append(errs, AttrError{Msg: `give either sparsity (e.g. 0.65) or pattern (e.g. "2:4")`})
	case hasP && p.scope() != "":
		errs = append(errs, AttrError{Attr: "scope", Msg: "scope applies to unstructured pruning (sparsity), not to a pattern"})
	}
	if hasP {
		if _, _, err := prune.ParsePattern(*p.Pattern); err != nil {
			errs = append(errs, AttrError{Attr: "pattern", Msg: err.Error()})
		}
	}
	if hasS && (*p.Sparsity < 0 || *p.Sparsity > 1) {
		errs = append(errs, AttrError{Attr: "sparsity", Msg: fmt.Sprintf("sparsity %g is not in [0, 1]", *p.Sparsity)})
	}
	switch p.scope() {
	case "", "tensor", "global":
	default:
		errs = append(errs, AttrError{Attr: "scope", Msg: fmt.Sprintf("scope %q: use \"tensor\" or \"global\"", p.scope())})
	}
	return errs
}

// scope is the scope attribute, "" when unset.
func (p *pruneParams) scope() string {
	if p.Scope == nil {
		return ""
	}
	return *p.Scope
}

// Outs are not declared: the pruned checkpoint has the model's layout
// (its shard and tokenizer files), known only from the input.
func (Prune) Outs(*target.Target) []string { return nil }

func (Prune) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[pruneParams](a)
	if err != nil {
		return err
	}
	m, err := openModelInput(a, "model")
	if err != nil {
		return err
	}
	defer m.Close()
	opts := prune.Options{Include: p.Include, Exclude: p.Exclude}
	if p.Pattern != nil {
		opts.Pattern = *p.Pattern
	}
	if p.Sparsity != nil {
		opts.Sparsity = *p.Sparsity
	}
	if p.scope() == "global" {
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
