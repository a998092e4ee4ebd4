package report

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/internal/units"
)

//go:embed page.html.tmpl
var files embed.FS

var page = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"bytes": func(n int64) string { return units.FormatBytes(n) },
}).ParseFS(files, "page.html.tmpl"))

// Options choose what a report shows.
type Options struct {
	// Targets, when set, narrows the graph to them and what they need.
	Targets []string
	// History are earlier records of the workspace, oldest first, for the
	// trends; the reported record may be among them.
	History []*engine.BuildRecord
	// Evals are the evaluations of the workspace, for their metrics.
	Evals []Eval
	// Gates are the gates of the workspace, with their checks.
	Gates []Gate
}

// Write writes the report of r as one HTML page.
func Write(w io.Writer, r *engine.BuildRecord, opt Options) error {
	acts, err := narrow(r.Actions, opt.Targets)
	if err != nil {
		return err
	}
	v := newView(r, acts)
	v.History = history(opt.History, r)
	byLabel := make(map[string]engine.ActionRecord, len(acts))
	for _, a := range acts {
		byLabel[a.Label] = a
	}
	var evals []Eval
	for _, e := range opt.Evals {
		if _, ok := byLabel[e.Label]; ok {
			evals = append(evals, e)
		}
	}
	var gates []Gate
	for _, g := range opt.Gates {
		if _, ok := byLabel[g.Label]; ok {
			gates = append(gates, g)
		}
	}
	v.addStages(acts, gates, byLabel)
	v.addEvals(evals, gates)
	v.addGates(gates, byLabel)
	return page.Execute(w, v)
}

// narrow keeps the actions of targets and everything they need; all of
// them without targets.
func narrow(acts []engine.ActionRecord, targets []string) ([]engine.ActionRecord, error) {
	if len(targets) == 0 {
		return acts, nil
	}
	idx := make(map[string]int, len(acts))
	for i, a := range acts {
		idx[a.Label] = i
	}
	keep := make([]bool, len(acts))
	var stack []int
	for _, t := range targets {
		i, ok := idx[t]
		if !ok {
			return nil, fmt.Errorf("%s was not part of this build", t)
		}
		stack = append(stack, i)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if keep[n] {
			continue
		}
		keep[n] = true
		for _, d := range acts[n].Deps {
			if j, ok := idx[d]; ok {
				stack = append(stack, j)
			}
		}
	}
	var out []engine.ActionRecord
	for i, a := range acts {
		if keep[i] {
			out = append(out, a)
		}
	}
	return out, nil
}

// Geometry of the drawings, in pixels.
const (
	nodeW, nodeH   = 150, 24
	colW, rowH     = 170, 64
	margin         = 10
	laneH, laneGap = 18, 4
	laneLabelW     = 160
	timelineW      = 1000
	barW           = 400
)

type view struct {
	ID, Started, Wall string
	Roots             string
	Sum               engine.Summary
	Counts            []count
	Nodes             []node
	Edges             []edge
	GraphW, GraphH    int
	Lanes             []lane
	Bars              []bar
	TimelineH         int
	Ticks             []tick
	CritSeconds       string
	Artifacts         []artifact
	Stages            []stage
	Evals             []evalView
	Gates             []gateView
	Spend             spend
	History           []trend
	Data              []detail // for the details panel, by node index
}

type count struct {
	Status string
	N      int
}

type node struct {
	I          int
	X, Y       int
	Status     string
	Label      string // as drawn: shortened to fit
	Crit       bool
	TextX      int
	TextY      int
	FullLabel  string
	StatusText string
}

type edge struct {
	X1, Y1, X2, Y2 int
	Crit           bool
}

type lane struct {
	Name, Title string
	Y           int
}

type bar struct {
	I          int
	X, Y, W    int
	Status     string
	Crit       bool
	Label      string
	StatusText string
}

type tick struct {
	X    int
	Text string
}

type artifact struct {
	Label, Kind, Size string
	W                 int
}

type spend struct {
	Requests, Sent, Reused int
	Cost, ReusedCost       float64
	HasAPI                 bool
	GPU                    []gpuUse
	Uploaded, Downloaded   int64
	Fetched                int64
}

type gpuUse struct {
	Label   string
	Seconds string
}

type trend struct {
	Name   string
	Last   string
	Points string // an SVG polyline
}

// detail is what the page shows about one target on hover or click.
type detail struct {
	Label    string  `json:"l"`
	Kind     string  `json:"k"`
	Status   string  `json:"s"`
	Reason   string  `json:"why,omitempty"`
	Error    string  `json:"err,omitempty"`
	Tail     string  `json:"tail,omitempty"`
	Seconds  float64 `json:"t"`
	In       string  `json:"in,omitempty"`
	Out      string  `json:"out,omitempty"`
	Fetched  string  `json:"fetched,omitempty"`
	Where    string  `json:"where,omitempty"`
	Critical bool    `json:"crit,omitempty"`
}

// statusOf names what happened to a target, as the page colours it. A
// cache hit that changed nothing (its outputs still in place from the last
// build) is up to date; one whose outputs were linked or fetched is a cache
// or remote hit.
func statusOf(a engine.ActionRecord, byLabel map[string]engine.ActionRecord) (class, text string) {
	switch a.Result {
	case engine.Built:
		return "built", "built"
	case engine.Cached, engine.Remote:
		if a.UpToDate {
			return "uptodate", "up to date"
		}
		if a.Result == engine.Remote {
			return "remote", "remote hit"
		}
		return "cached", "cache hit"
	case engine.Failed:
		return "failed", "failed"
	case engine.Source:
		return "source", "source files"
	case engine.Skipped:
		for _, d := range a.Deps {
			if dep := byLabel[d]; dep.Result == engine.Failed && dep.Kind == "gate" {
				return "gated", "skipped by a gate"
			}
		}
		return "skipped", "skipped"
	}
	return "skipped", string(a.Result)
}

func newView(r *engine.BuildRecord, acts []engine.ActionRecord) *view {
	v := &view{ID: r.ID, Started: r.Started.Local().Format("2006-01-02 15:04:05"),
		Wall: seconds(r.Ended.Sub(r.Started).Seconds()), Roots: strings.Join(r.Roots, " "), Sum: r.Summary}
	byLabel := make(map[string]engine.ActionRecord, len(acts))
	idx := make(map[string]int, len(acts))
	for i, a := range acts {
		byLabel[a.Label] = a
		idx[a.Label] = i
	}
	crit := criticalPath(acts)
	lay := layoutGraph(acts)
	counts := make(map[string]int)
	v.Data = make([]detail, len(acts))
	for i, a := range acts {
		class, text := statusOf(a, byLabel)
		counts[text]++
		x := margin + int(lay.pos[i])*colW
		y := margin + lay.layer[i]*rowH
		v.Nodes = append(v.Nodes, node{I: i, X: x, Y: y, Status: class, StatusText: text, Crit: crit[i],
			Label: shorten(a.Label, 22), FullLabel: a.Label, TextX: x + nodeW/2, TextY: y + nodeH/2 + 4})
		v.Data[i] = detailOf(a, text, crit[i])
	}
	for _, c := range []string{"built", "cache hit", "remote hit", "up to date", "failed", "skipped by a gate", "skipped", "source files"} {
		if counts[c] > 0 {
			v.Counts = append(v.Counts, count{c, counts[c]})
		}
	}
	for i, a := range acts {
		for _, d := range a.Deps {
			j, ok := idx[d]
			if !ok {
				continue
			}
			v.Edges = append(v.Edges, edge{
				X1: v.Nodes[j].X + nodeW/2, Y1: v.Nodes[j].Y + nodeH,
				X2: v.Nodes[i].X + nodeW/2, Y2: v.Nodes[i].Y, Crit: crit[i] && crit[j]})
		}
	}
	for _, row := range lay.rows {
		if w := 2*margin + len(row)*colW; w > v.GraphW {
			v.GraphW = w
		}
	}
	v.GraphH = 2*margin + len(lay.rows)*rowH
	v.timeline(acts, crit, byLabel)
	v.artifacts(acts)
	v.spend(r, acts)
	return v
}

func detailOf(a engine.ActionRecord, status string, crit bool) detail {
	d := detail{Label: a.Label, Kind: a.Kind, Status: status, Reason: a.Reason, Error: a.Error, Tail: a.LogTail,
		Seconds: roundMs(a.End.Sub(a.Start).Seconds()), Critical: crit}
	if a.BytesIn > 0 {
		d.In = units.FormatBytes(a.BytesIn)
	}
	if a.BytesOut > 0 {
		d.Out = units.FormatBytes(a.BytesOut)
	}
	if a.Fetched > 0 {
		d.Fetched = units.FormatBytes(a.Fetched)
	}
	var where []string
	switch {
	case a.Executor == "local" && a.Slot > 0:
		where = append(where, fmt.Sprintf("local, job slot %d", a.Slot))
	case a.Executor != "":
		where = append(where, a.Executor)
	}
	where = append(where, a.GPUs...)
	if a.JobID != "" {
		where = append(where, "job "+a.JobID)
	}
	d.Where = strings.Join(where, ", ")
	return d
}

// timeline draws the actions that ran as bars on lanes, over the build's
// wall time.
func (v *view) timeline(acts []engine.ActionRecord, crit map[int]bool, byLabel map[string]engine.ActionRecord) {
	laneOf, rows := lanes(acts)
	if len(rows) == 0 {
		return
	}
	var t0, t1 time.Time
	for i := range laneOf {
		a := acts[i]
		if t0.IsZero() || a.Start.Before(t0) {
			t0 = a.Start
		}
		if a.End.After(t1) {
			t1 = a.End
		}
	}
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 0.001
	}
	scale := float64(timelineW) / span
	for k, r := range rows {
		v.Lanes = append(v.Lanes, lane{Name: shorten(r.name, 24), Title: r.title, Y: 20 + k*(laneH+laneGap)})
	}
	var critSec float64
	for i, ks := range laneOf {
		a := acts[i]
		class, text := statusOf(a, byLabel)
		x := laneLabelW + int(a.Start.Sub(t0).Seconds()*scale)
		w := max(int(a.End.Sub(a.Start).Seconds()*scale), 2)
		for _, k := range ks { // an action on several GPUs is drawn on each
			v.Bars = append(v.Bars, bar{I: i, X: x, Y: 20 + k*(laneH+laneGap), W: w, Status: class, StatusText: text,
				Crit: crit[i], Label: a.Label})
		}
		if crit[i] {
			critSec += a.End.Sub(a.Start).Seconds()
		}
	}
	sort.Slice(v.Bars, func(a, b int) bool { return v.Bars[a].X < v.Bars[b].X })
	v.TimelineH = 20 + len(rows)*(laneH+laneGap) + 10
	for k := 0; k <= 5; k++ {
		v.Ticks = append(v.Ticks, tick{X: laneLabelW + k*timelineW/5, Text: seconds(span * float64(k) / 5)})
	}
	v.CritSeconds = seconds(critSec)
}

// artifacts lists the sizes of what the build made, along the chain.
func (v *view) artifacts(acts []engine.ActionRecord) {
	var biggest int64
	for _, a := range acts {
		biggest = max(biggest, a.BytesOut)
	}
	if biggest == 0 {
		return
	}
	for _, a := range acts {
		if a.BytesOut == 0 || a.Result == engine.Source {
			continue
		}
		v.Artifacts = append(v.Artifacts, artifact{Label: a.Label, Kind: a.Kind, Size: units.FormatBytes(a.BytesOut),
			W: max(int(float64(a.BytesOut)/float64(biggest)*barW), 1)})
		if len(v.Artifacts) == 200 {
			break // a page, not a listing: the biggest builds show their start
		}
	}
}

// apiStats are the fields of a rule's stats that count API requests
// (data/apigen's Report).
type apiStats struct {
	Requests   int     `json:"requests"`
	Sent       int     `json:"sent"`
	Reused     int     `json:"reused"`
	Cost       float64 `json:"cost"`
	ReusedCost float64 `json:"reused_cost"`
}

func (v *view) spend(r *engine.BuildRecord, acts []engine.ActionRecord) {
	s := &v.Spend
	s.Uploaded, s.Downloaded = r.Summary.Uploaded, r.Summary.Downloaded
	for _, a := range acts {
		s.Fetched += a.Fetched
		if len(a.Stats) > 0 {
			var st apiStats
			if json.Unmarshal(a.Stats, &st) == nil && st.Requests > 0 {
				s.HasAPI = true
				s.Requests += st.Requests
				s.Sent += st.Sent
				s.Reused += st.Reused
				s.Cost += st.Cost
				s.ReusedCost += st.ReusedCost
			}
		}
		if len(a.GPUs) > 0 && a.Ran() {
			s.GPU = append(s.GPU, gpuUse{a.Label, seconds(float64(len(a.GPUs)) * a.End.Sub(a.Start).Seconds())})
		}
	}
}

// history draws how builds went over the kept records: wall time and how
// many actions ran.
func history(recs []*engine.BuildRecord, cur *engine.BuildRecord) []trend {
	var kept []*engine.BuildRecord
	for _, h := range recs {
		if h.ID <= cur.ID {
			kept = append(kept, h)
		}
	}
	if len(kept) < 2 {
		return nil
	}
	series := []struct {
		name string
		f    func(*engine.BuildRecord) float64
		text func(float64) string
	}{
		{"wall time", func(h *engine.BuildRecord) float64 { return h.Ended.Sub(h.Started).Seconds() }, seconds},
		{"actions run", func(h *engine.BuildRecord) float64 { return float64(h.Summary.Executed) },
			func(x float64) string { return fmt.Sprint(int(x)) }},
		{"failed", func(h *engine.BuildRecord) float64 { return float64(h.Summary.Failed) },
			func(x float64) string { return fmt.Sprint(int(x)) }},
	}
	var out []trend
	for _, s := range series {
		ys := make([]float64, len(kept))
		for i, h := range kept {
			ys[i] = s.f(h)
		}
		out = append(out, trend{Name: s.name, Last: s.text(ys[len(ys)-1]), Points: sparkline(ys, 120, 24)})
	}
	return out
}

// sparkline returns the points of an SVG polyline of ys in w by h.
func sparkline(ys []float64, w, h float64) string {
	lo, hi := ys[0], ys[0]
	for _, y := range ys {
		lo, hi = min(lo, y), max(hi, y)
	}
	var b strings.Builder
	for i, y := range ys {
		x := w * float64(i) / float64(max(len(ys)-1, 1))
		py := h - 2
		if hi > lo {
			py = 2 + (h-4)*(1-(y-lo)/(hi-lo))
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, py)
	}
	return strings.TrimSpace(b.String())
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

func seconds(s float64) string {
	if s < 10 {
		return fmt.Sprintf("%.2fs", s)
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

func roundMs(s float64) float64 { return float64(int64(s*1000)) / 1000 }
