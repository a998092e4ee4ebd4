package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine"
)

func rec() *engine.BuildRecord {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	return &engine.BuildRecord{
		ID: "20261205T100000Z", Started: t0, Ended: at(10), Roots: []string{"//m:publish", "//m:side"},
		Actions: []engine.ActionRecord{
			{Label: "//m:train", Kind: "run", Result: engine.Built, Reason: "never built", Start: at(0), End: at(6),
				Executor: "local", GPUs: []string{"GPU-aaaa"}, BytesOut: 1000},
			{Label: "//m:eval", Kind: "run", Result: engine.Built, Deps: []string{"//m:train"}, Start: at(6), End: at(8), Executor: "local"},
			{Label: "//m:side", Kind: "run", Result: engine.Cached, Start: at(0), End: at(0.1)},
			{Label: "//m:gate", Kind: "gate", Result: engine.Failed, Deps: []string{"//m:eval"}, Start: at(8), End: at(9),
				Executor: "local", Error: "gate not met: accuracy 0.4 < min 0.5", LogTail: "FAIL accuracy <0.4>"},
			{Label: "//m:publish", Kind: "run", Result: engine.Skipped, Deps: []string{"//m:gate", "//m:train"}},
		},
	}
}

func TestLayoutAndCriticalPath(t *testing.T) {
	r := rec()
	l := layoutGraph(r.Actions)
	if got := l.layer; got[0] != 0 || got[1] != 1 || got[2] != 0 || got[3] != 2 || got[4] != 3 {
		t.Errorf("layers = %v", got)
	}
	crit := criticalPath(r.Actions)
	if len(crit) != 3 || !crit[0] || !crit[1] || !crit[3] {
		t.Errorf("critical path = %v, want train, eval, gate", crit)
	}
	lane, names := lanes(r.Actions)
	if len(names) != 2 || names[0] != "GPU GPU-aaaa" || lane[0] != 0 || lane[1] != 1 || lane[3] != 1 {
		t.Errorf("lanes = %v %v", lane, names)
	}
}

// The page is one file: nothing it shows is fetched, and what a build
// wrote (a log tail) is escaped.
func TestWriteSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, rec(), Options{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"http://", "https://", "<link", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{`data-status="skipped by a gate"`, `data-status="cache hit"`, "gate not met: accuracy 0.4 &lt; min 0.5", `\u003c0.4\u003e`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	b.Reset()
	if err := Write(&b, rec(), Options{Targets: []string{"//m:eval"}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `data-label="//m:side"`) || !strings.Contains(b.String(), `data-label="//m:train"`) {
		t.Error("narrowed to //m:eval, the graph should hold it and //m:train only")
	}
	if err := Write(&b, rec(), Options{Targets: []string{"//m:nope"}}); err == nil {
		t.Error("a target not in the build was accepted")
	}
}

// quality is what a workspace knows of rec's evaluation and gate: the
// gate failed on a metric and met its size limit on the trained model.
func quality() Options {
	f := &metrics.File{Version: 1, Model: "//m:train", Metrics: map[string]float64{"accuracy": 0.4}, By: "domain",
		Groups: map[string]metrics.Group{"coding": {Metrics: map[string]float64{"accuracy": 0.3}}}}
	return Options{
		Evals: []Eval{{Label: "//m:eval", File: f, History: []metrics.Entry{
			{Build: 1, Metrics: map[string]float64{"accuracy": 0.6, "coding.accuracy": 0.5}},
			{Build: 2, Metrics: map[string]float64{"accuracy": 0.4, "coding.accuracy": 0.3}}}}},
		Gates: []Gate{{Label: "//m:gate", Metrics: "//m:eval", Checks: []metrics.Check{
			{Check: "min", Name: "accuracy", Value: 0.4, Limit: 0.5, Message: "accuracy 0.4 < min 0.5 (//m:eval)"},
			{Check: "max_bytes", Name: "//m:train", Value: 1000, Limit: 2000, Pass: true, Message: "//m:train is 1 kB <= max_bytes 2kB"},
		}}},
	}
}

// The models by stage, each evaluation's metrics with their history, and
// each gate's verdict and thresholds.
func TestWriteQuality(t *testing.T) {
	r := rec()
	r.Actions[0].Kind = "train"
	var b bytes.Buffer
	if err := Write(&b, r, quality()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<section id="stages">`, `<line class="lim ok" x1="400"`, "max_bytes 2 kB (//m:gate)", // the limit is the widest: the bar's end
		`<section id="metrics">`, `domain coding: accuracy`, `<polyline points="0.0,2.0 120.0,22.0"`, "min 0.5 (//m:gate)",
		`<section id="gates">`, `<span class="verdict failed">failed</span>`, `data-pass="false"`, "✗ not met", "✓ met",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
