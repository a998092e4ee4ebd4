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
}

// laneNames lists lanes' names, and each action's by label.
func laneNames(acts []engine.ActionRecord) ([]string, map[string]string) {
	of, rows := lanes(acts)
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	by := make(map[string]string)
	for i, ks := range of {
		var ns []string
		for _, k := range ks {
			ns = append(ns, rows[k].name)
		}
		by[acts[i].Label] = strings.Join(ns, ", ")
	}
	return names, by
}

// Timeline lanes are named by where an action ran: its job slot here, each
// GPU it held, its Slurm job, a remote executor; overlapping actions never
// share a lane.
func TestLanes(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ran := func(l string, from, to float64, f func(*engine.ActionRecord)) engine.ActionRecord {
		a := engine.ActionRecord{Label: l, Kind: "run", Result: engine.Built, Start: at(from), End: at(to), Executor: "local"}
		f(&a)
		return a
	}
	acts := []engine.ActionRecord{
		ran("//p:a", 0, 4, func(a *engine.ActionRecord) { a.Slot = 2 }),
		ran("//p:b", 1, 3, func(a *engine.ActionRecord) { a.Slot = 1 }),
		ran("//p:c", 4, 5, func(a *engine.ActionRecord) { a.Slot = 1 }),
		ran("//p:train", 0, 6, func(a *engine.ActionRecord) {
			a.Slot, a.GPUs = 3, []string{"GPU-8f2a3b4c-1111-2222-3333-444455556666", "GPU-0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff"}
		}),
		ran("//p:sft", 6, 7, func(a *engine.ActionRecord) { a.Slot, a.GPUs = 3, []string{"GPU-0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff"} }),
		ran("//p:job", 2, 9, func(a *engine.ActionRecord) { a.Slot, a.Executor, a.JobID = 4, "cluster", "4242" }),
		ran("//p:far1", 1, 3, func(a *engine.ActionRecord) { a.Executor = "farm" }),
		ran("//p:far2", 2, 4, func(a *engine.ActionRecord) { a.Executor = "farm" }),
		{Label: "//p:hit", Kind: "run", Result: engine.Cached, Start: at(0), End: at(0.1)},
	}
	names, by := laneNames(acts)
	if got, want := strings.Join(names, " | "), "local 1 | local 2 | GPU 8f2a3b4c | GPU 0c1d2e3f | slurm 4242 | remote farm | remote farm 2"; got != want {
		t.Errorf("lanes = %s\nwant     %s", got, want)
	}
	for l, want := range map[string]string{
		"//p:a": "local 2", "//p:b": "local 1", "//p:c": "local 1",
		"//p:train": "GPU 8f2a3b4c, GPU 0c1d2e3f", "//p:sft": "GPU 0c1d2e3f",
		"//p:job": "slurm 4242", "//p:far1": "remote farm", "//p:far2": "remote farm 2", "//p:hit": "",
	} {
		if by[l] != want {
			t.Errorf("%s on %q, want %q", l, by[l], want)
		}
	}
	// A record without slots (written before they were kept): overlapping
	// actions spread over as few local lanes as they need.
	for i := range acts[:3] {
		acts[i].Slot = 0
	}
	names, by = laneNames(acts[:3])
	if strings.Join(names, " | ") != "local 1 | local 2" || by["//p:a"] != "local 1" || by["//p:b"] != "local 2" || by["//p:c"] != "local 1" {
		t.Errorf("without slots: lanes %v, actions %v", names, by)
	}
	// The page draws an action on each GPU it held and names the lanes.
	var b bytes.Buffer
	r := &engine.BuildRecord{ID: "x", Started: t0, Ended: at(9), Actions: acts}
	if err := Write(&b, r, Options{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, `class="b built" data-i="3"`); n != 2 {
		t.Errorf("//p:train drawn %d times on the timeline, want once per GPU", n)
	}
	for _, want := range []string{`<title>GPU-8f2a3b4c-1111-2222-3333-444455556666</title>GPU 8f2a3b4c</text>`, `>slurm 4242</text>`, `>remote farm 2</text>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// A cache hit whose outputs the last build left in place is up to date; a
// hit whose outputs were linked or fetched is a cache or remote hit; each
// has its colour, legend entry and count. (What the panel says of each is
// checked in the browser, cmd/cogumi's TestReportInBrowser.)
func TestUpToDate(t *testing.T) {
	r := rec()
	r.Actions = append(r.Actions,
		engine.ActionRecord{Label: "//m:kept", Kind: "run", Result: engine.Cached, UpToDate: true},
		engine.ActionRecord{Label: "//m:kept_remote", Kind: "run", Result: engine.Remote, UpToDate: true},
		engine.ActionRecord{Label: "//m:fetched", Kind: "run", Result: engine.Remote, Fetched: 2048},
		engine.ActionRecord{Label: "//m:src", Kind: "files", Result: engine.Source},
	)
	var b bytes.Buffer
	if err := Write(&b, r, Options{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`data-label="//m:side" data-status="cache hit"><rect class="cached"`,
		`data-label="//m:kept" data-status="up to date"><rect class="uptodate"`,
		`data-label="//m:kept_remote" data-status="up to date"><rect class="uptodate"`,
		`data-label="//m:fetched" data-status="remote hit"><rect class="remote"`,
		`data-label="//m:src" data-status="source files"><rect class="source"`,
		`<i class="sw uptodate"></i>up to date`, `.uptodate{fill:`,
		`<span data-count="up to date">2 up to date</span>`, `<span data-count="cache hit">1 cache hit</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
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
