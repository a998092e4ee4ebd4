package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cogumi/cogumi/data/dataset"
	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/target"
)

// Dataset builds JSONL datasets from JSONL files and other datasets:
//
//	dataset "splits" {
//	  from     = [":answers_easy", "raw/extra.jsonl"]   # every .jsonl of a label's artifact, sorted
//	  text     = "${row.question}\n\n${row.answer}"       # builds each row's "text" field
//	  dedupe   = "normalized_text"                       # or "exact"; dedupe_fields = [...]
//	  where    = row.score >= 7
//	  where_metric = { eval = ":train_scores", perplexity_gt = 12.4 }
//	  sample   = { by = ["domain", "difficulty"], quota = { easy = 0.4, hard = 0.6 }, n = 1000, seed = 7 }
//	  split    = { train = 0.9, val = 0.05, test = 0.05 }
//	  episodes = { by = "domain", support = 5, query = 15, seed = 7 }
//	}
//
// Its artifact is one JSONL file per split (<name>.jsonl without split),
// stats.json and, with episodes, episodes.jsonl. The work is in package
// dataset.
type Dataset struct{}

func (Dataset) Kind() string    { return "dataset" }
func (Dataset) Version() string { return "1" }

// datasetParams are the attributes of a dataset target. The defaults of
// dedupe_fields and max_row_bytes are package dataset's, applied when
// they are unset (nil here).
type datasetParams struct {
	From         []string           `cogumi:"from,key,required,input=sources" doc:"JSONL files of the package and labels (every .jsonl file of the artifact, in path order), concatenated in order"`
	Text         *rowexpr.Expr      `cogumi:"text,key,row=string" doc:"a row template building each row's \"text\" field: \"${row.question}\\n\\n${row.answer}\""`
	Where        *rowexpr.Expr      `cogumi:"where,key,row=bool" doc:"an expression over each row; the rows where it is false are left out (row.domain == \"coding\")"`
	WhereMetric  cty.Value          `cogumi:"where_metric,key,input=labelmap" doc:"keeps the rows whose per-example score from an eval passes: { eval = \":train_scores\", perplexity_gt = 12.4 } (<metric>_gt, _lt, _ge, _le)"`
	Dedupe       string             `cogumi:"dedupe,key" doc:"\"exact\" or \"normalized_text\" (case, punctuation, white space and Unicode forms ignored): the first of equal rows is kept"`
	DedupeFields *[]string          `cogumi:"dedupe_fields,key" doc:"the fields dedupe compares (when unset: \"text\")"`
	Sample       cty.Value          `cogumi:"sample,key" doc:"stratified sampling: { by = [\"domain\", \"difficulty\"], quota = { easy = 0.4, hard = 0.6 }, n = 1000, seed = 7 }"`
	Split        map[string]float64 `cogumi:"split,key" doc:"shares of each split (train = 0.9, val = 0.05, test = 0.05): <split>.jsonl each; a row's split depends only on its content and the seed"`
	Episodes     cty.Value          `cogumi:"episodes,key" doc:"MAML episodes from the train split: { by = \"domain\", support = 5, query = 15, seed = 7 }"`
	MaxRowBytes  *int               `cogumi:"max_row_bytes,key" doc:"the longest line accepted (when unset: 16 MiB)"`
}

func (Dataset) Schema() Schema {
	return Schema{Summary: "JSONL datasets from JSONL files and other datasets: templates, filters, dedupe, sampling, splits, episodes", Attrs: attrsOf[datasetParams](), Traits: Traits{UsesName: true}}
}

func (Dataset) Check(t *target.Target) []AttrError {
	_, errs := datasetConfig(t)
	return errs
}

func (Dataset) Outs(t *target.Target) []string {
	cfg, errs := datasetConfig(t)
	if len(errs) > 0 {
		return nil
	}
	return cfg.Outputs()
}

func (Dataset) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[datasetParams](a)
	if err != nil {
		return err
	}
	cfg, errs := p.config(t.Label.Name)
	if len(errs) > 0 {
		return fmt.Errorf("attribute %q: %s", errs[0].Attr, errs[0].Msg)
	}
	if e := p.Where; e != nil {
		cfg.Where, cfg.WherePos = e.Bool, t.AttrPos["where"].String()
	}
	if e := p.Text; e != nil {
		cfg.Text, cfg.TextPos = e.String, t.AttrPos["text"].String()
	}
	if cfg.Metric != nil {
		if err := datasetScores(ctx, a, cfg.Metric); err != nil {
			return err
		}
	}
	inputs, err := datasetInputs(a)
	if err != nil {
		return err
	}
	cfg.TempDir = filepath.Dir(a.Dir) // the scratch directory, removed after the action
	_, err = dataset.Build(ctx, cfg, inputs, a.Out, a.Log)
	return err
}

// datasetInputs lists the files of from, in order: a file of the package
// as its workspace path, each .jsonl file of a label's artifact (or the one
// file its sub path names) in path order.
func datasetInputs(a *Action) ([]dataset.Input, error) {
	var out []dataset.Input
	for _, in := range a.Target.Inputs {
		if in.Attr != "from" {
			continue
		}
		if in.IsFile() {
			out = append(out, dataset.Input{Name: in.File, Path: filepath.Join(a.Dir, filepath.FromSlash(in.File))})
			continue
		}
		l := in.Label
		root := filepath.Join(a.Dir, filepath.FromSlash(l.Pkg), l.Name, filepath.FromSlash(l.Sub))
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("%s: from: %s was not staged: %w", in.Pos, l, err)
		}
		if !st.IsDir() {
			out = append(out, dataset.Input{Name: l.String(), Path: root})
			continue
		}
		var files, others []string
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if strings.HasSuffix(p, ".jsonl") {
				files = append(files, filepath.ToSlash(rel))
			} else {
				others = append(others, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("from: reading %s: %w", l, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: from: %s has no .jsonl file (it has: %s)", in.Pos, l, strings.Join(others, ", "))
		}
		sort.Strings(files)
		for _, f := range files {
			out = append(out, dataset.Input{Name: l.String() + "/" + f, Path: filepath.Join(root, filepath.FromSlash(f))})
		}
	}
	return out, nil
}

// datasetScores loads the scores.jsonl of where_metric's eval.
func datasetScores(ctx context.Context, a *Action, m *dataset.MetricFilter) error {
	dir, ok := a.InputDirs["where_metric.eval"]
	if !ok {
		return fmt.Errorf("where_metric: the eval's artifact was not staged")
	}
	path := dir
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		path = filepath.Join(dir, "scores.jsonl")
	}
	eval := inputLabel(a.Target, "where_metric", "eval")
	display := eval + "/scores.jsonl"
	if path == dir { // the label names the file itself
		display = eval
	}
	var metrics []string
	for _, c := range m.Conds {
		if !slices.Contains(metrics, c.Metric) {
			metrics = append(metrics, c.Metric)
		}
	}
	s, err := dataset.LoadScores(ctx, path, display, metrics)
	if err != nil {
		return err
	}
	m.Scores = s
	return nil
}

// datasetConfig reads the target's attributes (all but the row
// expressions and the scores, which need the action).
func datasetConfig(t *target.Target) (*dataset.Config, []AttrError) {
	p, errs := decode[datasetParams](t)
	if len(errs) > 0 {
		return nil, errs
	}
	return p.config(t.Label.Name)
}

// config is the dataset package's configuration for a target called name.
func (p *datasetParams) config(name string) (*dataset.Config, []AttrError) {
	cfg := &dataset.Config{Name: name}
	var errs []AttrError
	fail := func(attr, format string, args ...any) {
		errs = append(errs, AttrError{Attr: attr, Msg: fmt.Sprintf(format, args...)})
	}
	switch d := p.Dedupe; d {
	case "", dataset.DedupeExact, dataset.DedupeNormalized:
		cfg.Dedupe = d
	default:
		fail("dedupe", "%q: use %q or %q", d, dataset.DedupeExact, dataset.DedupeNormalized)
	}
	if p.DedupeFields != nil {
		if len(*p.DedupeFields) > 0 {
			cfg.DedupeFields = *p.DedupeFields
		}
		if cfg.Dedupe == "" {
			fail("dedupe_fields", `dedupe_fields needs dedupe = "exact" or "normalized_text"`)
		}
	}
	if p.MaxRowBytes != nil {
		n, err := datasetWholeF(float64(*p.MaxRowBytes), 1)
		if err != nil {
			fail("max_row_bytes", "%v", err)
		}
		cfg.MaxRowBytes = n
	}
	if v := p.WhereMetric; !v.IsNull() {
		m, err := datasetWhereMetric(v)
		if err != nil {
			fail("where_metric", "%v", err)
		}
		cfg.Metric = m
	}
	if v := p.Sample; !v.IsNull() {
		s, err := datasetSample(v)
		if err != nil {
			fail("sample", "%v", err)
		}
		cfg.Sample = s
	}
	if v := p.Split; v != nil {
		sp, err := datasetSplit(v)
		if err != nil {
			fail("split", "%v", err)
		}
		cfg.Split = sp
		if cfg.Sample != nil {
			cfg.SplitSeed = cfg.Sample.Seed
		}
	}
	if v := p.Episodes; !v.IsNull() {
		e, err := datasetEpisodes(v)
		if err != nil {
			fail("episodes", "%v", err)
		}
		cfg.Episodes = e
		switch {
		case e == nil:
		case len(cfg.Split) > 0 && !datasetHasSplit(cfg.Split, "train"):
			fail("episodes", `episodes are drawn from the train split, and split has no "train"`)
		case len(cfg.Split) == 0 && cfg.Name+".jsonl" == dataset.EpisodesFile:
			fail("episodes", "a dataset named %q cannot have episodes: both would be %s; rename the target", cfg.Name, dataset.EpisodesFile)
		}
	}
	return cfg, errs
}

func datasetHasSplit(sp []dataset.Share, name string) bool {
	for _, s := range sp {
		if s.Name == name {
			return true
		}
	}
	return false
}

// datasetGo converts an attribute's value to Go values as encoding/json
// decodes them (objects as maps, numbers as float64).
func datasetGo(v cty.Value) (any, error) {
	js, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, err
	}
	var x any
	err = json.Unmarshal(js, &x)
	return x, err
}

// datasetObject reads an object attribute, rejecting keys not in allowed
// (nil: any key).
func datasetObject(v cty.Value, example string, allowed ...string) (map[string]any, error) {
	x, err := datasetGo(v)
	if err != nil {
		return nil, err
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object such as %s", example)
	}
	if allowed != nil {
		for _, k := range sortedKeysOf(m) {
			if !slices.Contains(allowed, k) {
				return nil, fmt.Errorf("unknown key %q (accepted: %s)", k, strings.Join(allowed, ", "))
			}
		}
	}
	return m, nil
}

func sortedKeysOf[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func datasetWholeF(f float64, least int) (int, error) {
	if f != math.Trunc(f) || f < float64(least) || f > 1<<53 {
		return 0, fmt.Errorf("%g is not a whole number of at least %d", f, least)
	}
	return int(f), nil
}

func datasetSeed(m map[string]any) (uint64, error) {
	x, ok := m["seed"]
	if !ok {
		return 0, nil
	}
	f, ok := x.(float64)
	if !ok {
		return 0, fmt.Errorf("seed: expected a whole number")
	}
	n, err := datasetWholeF(f, 0)
	if err != nil {
		return 0, fmt.Errorf("seed: %v", err)
	}
	return uint64(n), nil
}

func datasetWhereMetric(v cty.Value) (*dataset.MetricFilter, error) {
	m, err := datasetObject(v, `{ eval = ":train_scores", perplexity_gt = 12.4 }`)
	if err != nil {
		return nil, err
	}
	if _, ok := m["eval"].(string); !ok {
		return nil, fmt.Errorf(`eval: name the eval whose scores to use: { eval = ":train_scores", perplexity_gt = 12.4 }`)
	}
	f := &dataset.MetricFilter{}
	for _, k := range sortedKeysOf(m) {
		if k == "eval" {
			continue
		}
		n, ok := m[k].(float64)
		if !ok {
			return nil, fmt.Errorf("%s: expected a number", k)
		}
		c, err := dataset.ParseCond(k, n)
		if err != nil {
			return nil, err
		}
		f.Conds = append(f.Conds, c)
	}
	if len(f.Conds) == 0 {
		return nil, fmt.Errorf("no threshold: add one such as perplexity_gt = 12.4 (<metric>_gt, _lt, _ge, _le)")
	}
	return f, nil
}

func datasetSample(v cty.Value) (*dataset.Sample, error) {
	const example = `{ by = ["domain", "difficulty"], quota = { easy = 0.4, hard = 0.6 }, n = 1000, seed = 7 }`
	m, err := datasetObject(v, example, "by", "quota", "n", "seed")
	if err != nil {
		return nil, err
	}
	s := &dataset.Sample{}
	switch by := m["by"].(type) {
	case string:
		s.By = []string{by}
	case []any:
		for _, b := range by {
			str, ok := b.(string)
			if !ok || str == "" {
				return nil, fmt.Errorf("by: expected field names")
			}
			if slices.Contains(s.By, str) {
				return nil, fmt.Errorf("by: %q twice", str)
			}
			s.By = append(s.By, str)
		}
	}
	if len(s.By) == 0 {
		return nil, fmt.Errorf("by: name the fields to stratify by, e.g. %s", example)
	}
	if q, ok := m["quota"]; ok {
		qm, ok := q.(map[string]any)
		if !ok || len(qm) == 0 {
			return nil, fmt.Errorf("quota: expected shares of the output keyed by values of one by field ({ easy = 0.4, hard = 0.6 })")
		}
		s.Quota = make(map[string]float64, len(qm))
		sum := 0.0
		for _, k := range sortedKeysOf(qm) {
			f, ok := qm[k].(float64)
			if !ok || f < 0 || f > 1 {
				return nil, fmt.Errorf("quota: %s: expected a share in [0, 1]", k)
			}
			s.Quota[k] = f
			sum += f
		}
		if math.Abs(sum-1) > 1e-9 {
			return nil, fmt.Errorf("quota: the shares add up to %g, not 1", sum)
		}
	}
	if n, ok := m["n"]; ok {
		f, ok := n.(float64)
		if !ok {
			return nil, fmt.Errorf("n: expected a whole number")
		}
		if s.N, err = datasetWholeF(f, 1); err != nil {
			return nil, fmt.Errorf("n: %v", err)
		}
	}
	if s.Seed, err = datasetSeed(m); err != nil {
		return nil, err
	}
	return s, nil
}

// datasetSplitName is what a split may be called: it names a file.
var datasetSplitName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func datasetSplit(m map[string]float64) ([]dataset.Share, error) {
	var out []dataset.Share
	sum := 0.0
	for _, name := range sortedKeysOf(m) {
		f := m[name]
		switch {
		case !datasetSplitName.MatchString(name):
			return nil, fmt.Errorf("%q is not a split name: use letters, digits, _ . -", name)
		case name == "stats" || name == "episodes":
			return nil, fmt.Errorf("a split cannot be called %q: the artifact has its own %s file", name, name)
		case f <= 0 || f > 1:
			return nil, fmt.Errorf("%s = %g: a share is in (0, 1]", name, f)
		}
		out = append(out, dataset.Share{Name: name, Share: f})
		sum += f
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no split: e.g. { train = 0.9, val = 0.05, test = 0.05 }")
	}
	if math.Abs(sum-1) > 1e-9 {
		return nil, fmt.Errorf("the shares add up to %g, not 1", sum)
	}
	return out, nil
}

func datasetEpisodes(v cty.Value) (*dataset.Episodes, error) {
	const example = `{ by = "domain", support = 5, query = 15, seed = 7 }`
	m, err := datasetObject(v, example, "by", "support", "query", "seed")
	if err != nil {
		return nil, err
	}
	e := &dataset.Episodes{}
	var ok bool
	if e.By, ok = m["by"].(string); !ok || e.By == "" {
		return nil, fmt.Errorf("by: name the field whose values are the tasks, e.g. %s", example)
	}
	for _, k := range []string{"support", "query"} {
		f, ok := m[k].(float64)
		if !ok {
			return nil, fmt.Errorf("%s: expected the number of rows per episode, e.g. %s", k, example)
		}
		n, err := datasetWholeF(f, 1)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		if k == "support" {
			e.Support = n
		} else {
			e.Query = n
		}
	}
	if e.Seed, err = datasetSeed(m); err != nil {
		return nil, err
	}
	return e, nil
}
