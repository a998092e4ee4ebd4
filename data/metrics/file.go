// Package metrics reads what evaluations leave in their artifacts
// (metrics.json, scores.jsonl), checks thresholds on them, remembers their
// values across builds, and prints and plots them.
package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// FileName is the name of an evaluation's metrics file in its artifact.
const FileName = "metrics.json"

// File is an evaluation's metrics.json (version 1):
//
//	{"version":1,"model":"//pkg:name","dataset":"//data:val","runtime":"...",
//	 "metrics":{"perplexity":11.92},"examples":N,"tokens":T,
//	 "by":"domain","groups":{"coding":{"metrics":{...},"examples":40,"tokens":5120}}}
type File struct {
	Version  int                `json:"version"`
	Model    string             `json:"model,omitempty"`
	Dataset  string             `json:"dataset,omitempty"`
	Runtime  string             `json:"runtime,omitempty"`
	Metrics  map[string]float64 `json:"metrics"`
	Examples int64              `json:"examples,omitempty"`
	Tokens   int64              `json:"tokens,omitempty"`
	By       string             `json:"by,omitempty"`
	Groups   map[string]Group   `json:"groups,omitempty"`
}

// Group is the metrics of one group of a by-evaluation.
type Group struct {
	Metrics  map[string]float64 `json:"metrics"`
	Examples int64              `json:"examples,omitempty"`
	Tokens   int64              `json:"tokens,omitempty"`
}

// Parse decodes and validates a metrics.json; name says where it came from
// in messages.
func Parse(b []byte, name string) (*File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: not an evaluation's metrics.json: %w", name, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: metrics.json version %d: this cogumi reads version 1", name, f.Version)
	}
	if f.Metrics == nil {
		return nil, fmt.Errorf(`%s: metrics.json has no "metrics" object`, name)
	}
	check := func(where string, m map[string]float64) error {
		for k, v := range m {
			if k == "" || strings.Contains(k, ".") {
				return fmt.Errorf("%s: metric name %q%s: names must be non-empty and hold no dot", name, k, where)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s: metric %s%s is %v", name, k, where, v)
			}
		}
		return nil
	}
	if err := check("", f.Metrics); err != nil {
		return nil, err
	}
	for g, gm := range f.Groups {
		if g == "" || strings.Contains(g, ".") {
			return nil, fmt.Errorf("%s: group name %q: names must be non-empty and hold no dot", name, g)
		}
		if err := check(" of group "+g, gm.Metrics); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// Read reads and validates the metrics.json at path.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(b, path)
}

// Value returns a metric by name: "perplexity" for the whole evaluation,
// "coding.perplexity" for group coding of a by-evaluation.
func (f *File) Value(name string) (float64, bool) {
	if g, m, ok := strings.Cut(name, "."); ok {
		gr, ok := f.Groups[g]
		if !ok {
			return 0, false
		}
		v, ok := gr.Metrics[m]
		return v, ok
	}
	v, ok := f.Metrics[name]
	return v, ok
}

// Names lists every metric of the file, whole-evaluation metrics first,
// then "group.metric" for each group, each part sorted.
func (f *File) Names() []string {
	out := sortedKeys(f.Metrics)
	for _, g := range sortedKeys(f.Groups) {
		for _, m := range sortedKeys(f.Groups[g].Metrics) {
			out = append(out, g+"."+m)
		}
	}
	return out
}

// Flat returns every metric keyed as Names spells them.
func (f *File) Flat() map[string]float64 {
	out := make(map[string]float64)
	for _, n := range f.Names() {
		out[n], _ = f.Value(n)
	}
	return out
}

// missing explains a metric name the file does not hold.
func (f *File) missing(name, where string) error {
	names := f.Names()
	have := "no metrics"
	if len(names) > 0 {
		have = "it has " + strings.Join(names, ", ")
	}
	if g, _, ok := strings.Cut(name, "."); ok {
		if _, isGroup := f.Groups[g]; !isGroup {
			groups := sortedKeys(f.Groups)
			if len(groups) == 0 {
				return fmt.Errorf("metric %q: %s has no groups (its evaluation has no by); %s", name, where, have)
			}
			return fmt.Errorf("metric %q: %s has no group %q (groups: %s)", name, where, g, strings.Join(groups, ", "))
		}
	}
	return fmt.Errorf("metric %q is not in %s's metrics.json (%s)", name, where, have)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
