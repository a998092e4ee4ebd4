package engine

import (
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// keyDecisions records, for every field of the structs a target is made
// of, whether keyRecords hashes it. Adding a field without deciding here
// fails TestKeyDecisionsComplete.
var keyDecisions = map[string]string{
	"Target.Label":        "not in key: identical recipes share results; inputs are keyed by their own labels",
	"Target.Kind":         "in key: the rule record",
	"Target.Attrs":        "in key: each attribute whose schema says InKey",
	"Target.Inputs":       "in key: one record per input",
	"Target.Resources":    "not in key: where and when an action runs, not what it makes",
	"Target.Executor":     "not in key: where an action runs",
	"Target.Pos":          "not in key: a message position",
	"Target.AttrPos":      "not in key: message positions",
	"Input.Attr":          "in key: the input record's name",
	"Input.Key":           "in key: the input record's name",
	"Input.File":          "in key: the input record's name, and its digest",
	"Input.Label":         "in key: the input record's name, and its artifact's tree digest",
	"Input.Pos":           "not in key: a message position",
	"Resources.CPUs":      "not in key",
	"Resources.Memory":    "not in key",
	"Resources.GPUs":      "not in key",
	"Resources.GPUType":   "not in key",
	"Resources.GPUMemory": "not in key",
	"Resources.Time":      "not in key",
}

func TestKeyDecisionsComplete(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[target.Target](), reflect.TypeFor[target.Input](), reflect.TypeFor[target.Resources](),
	} {
		for f := range typ.Fields() {
			name := typ.Name() + "." + f.Name
			if _, ok := keyDecisions[name]; !ok {
				t.Errorf("field %s: decide whether it is part of the action key (keyRecords) and record it in keyDecisions", name)
			}
		}
	}
}

func runTarget(attrs map[string]cty.Value, inputs ...target.Input) *target.Target {
	return &target.Target{Label: label.Label{Pkg: "p", Name: "t"}, Kind: "run", Attrs: attrs, Inputs: inputs}
}

func TestKeyRecordsChangeWithEveryKeyedPart(t *testing.T) {
	base := map[string]cty.Value{
		"command": cty.StringVal("cat $SRCS > $OUT/o"),
		"outs":    cty.ListVal([]cty.Value{cty.StringVal("o")}),
	}
	in := target.Input{Attr: "srcs", File: "p/a.txt"}
	d1 := cache.DigestBytes([]byte("one"))
	d2 := cache.DigestBytes([]byte("two"))
	key := func(tg *target.Target, ins []inputDigest) cache.ActionKey {
		recs, err := keyRecords(tg, rules.Run{}, rules.Run{}.Schema(), ins)
		if err != nil {
			t.Fatal(err)
		}
		return cache.KeyFromRecords(recs)
	}
	k0 := key(runTarget(base, in), []inputDigest{{in: in, digest: d1}})
	if k := key(runTarget(base, in), []inputDigest{{in: in, digest: d1}}); k != k0 {
		t.Fatal("the same recipe gave two keys")
	}
	if k := key(runTarget(base, in), []inputDigest{{in: in, digest: d2}}); k == k0 {
		t.Error("changing an input's digest kept the key")
	}
	other := map[string]cty.Value{"command": cty.StringVal("cp $SRCS $OUT/o"), "outs": base["outs"]}
	if k := key(runTarget(other, in), []inputDigest{{in: in, digest: d1}}); k == k0 {
		t.Error("changing the command kept the key")
	}
	withEnv := map[string]cty.Value{"command": base["command"], "outs": base["outs"],
		"env": cty.MapVal(map[string]cty.Value{"LANG": cty.StringVal("C")})}
	if k := key(runTarget(withEnv, in), []inputDigest{{in: in, digest: d1}}); k == k0 {
		t.Error("declaring env kept the key")
	}
	moved := target.Input{Attr: "srcs", File: "p/b.txt"}
	if k := key(runTarget(base, moved), []inputDigest{{in: moved, digest: d1}}); k == k0 {
		t.Error("renaming an input kept the key")
	}
	res := runTarget(base, in)
	res.Resources.CPUs = 4
	if k := key(res, []inputDigest{{in: in, digest: d1}}); k != k0 {
		t.Error("resources changed the key; they decide where an action runs, not what it makes")
	}
}

func TestExplainChange(t *testing.T) {
	old := []string{
		record("rule", `"prune"`),
		record(`attr "sparsity"`, "0.5"),
		record(`input 0 srcs file "data/a.txt"`, "3fa2aaaaaaaaaaaa"),
		record(`input 1 srcs file "data/gone.txt"`, "1111111111111111"),
	}
	cur := []string{
		record("rule", `"prune"`),
		record(`attr "sparsity"`, "0.65"),
		record(`input 0 srcs file "data/a.txt"`, "91c0bbbbbbbbbbbb"),
		record(`input 1 srcs file "data/new.txt"`, "2222222222222222"),
	}
	got := strings.Join(explainChange(old, cur), "\n")
	for _, want := range []string{
		"attribute sparsity changed 0.5 -> 0.65",
		"input data/a.txt changed (digest 3fa2aaaa… -> 91c0bbbb…)",
		"input data/new.txt added",
		"input data/gone.txt removed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explainChange missing %q; got:\n%s", want, got)
		}
	}
}
