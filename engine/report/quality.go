package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine"
)

// Eval is an evaluation of the build: its metrics.json and what the
// metrics history remembers of it.
type Eval struct {
	Label   string
	File    *metrics.File
	History []metrics.Entry // oldest first
}

// Gate is a gate of the build and its checks, evaluated on what the build
// left (rules.GateChecks); Err says why they could not be.
type Gate struct {
	Label             string
	Metrics, Baseline string // the labels of its evaluation and baseline
	Checks            []metrics.Check
	Err               string
}

// modelKinds are the rules whose artifact is a model, in the order a chain
// usually takes (checkpoint, pruned, AWQ, GGUF, compressed).
var modelKinds = []string{"model", "train", "prune", "awq", "merge_lora", "gguf", "compress"}

type stage struct {
	I           int // into Data
	Label, Kind string
	From        string // the model artifacts it was made from
	Size        string
	W           int
	Status      string
	Limits      []limitLine
}

// limitLine is a gate's max_bytes on a stage, drawn across its bar.
type limitLine struct {
	X          int
	Text, Gate string
	Pass       bool
}

type evalView struct {
	Label, Summary string
	Rows           []metricRow
}

type metricRow struct {
	Group, Name, Value string
	Points             string // a sparkline over the history; "" with fewer than two values
	Dot                string // the only value's position, with one
	Seen               int    // how many values the history holds
	Limits             []string
}

type gateView struct {
	Label, Verdict, Class, Err string
	Checks                     []checkView
}

type checkView struct {
	Check, Name, Value, Limit, Message string
	Pass                               bool
}

// addStages draws the size of every model artifact of the build, in
// dependency order, with a line at each gate's max_bytes on it. Sizes are
// in decimal units, as gates' limits are usually written ("890MB").
func (v *view) addStages(acts []engine.ActionRecord, gates []Gate, byLabel map[string]engine.ActionRecord) {
	isModel := func(a engine.ActionRecord) bool { return slices.Contains(modelKinds, a.Kind) }
	type sizeCheck struct {
		metrics.Check
		gate string
	}
	limits := make(map[string][]sizeCheck)
	for _, g := range gates {
		for _, c := range g.Checks {
			if c.Check == "max_bytes" {
				limits[c.Name] = append(limits[c.Name], sizeCheck{c, g.Label})
			}
		}
	}
	var biggest float64
	for _, a := range acts {
		if isModel(a) || len(limits[a.Label]) > 0 {
			biggest = max(biggest, float64(a.BytesOut))
			for _, c := range limits[a.Label] {
				biggest = max(biggest, c.Limit)
			}
		}
	}
	if biggest == 0 {
		return
	}
	scale := func(x float64) int { return max(int(x/biggest*barW), 1) }
	for i, a := range acts {
		if !isModel(a) && len(limits[a.Label]) == 0 {
			continue
		}
		var from []string
		for _, d := range a.Deps {
			if dep, ok := byLabel[d]; ok && isModel(dep) {
				from = append(from, d)
			}
		}
		class, _ := statusOf(a, byLabel)
		s := stage{I: i, Label: a.Label, Kind: a.Kind, From: strings.Join(from, ", "), Size: metrics.FormatSize(a.BytesOut, false),
			W: scale(float64(a.BytesOut)), Status: class}
		for _, c := range limits[a.Label] {
			s.Limits = append(s.Limits, limitLine{X: scale(c.Limit), Pass: c.Pass, Gate: c.gate,
				Text: "max_bytes " + metrics.FormatSize(int64(c.Limit), false)})
		}
		v.Stages = append(v.Stages, s)
	}
}

// addEvals lists each evaluation's metrics, overall then by group, with
// their history and the gate thresholds that name them.
func (v *view) addEvals(evals []Eval, gates []Gate) {
	limits := make(map[string][]string) // "label metric" -> "max 14 (//m:gate)"
	for _, g := range gates {
		for _, c := range g.Checks {
			if c.Check == "max_bytes" {
				continue
			}
			k := g.Metrics + " " + c.Name
			limits[k] = append(limits[k], fmt.Sprintf("%s %s (%s)", c.Check, metrics.FormatValue(c.Limit), g.Label))
		}
	}
	for _, e := range evals {
		if e.File == nil {
			continue
		}
		ev := evalView{Label: e.Label}
		var facts []string
		if e.File.Model != "" {
			facts = append(facts, "model "+e.File.Model)
		}
		if e.File.Dataset != "" {
			facts = append(facts, "on "+e.File.Dataset)
		}
		if e.File.Examples > 0 {
			facts = append(facts, fmt.Sprintf("%d examples", e.File.Examples))
		}
		if e.File.Runtime != "" {
			facts = append(facts, e.File.Runtime)
		}
		ev.Summary = strings.Join(facts, " · ")
		flat := e.File.Flat()
		names := make([]string, 0, len(flat))
		for n := range flat {
			names = append(names, n)
		}
		// Overall metrics first, then each group's.
		sort.Slice(names, func(a, b int) bool {
			da, db := strings.Contains(names[a], "."), strings.Contains(names[b], ".")
			if da != db {
				return !da
			}
			return names[a] < names[b]
		})
		for _, n := range names {
			row := metricRow{Name: n, Value: metrics.FormatValue(flat[n]), Limits: limits[e.Label+" "+n]}
			if g, m, ok := strings.Cut(n, "."); ok {
				row.Group, row.Name = e.File.By+" "+g, m
			}
			var ys []float64
			for _, h := range e.History {
				if y, ok := h.Metrics[n]; ok {
					ys = append(ys, y)
				}
			}
			row.Seen = len(ys)
			if len(ys) >= 2 {
				row.Points = sparkline(ys, 120, 24)
			} else if len(ys) == 1 {
				row.Dot = "60"
			}
			ev.Rows = append(ev.Rows, row)
		}
		v.Evals = append(v.Evals, ev)
	}
}

// addGates shows each gate's verdict in this build and every threshold.
func (v *view) addGates(gates []Gate, byLabel map[string]engine.ActionRecord) {
	for _, g := range gates {
		gv := gateView{Label: g.Label, Err: g.Err}
		a, ok := byLabel[g.Label]
		switch {
		case !ok:
			gv.Verdict, gv.Class = "not part of this build", "skipped"
		case a.Result == engine.Failed:
			gv.Verdict, gv.Class = "failed", "failed"
		case a.Result == engine.Skipped:
			gv.Verdict, gv.Class = "not evaluated (skipped)", "skipped"
		case a.Result == engine.Cached || a.Result == engine.Remote:
			gv.Verdict, gv.Class = "passed (cache hit)", "built"
		default:
			gv.Verdict, gv.Class = "passed", "built"
		}
		for _, c := range g.Checks {
			cv := checkView{Check: c.Check, Name: c.Name, Pass: c.Pass, Message: c.Message,
				Value: metrics.FormatValue(c.Value), Limit: metrics.FormatValue(c.Limit)}
			switch c.Check {
			case "max_bytes":
				cv.Value, cv.Limit = metrics.FormatSize(int64(c.Value), false), metrics.FormatSize(int64(c.Limit), false)
			case "max_increase_pct":
				cv.Value, cv.Limit = fmt.Sprintf("%+.2f%%", c.Value), fmt.Sprintf("%s%%", metrics.FormatValue(c.Limit))
			}
			gv.Checks = append(gv.Checks, cv)
		}
		v.Gates = append(v.Gates, gv)
	}
}
