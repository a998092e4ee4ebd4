package rules

import (
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
)

// eval declares its outputs unless a script writes into $COGUMI_OUT.
func TestEvalOuts(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]cty.Value
		want  []string
	}{
		{map[string]cty.Value{"model": cty.StringVal(":m"), "dataset": cty.StringVal(":d")}, []string{"metrics.json", "scores.jsonl"}},
		{map[string]cty.Value{"model": cty.StringVal(":m"), "dataset": cty.StringVal(":d"), "script": cty.StringVal("score.py")}, nil},
		{map[string]cty.Value{"model": cty.StringVal(":m"), "dataset": cty.StringVal(":d"), "script": cty.StringVal("score.py"),
			"metrics": cty.ListVal([]cty.Value{cty.StringVal("perplexity")})}, nil},
	} {
		if got := (Eval{}).Outs(&target.Target{Kind: "eval", Attrs: c.attrs}); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Outs(%v) = %v, want %v", c.attrs, got, c.want)
		}
	}
}
