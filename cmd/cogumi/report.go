package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/report"
	"github.com/cogumi/cogumi/internal/atomicfile"
	"github.com/cogumi/cogumi/rules"
)

func newReportCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report [flags] [TARGET...]",
		Short: "Write an HTML page about the last build",
		Long: `Report writes one self-contained HTML page (no network needed to open it) from
the record the last build left: its graph coloured by what happened to each
target (built; cache hit, its outputs linked from the local cache; remote
hit; up to date, its outputs still in place from the last build, nothing
done; failed; skipped by a gate), a timeline of the actions that ran with
the critical path marked, one lane per place they ran ("local 1" and on by
job slot, "GPU <UUID prefix>", "slurm <job id>", "remote <executor>"),
each gate's verdict and thresholds, the models by stage (sizes, with the
gates' max_bytes), each evaluation's metrics with their history, the size
of each artifact, trends over the last builds, and spend. Hover or
click a target for why it ran, its time, bytes and where it ran, and the log
tail of a failure. With targets, the graph shows only them and what they need.

Examples:
  cogumi report -o report.html
  cogumi report //models:final -o final.html
  cogumi build --report report.html //models:final`,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := g.load()
			if err != nil {
				return err
			}
			var targets []string
			for _, a := range args {
				l, err := label.Parse(a, w.pkg)
				if err != nil {
					return &exitError{code: exitConfig, err: err}
				}
				targets = append(targets, l.Target().String())
			}
			return writeReport(g, w, out, targets)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "report.html", "write the page to `FILE`")
	return cmd
}

// writeReport writes the report of the workspace's last build to path.
func writeReport(g *globals, w *workspace, path string, targets []string) error {
	c, err := g.openCache(w)
	if err != nil {
		return err
	}
	recs, err := engine.BuildRecords(engine.StateDir(c, w.ws.Root))
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return &exitError{code: exitConfig, err: fmt.Errorf("no build recorded in this workspace yet: run cogumi build first")}
	}
	opt := report.Options{Targets: targets, History: recs, Gates: reportGates(w)}
	if opt.Evals, err = reportEvals(g, w); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := report.Write(&b, recs[len(recs)-1], opt); err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	if err := atomicfile.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(g.stderr, "report: %s\n", abs)
	return nil
}

// reportEvals are the workspace's evaluations as the last build left them
// under cogumi-out, with their metrics history.
func reportEvals(g *globals, w *workspace) ([]report.Eval, error) {
	evals := evaluations(w, nil)
	if len(evals) == 0 {
		return nil, nil
	}
	path, err := historyPath(g, w)
	if err != nil {
		return nil, err
	}
	h := metrics.LoadHistory(path)
	var out []report.Eval
	for _, e := range evals {
		s, built, err := readSnapshot(w, e)
		if err != nil || !built {
			continue // not built, or not an evaluation's file: nothing to show
		}
		out = append(out, report.Eval{Label: s.Label, File: s.File, History: h.Targets[s.Label]})
	}
	return out, nil
}

// reportGates are the checks of the workspace's gates on what the last
// build left under cogumi-out: the gate's own thresholds, evaluated the
// way its action does, so a failed gate (which writes no gate.json) shows
// every threshold too.
func reportGates(w *workspace) []report.Gate {
	var out []report.Gate
	for _, t := range w.ws.Targets {
		if t.Kind != "gate" {
			continue
		}
		dirs := make(map[string]string)
		for _, in := range t.Inputs {
			if in.IsFile() {
				continue
			}
			k := in.Attr
			if in.Key != "" {
				k += "." + in.Key
			}
			l := in.Label
			dirs[k] = filepath.Join(w.ws.Root, "cogumi-out", filepath.FromSlash(l.Pkg), l.Name, filepath.FromSlash(l.Sub))
		}
		checks, cur, base, err := rules.GateChecks(context.Background(), t, func(attr string) (string, bool) {
			d, ok := dirs[attr]
			return d, ok
		})
		gt := report.Gate{Label: t.Label.String(), Metrics: cur, Baseline: base, Checks: checks}
		if err != nil {
			gt.Err = err.Error()
		}
		out = append(out, gt)
	}
	return out
}
