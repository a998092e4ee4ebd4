package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

func newMetricsCmd(g *globals) *cobra.Command {
	var plot string
	var history, asJSON, wide bool
	cmd := &cobra.Command{
		Use:   "metrics [flags] [TARGET...]",
		Short: "Show the metrics of evaluations (default: every eval target)",
		Long: `Metrics prints the metrics of every evaluation among the named targets (default
//...), read from their current outputs under cogumi-out, with the change from
the build before: "11.92 (-0.41)". Evaluations are eval targets and targets
that declare a metrics.json output in the evaluation format. A by-evaluation's
groups follow as group.metric rows, the names gate thresholds use.

A files target stands for its sources: the evaluations it groups.

--wide prints one row per evaluation and one column per metric, groups
left out: evaluations of one dataset side by side, e.g. each quantised
file's size (model_bytes, which an eval of a GGUF records), perplexity and
KL divergence from the float model (kld_mean, with eval's reference).

--plot draws them: bars comparing the targets, or with --history lines across
the builds that changed them. FILE.svg and FILE.png show the same plot, labels
included (the PNG's text is drawn in the Go font, compiled into cogumi).

Examples:
  cogumi metrics
  cogumi metrics //models/... --json
  cogumi metrics --wide //models:table
  cogumi metrics --plot metrics.svg
  cogumi metrics --history --plot history.png`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMetrics(g, defaultAll(args), plot, history, asJSON, wide)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&plot, "plot", "", "also draw the metrics to `FILE` (.svg or .png)")
	fl.BoolVar(&history, "history", false, "with --plot: draw each metric across builds instead of across targets")
	fl.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	fl.BoolVar(&wide, "wide", false, "one row per evaluation, one column per metric (groups left out)")
	return cmd
}

// evalTarget is an evaluation of the workspace.
type evalTarget struct {
	label label.Label
	kind  string
}

// evaluations lists the workspace's evaluations matching pats, in label
// order: eval targets, and targets declaring metrics.json as an output
// (a script's evaluation written as a run target).
// A files target among them stands for its sources: `cogumi metrics
// //models:table` shows the evaluations that group names.
func evaluations(w *workspace, pats []label.Pattern) []evalTarget {
	named := func(l label.Label) bool {
		return slices.ContainsFunc(pats, func(p label.Pattern) bool { return p.Matches(l) })
	}
	grouped := map[label.Label]bool{}
	for _, t := range w.ws.Targets {
		if pats != nil && t.Kind == "files" && named(t.Label) {
			for _, d := range t.Deps() {
				grouped[d] = true
			}
		}
	}
	var out []evalTarget
	for _, t := range w.ws.Targets {
		if pats != nil && !named(t.Label) && !grouped[t.Label] {
			continue
		}
		if t.Kind != "eval" {
			rule, ok := w.rules.Lookup(t.Kind)
			if !ok || !slices.Contains(rule.Outs(t), metrics.FileName) {
				continue
			}
		}
		out = append(out, evalTarget{label: t.Label, kind: t.Kind})
	}
	slices.SortFunc(out, func(a, b evalTarget) int { return strings.Compare(a.label.String(), b.label.String()) })
	return out
}

// readSnapshot reads an evaluation's current metrics.json under cogumi-out.
// built is false when there is none.
func readSnapshot(w *workspace, e evalTarget) (snap metrics.Snapshot, built bool, err error) {
	path := filepath.Join(w.ws.Root, "cogumi-out", filepath.FromSlash(e.label.Pkg), e.label.Name, metrics.FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return metrics.Snapshot{}, false, nil
	}
	if err != nil {
		return metrics.Snapshot{}, true, err
	}
	f, err := metrics.Parse(b, filepath.ToSlash(filepath.Join("cogumi-out", e.label.Pkg, e.label.Name, metrics.FileName)))
	if err != nil {
		return metrics.Snapshot{}, true, err
	}
	return metrics.Snapshot{Label: e.label.String(), Digest: cache.DigestBytes(b).String(), File: f}, true, nil
}

// historyPath is the metrics history of the workspace, beside the
// engine's state.json.
func historyPath(g *globals, w *workspace) (string, error) {
	c, err := g.openCache(w)
	if err != nil {
		return "", err
	}
	return filepath.Join(engine.StateDir(c, w.ws.Root), metrics.HistoryName), nil
}

// recordMetricsHistory appends to the history every evaluation whose
// metrics.json changed since it was last recorded. It runs after each
// build, failed or not: a build that failed later may still have changed
// an evaluation. Reading a few small files is all a no-op build costs.
func recordMetricsHistory(g *globals, w *workspace) error {
	evals := evaluations(w, nil)
	if len(evals) == 0 {
		return nil
	}
	path, err := historyPath(g, w)
	if err != nil {
		return err
	}
	h := metrics.LoadHistory(path)
	keep := make(map[string]bool, len(evals))
	var snaps []metrics.Snapshot
	for _, e := range evals {
		keep[e.label.String()] = true
		s, built, err := readSnapshot(w, e)
		if err != nil || !built {
			continue // not an evaluation's file, or not built: nothing to remember
		}
		snaps = append(snaps, s)
	}
	if !h.Record(snaps, keep, time.Now()) {
		return nil
	}
	return h.Save(path)
}

func runMetrics(g *globals, args []string, plot string, history, asJSON, wide bool) error {
	w, err := g.load()
	if err != nil {
		return err
	}
	pats, err := w.patterns(args)
	if err != nil {
		return err
	}
	for _, p := range pats {
		if !slices.ContainsFunc(w.ws.Targets, func(t *target.Target) bool { return p.Matches(t.Label) }) {
			return &exitError{code: exitConfig, err: fmt.Errorf("%s matches no target", p)}
		}
	}
	ext := strings.ToLower(filepath.Ext(plot))
	if plot != "" && ext != ".svg" && ext != ".png" {
		return &exitError{code: exitConfig, err: fmt.Errorf("--plot %s: name a .svg or .png file", plot)}
	}
	if history && plot == "" {
		return &exitError{code: exitConfig, err: fmt.Errorf("--history draws a plot: add --plot FILE.svg or FILE.png")}
	}
	path, err := historyPath(g, w)
	if err != nil {
		return err
	}
	h := metrics.LoadHistory(path)
	evals := evaluations(w, pats)
	var reports []metrics.TargetReport
	var snaps []metrics.Snapshot
	var labels []string
	for _, e := range evals {
		labels = append(labels, e.label.String())
		s, built, err := readSnapshot(w, e)
		switch {
		case !built:
			reports = append(reports, metrics.TargetReport{Target: e.label.String(), Kind: e.kind})
			continue
		case err != nil && e.kind != "eval":
			continue // a metrics.json that is not an evaluation's
		case err != nil:
			reports = append(reports, metrics.TargetReport{Target: e.label.String(), Kind: e.kind, Built: true, Error: err.Error()})
			continue
		}
		var prev *metrics.Entry
		if p, ok := h.Previous(s.Label, s.Digest); ok {
			prev = &p
		}
		reports = append(reports, metrics.NewReport(s.Label, e.kind, s.File, prev))
		snaps = append(snaps, s)
	}
	if asJSON {
		err = metrics.WriteJSON(g.stdout, reports)
	} else if len(reports) == 0 {
		fmt.Fprintf(g.stdout, "no evaluations among %s (eval targets, or targets with a metrics.json output)\n", strings.Join(args, " "))
	} else if wide {
		err = metrics.WriteWide(g.stdout, reports)
	} else {
		err = metrics.WriteTable(g.stdout, reports)
	}
	if err != nil || plot == "" {
		return err
	}
	chart := metrics.BarChart(snaps)
	if history {
		chart = metrics.HistoryChart(h, labels)
	}
	var buf bytes.Buffer
	if ext == ".svg" {
		err = metrics.WriteSVG(&buf, chart)
	} else {
		err = metrics.WritePNG(&buf, chart)
	}
	if err != nil {
		return fmt.Errorf("drawing %s: %w", plot, err)
	}
	if err := os.WriteFile(plot, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if !asJSON {
		fmt.Fprintf(g.stderr, "cogumi: wrote %s (%d panel(s))\n", plot, len(chart.Panels))
	}
	return nil
}
