package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/internal/units"
)

// Gate checks thresholds on an evaluation's metrics and on artifact sizes:
//
//	gate "release" {
//	  metrics          = ":final_val"               # a target whose artifact holds metrics.json
//	  baseline         = ":base_val"                # for max_increase_pct
//	  min              = { accuracy = 0.6 }
//	  max              = { perplexity = 14.0 }      # "coding.perplexity": group coding of a by-eval
//	  max_increase_pct = { perplexity = 5 }
//	  max_bytes        = { ":final" = "890MB" }     # keys are labels: their artifacts' total sizes
//	}
//
// A gate that is not met fails, with one line per violated threshold, so
// nothing that depends on it runs. A met gate's artifact is gate.json,
// every check with its value, limit and outcome.
type Gate struct{}

func (Gate) Kind() string    { return "gate" }
func (Gate) Version() string { return "1" }

// gateParams are the attributes of a gate target. A threshold is a
// pointer: null is an error of its own ("has no value").
type gateParams struct {
	Metrics        string              `cogumi:"metrics,key,required,input=label" doc:"an evaluation: a target whose artifact holds metrics.json"`
	Baseline       string              `cogumi:"baseline,key,input=label" doc:"an evaluation to compare with, for max_increase_pct"`
	Min            map[string]*float64 `cogumi:"min,key" doc:"lowest accepted value of each metric (\"accuracy\", or \"group.metric\" for a group of a by-evaluation)"`
	Max            map[string]*float64 `cogumi:"max,key" doc:"highest accepted value of each metric (\"perplexity\", \"coding.perplexity\")"`
	MaxIncreasePct map[string]*float64 `cogumi:"max_increase_pct,key" doc:"highest accepted increase of each metric over the baseline's, in percent"`
	MaxBytes       map[string]*string  `cogumi:"max_bytes,key,input=labelkeymap" doc:"largest accepted total size of each artifact, keyed by label ({ \":final\" = \"890MB\" })"`
}

func (Gate) Schema() Schema {
	return Schema{Summary: "thresholds on an evaluation's metrics and on artifact sizes; a violated one fails the build", Attrs: attrsOf[gateParams]()}
}

func (Gate) Check(t *target.Target) []AttrError {
	p, errs := decode[gateParams](t)
	if len(errs) > 0 {
		return errs
	}
	for _, th := range []struct {
		attr string
		m    map[string]*float64
	}{{"min", p.Min}, {"max", p.Max}, {"max_increase_pct", p.MaxIncreasePct}} {
		errs = append(errs, gateCheckMetrics(th.attr, th.m)...)
	}
	for _, key := range sortedKeysOf(p.MaxBytes) {
		switch s := p.MaxBytes[key]; {
		case s == nil:
			errs = append(errs, AttrError{Attr: "max_bytes", Msg: fmt.Sprintf("%q has no value", key)})
		default:
			if _, err := units.ParseBytes(*s); err != nil {
				errs = append(errs, AttrError{Attr: "max_bytes", Msg: fmt.Sprintf("%s: %v", key, err)})
			}
		}
	}
	if len(p.Min)+len(p.Max)+len(p.MaxIncreasePct)+len(p.MaxBytes) == 0 {
		errs = append(errs, AttrError{Msg: "a gate needs at least one threshold: min, max, max_increase_pct or max_bytes"})
	}
	if len(p.MaxIncreasePct) > 0 && p.Baseline == "" {
		errs = append(errs, AttrError{Attr: "max_increase_pct", Msg: "max_increase_pct compares with a baseline: set baseline to an evaluation"})
	}
	return errs
}

// gateCheckMetrics checks the metric names and values of one threshold
// attribute, in key order.
func gateCheckMetrics(attr string, m map[string]*float64) []AttrError {
	var errs []AttrError
	for _, key := range sortedKeysOf(m) {
		f := m[key]
		if f == nil {
			errs = append(errs, AttrError{Attr: attr, Msg: fmt.Sprintf("%q has no value", key)})
			continue
		}
		if g, m, dotted := strings.Cut(key, "."); key == "" || dotted && (g == "" || m == "" || strings.Contains(m, ".")) {
			errs = append(errs, AttrError{Attr: attr, Msg: fmt.Sprintf(`metric name %q: write "metric" or "group.metric"`, key)})
		}
		if attr == "max_increase_pct" && *f < 0 {
			errs = append(errs, AttrError{Attr: attr, Msg: fmt.Sprintf("%s: %g is negative: the metric would have to improve; use max against the baseline's value instead", key, *f)})
		}
	}
	return errs
}

func (Gate) Outs(*target.Target) []string { return []string{"gate.json"} }

// gateReport is gate.json.
type gateReport struct {
	Version  int             `json:"version"`
	Pass     bool            `json:"pass"`
	Metrics  string          `json:"metrics"`
	Baseline string          `json:"baseline,omitempty"`
	Checks   []metrics.Check `json:"checks"`
}

func (Gate) Execute(ctx context.Context, a *Action) error {
	checks, cur, base, err := GateChecks(ctx, a.Target, a.inputDir)
	if err != nil {
		return err
	}
	var failed []string
	for _, c := range checks {
		mark := "ok  "
		if !c.Pass {
			mark = "FAIL"
			failed = append(failed, c.Message)
		}
		fmt.Fprintf(a.Log, "%s %s\n", mark, c.Message)
	}
	switch len(failed) {
	case 0:
	case 1:
		return fmt.Errorf("gate not met: %s", failed[0])
	default:
		return fmt.Errorf("gate not met (%d thresholds):\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	rep := gateReport{Version: 1, Pass: true, Metrics: cur, Checks: checks, Baseline: base}
	fmt.Fprintf(a.Log, "gate met: %d check(s) passed\n", len(checks))
	return writeJSONFile(filepath.Join(a.Out, "gate.json"), rep)
}

// GateChecks evaluates the thresholds of the gate target t against the
// artifacts dirOf finds for its label-valued attributes ("metrics",
// "baseline", "max_bytes.<key>", as Action.InputDirs names them): the
// checks its action makes, met or not, and the labels of its evaluation
// and baseline ("" without one). `cogumi report` calls it on the
// workspace's outputs to show a gate's thresholds, failed ones included
// (a failed gate writes no gate.json).
func GateChecks(ctx context.Context, t *target.Target, dirOf func(attr string) (string, bool)) (checks []metrics.Check, cur, base string, err error) {
	p, errs := decode[gateParams](t)
	if len(errs) > 0 {
		e := errs[0]
		return nil, "", "", fmt.Errorf("%s: attribute %q: %s", t.AttrPos[e.Attr], e.Attr, e.Msg)
	}
	curS, err := gateEvalInput(t, dirOf, "metrics")
	if err != nil {
		return nil, "", "", err
	}
	th := metrics.Thresholds{Min: gateNumbers(p.Min), Max: gateNumbers(p.Max), MaxIncreasePct: gateNumbers(p.MaxIncreasePct)}
	var baseS *metrics.Subject
	if p.Baseline != "" {
		b, err := gateEvalInput(t, dirOf, "baseline")
		if err != nil {
			return nil, "", "", err
		}
		baseS, base = &b, b.Label
	}
	for _, k := range sortedKeysOf(p.MaxBytes) {
		if err := ctx.Err(); err != nil {
			return nil, "", "", err
		}
		if p.MaxBytes[k] == nil {
			continue // reported by Check
		}
		written := *p.MaxBytes[k]
		limit, err := units.ParseBytes(written)
		if err != nil {
			return nil, "", "", fmt.Errorf("max_bytes: %s: %w", k, err)
		}
		dir, ok := dirOf("max_bytes." + k)
		if !ok {
			return nil, "", "", fmt.Errorf("max_bytes: %s: no input staged", k)
		}
		size, err := gateTreeSize(dir)
		if err != nil {
			return nil, "", "", fmt.Errorf("max_bytes: %s: %w", k, err)
		}
		th.MaxBytes = append(th.MaxBytes, metrics.SizeLimit{Label: inputLabel(t, "max_bytes", k), Limit: limit, Written: written, Size: size})
	}
	checks, err = metrics.Evaluate(th, curS, baseS)
	return checks, curS.Label, base, err
}

// inputDir is the staged path of the input of attr ("max_bytes.k" for a
// map's key), as InputDirs holds it.
func (a *Action) inputDir(attr string) (string, bool) {
	dir, ok := a.InputDirs[attr]
	return dir, ok
}

// writeJSONFile writes v as indented JSON, with "<" and ">" as written
// (messages hold comparisons).
func writeJSONFile(path string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// gateEvalInput reads the metrics.json of the evaluation named by attr.
func gateEvalInput(t *target.Target, dirOf func(string) (string, bool), attr string) (metrics.Subject, error) {
	l := inputLabel(t, attr, "")
	dir, ok := dirOf(attr)
	if !ok {
		return metrics.Subject{}, fmt.Errorf("%s: no input staged", attr)
	}
	path := filepath.Join(dir, metrics.FileName)
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		path = dir // the label names the file itself (":eval/metrics.json")
	}
	if _, err := os.Stat(path); err != nil {
		return metrics.Subject{}, fmt.Errorf("%s: %s has no %s in its artifact: name an evaluation", attr, l, metrics.FileName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return metrics.Subject{}, fmt.Errorf("%s: reading %s of %s: %w", attr, metrics.FileName, l, err)
	}
	f, err := metrics.Parse(b, l+"'s "+metrics.FileName)
	if err != nil {
		return metrics.Subject{}, fmt.Errorf("%s: %w", attr, err)
	}
	return metrics.Subject{Label: l, File: f}, nil
}

// gateNumbers returns the thresholds that have a value (Check reported
// the others); nil when there are none.
func gateNumbers(m map[string]*float64) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, f := range m {
		if f != nil {
			out[k] = *f
		}
	}
	return out
}

// gateTreeSize is the total size of the files under path (or of the file),
// following the links staging makes into the CAS.
func gateTreeSize(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			if total > math.MaxInt64-info.Size() {
				return fmt.Errorf("total size overflows")
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measuring %s: %w", path, err)
	}
	return total, nil
}
