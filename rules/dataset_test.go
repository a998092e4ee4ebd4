package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/dataset"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

func dsNum(f float64) cty.Value { return cty.NumberFloatVal(f) }
func dsStr(s string) cty.Value  { return cty.StringVal(s) }
func dsObj(m map[string]cty.Value) cty.Value {
	return cty.ObjectVal(m)
}

func datasetTarget(attrs map[string]cty.Value) *target.Target {
	attrs["from"] = cty.ListVal([]cty.Value{dsStr("a.jsonl")})
	return &target.Target{Label: label.Label{Pkg: "data", Name: "splits"}, Kind: "dataset", Attrs: attrs}
}

func TestDatasetConfig(t *testing.T) {
	split := cty.MapVal(map[string]cty.Value{"train": dsNum(0.9), "val": dsNum(0.05), "test": dsNum(0.05)})
	cfg, errs := datasetConfig(datasetTarget(map[string]cty.Value{
		"dedupe":       dsStr("normalized_text"),
		"where_metric": dsObj(map[string]cty.Value{"eval": dsStr(":train_scores"), "perplexity_gt": dsNum(12.4), "nll_le": dsNum(3)}),
		"sample": dsObj(map[string]cty.Value{
			"by":    cty.TupleVal([]cty.Value{dsStr("domain"), dsStr("difficulty")}),
			"quota": dsObj(map[string]cty.Value{"easy": dsNum(0.4), "hard": dsNum(0.6)}),
			"n":     dsNum(1000), "seed": dsNum(7),
		}),
		"split":    split,
		"episodes": dsObj(map[string]cty.Value{"by": dsStr("domain"), "support": dsNum(5), "query": dsNum(15), "seed": dsNum(3)}),
	}))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := &dataset.Config{
		Name:   "splits",
		Dedupe: dataset.DedupeNormalized,
		Metric: &dataset.MetricFilter{Conds: []dataset.Cond{{Metric: "nll", Op: "le", Value: 3}, {Metric: "perplexity", Op: "gt", Value: 12.4}}},
		Sample: &dataset.Sample{By: []string{"domain", "difficulty"}, Quota: map[string]float64{"easy": 0.4, "hard": 0.6}, N: 1000, Seed: 7},
		Split:  []dataset.Share{{Name: "test", Share: 0.05}, {Name: "train", Share: 0.9}, {Name: "val", Share: 0.05}}, SplitSeed: 7,
		Episodes: &dataset.Episodes{By: "domain", Support: 5, Query: 15, Seed: 3},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", cfg, want)
	}
	if outs := (Dataset{}).Outs(datasetTarget(map[string]cty.Value{"split": split})); !reflect.DeepEqual(outs, []string{"stats.json", "test.jsonl", "train.jsonl", "val.jsonl"}) {
		t.Errorf("outs = %v", outs)
	}
	if outs := (Dataset{}).Outs(datasetTarget(map[string]cty.Value{})); !reflect.DeepEqual(outs, []string{"splits.jsonl", "stats.json"}) {
		t.Errorf("outs = %v", outs)
	}
}

func TestDatasetCheck(t *testing.T) {
	tests := []struct {
		attrs map[string]cty.Value
		err   string
	}{
		{map[string]cty.Value{"dedupe": dsStr("fuzzy")}, `dedupe: "fuzzy": use "exact" or "normalized_text"`},
		{map[string]cty.Value{"dedupe_fields": cty.ListVal([]cty.Value{dsStr("q")})}, `dedupe_fields: dedupe_fields needs dedupe = "exact" or "normalized_text"`},
		{map[string]cty.Value{"split": cty.MapVal(map[string]cty.Value{"train": dsNum(0.9), "val": dsNum(0.2)})}, "split: the shares add up to 1.1, not 1"},
		{map[string]cty.Value{"split": cty.MapVal(map[string]cty.Value{"stats": dsNum(1)})}, `split: a split cannot be called "stats": the artifact has its own stats file`},
		{map[string]cty.Value{"split": cty.MapVal(map[string]cty.Value{"a/b": dsNum(1)})}, `split: "a/b" is not a split name: use letters, digits, _ . -`},
		{map[string]cty.Value{"sample": dsObj(map[string]cty.Value{"n": dsNum(5)})}, "sample: by: name the fields to stratify by"},
		{map[string]cty.Value{"sample": dsObj(map[string]cty.Value{"by": dsStr("d"), "quota": dsObj(map[string]cty.Value{"a": dsNum(0.5), "b": dsNum(0.4)})})}, "sample: quota: the shares add up to 0.9, not 1"},
		{map[string]cty.Value{"sample": dsObj(map[string]cty.Value{"by": dsStr("d"), "n": dsNum(2.5)})}, "sample: n: 2.5 is not a whole number of at least 1"},
		{map[string]cty.Value{"sample": dsObj(map[string]cty.Value{"by": dsStr("d"), "count": dsNum(2)})}, `sample: unknown key "count" (accepted: by, quota, n, seed)`},
		{map[string]cty.Value{"sample": dsObj(map[string]cty.Value{"by": dsStr("d"), "seed": dsNum(-1)})}, "sample: seed: -1 is not a whole number of at least 0"},
		{map[string]cty.Value{"where_metric": dsObj(map[string]cty.Value{"eval": dsStr(":e")})}, "where_metric: no threshold"},
		{map[string]cty.Value{"where_metric": dsObj(map[string]cty.Value{"eval": dsStr(":e"), "perplexity_above": dsNum(3)})}, `where_metric: "perplexity_above" is not <metric>_gt, _lt, _ge or _le`},
		{map[string]cty.Value{"where_metric": dsObj(map[string]cty.Value{"perplexity_gt": dsNum(3)})}, "where_metric: eval: name the eval"},
		{map[string]cty.Value{"episodes": dsObj(map[string]cty.Value{"by": dsStr("domain"), "support": dsNum(5)})}, "episodes: query: expected the number of rows per episode"},
		{map[string]cty.Value{"episodes": dsObj(map[string]cty.Value{"by": dsStr("domain"), "support": dsNum(5), "query": dsNum(5)}),
			"split": cty.MapVal(map[string]cty.Value{"a": dsNum(0.5), "b": dsNum(0.5)})}, `episodes: episodes are drawn from the train split, and split has no "train"`},
		{map[string]cty.Value{"max_row_bytes": dsNum(0)}, "max_row_bytes: 0 is not a whole number of at least 1"},
	}
	for _, tt := range tests {
		errs := (Dataset{}).Check(datasetTarget(tt.attrs))
		var got []string
		for _, e := range errs {
			got = append(got, e.Attr+": "+e.Msg)
		}
		if len(got) != 1 || !strings.HasPrefix(got[0], tt.err) {
			t.Errorf("%v: errors %q, want one starting %q", tt.attrs, got, tt.err)
		}
	}
}

func TestDatasetInputs(t *testing.T) {
	ws := t.TempDir()
	for _, f := range []string{"data/raw/x.jsonl", "data/answers/part-b.jsonl", "data/answers/part-a.jsonl", "data/answers/sub/c.jsonl", "data/answers/stats.json", "gen/q/train.jsonl"} {
		p := filepath.Join(ws, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tg := &target.Target{Label: label.Label{Pkg: "data", Name: "d"}, Inputs: []target.Input{
		{Attr: "from", Label: label.Label{Pkg: "data", Name: "answers"}},
		{Attr: "from", File: "data/raw/x.jsonl"},
		{Attr: "where_metric", Key: "eval", Label: label.Label{Pkg: "gen", Name: "q"}},
		{Attr: "from", Label: label.Label{Pkg: "gen", Name: "q", Sub: "train.jsonl"}},
	}}
	got, err := datasetInputs(&Action{Target: tg, Dir: ws})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range got {
		names = append(names, in.Name)
		if _, err := os.Stat(in.Path); err != nil {
			t.Errorf("%s: %v", in.Name, err)
		}
	}
	want := []string{"//data:answers/part-a.jsonl", "//data:answers/part-b.jsonl", "//data:answers/sub/c.jsonl", "data/raw/x.jsonl", "//gen:q/train.jsonl"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("inputs %q, want %q", names, want)
	}

	tg.Inputs = []target.Input{{Attr: "from", Label: label.Label{Pkg: "data", Name: "answers", Sub: "sub/none"}}}
	if _, err := datasetInputs(&Action{Target: tg, Dir: ws}); err == nil || !strings.Contains(err.Error(), "from: //data:answers/sub/none was not staged") {
		t.Errorf("error = %v", err)
	}
	os.Remove(filepath.Join(ws, "gen/q/train.jsonl"))
	os.WriteFile(filepath.Join(ws, "gen/q/metrics.json"), []byte("{}"), 0o644)
	tg.Inputs = []target.Input{{Attr: "from", Label: label.Label{Pkg: "gen", Name: "q"}}}
	if _, err := datasetInputs(&Action{Target: tg, Dir: ws}); err == nil || !strings.Contains(err.Error(), "from: //gen:q has no .jsonl file (it has: metrics.json)") {
		t.Errorf("error = %v", err)
	}
}
