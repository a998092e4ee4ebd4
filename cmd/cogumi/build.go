package main

import (
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/internal/units"
)

type buildFlags struct {
	jobs       int
	cpus       float64
	memory     string
	keepGoing  bool
	keepFailed bool
	dryRun     bool
	rebuild    []string
	events     string
	download   string
	report     string
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [flags] TARGET...",
		Short: "Build targets and everything they need",
		Long: `Build brings the named targets up to date. A target runs only when its action
key (rule, attributes, input digests, declared environment) is new; otherwise its
result comes from the cache. Outputs appear under cogumi-out/<package>/<target>/.

Examples:
  cogumi build //models:final
  cogumi build //...                 everything
  cogumi build -j 1 --keep-going //data/...
  cogumi build --dry-run //models:final
  cogumi build --rebuild //models:base //models:final`,
		RunE: func(cmd *cobra.Command, args []string) error { return runBuild(cmd, g, f, args) },
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.jobs, "jobs", "j", runtime.NumCPU(), "run at most `N` actions at once")
	fl.Float64Var(&f.cpus, "cpus", float64(runtime.NumCPU()), "CPU budget that resources.cpus counts against")
	fl.StringVar(&f.memory, "memory", "", "memory budget that resources.memory counts against, e.g. 16GiB (default: the machine's)")
	fl.BoolVarP(&f.keepGoing, "keep-going", "k", false, "after a failure, go on building what does not depend on it")
	fl.BoolVar(&f.keepFailed, "keep-failed", false, "keep the scratch directory of a failed action for debugging")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "list what would run and why, without running anything")
	fl.StringArrayVar(&f.rebuild, "rebuild", nil, "run `TARGET` again even if cached (repeatable)")
	fl.StringVar(&f.download, "download", "minimal", "what to fetch from the remote cache: minimal (the named targets' outputs and the inputs of actions run here) or all")
	fl.StringVar(&f.events, "events", "", "write one JSON object per target to `FILE` (JSON Lines)")
	fl.StringVar(&f.report, "report", "", "write an HTML page about the build to `FILE` (see cogumi report)")
	return cmd
}

// budget checks the flags that size the build, before anything is loaded:
// the engine reads a zero budget as "the whole machine", so --cpus 0 or
// --memory 0 would silently mean the opposite of what was asked.
func (f buildFlags) budget(cmd *cobra.Command) (cpus float64, memory int64, err error) {
	if f.jobs < 1 {
		return 0, 0, &usageError{cmd, fmt.Errorf("-j must be at least 1 (it is %d)", f.jobs)}
	}
	if !(f.cpus > 0) || math.IsInf(f.cpus, 0) {
		return 0, 0, &usageError{cmd, fmt.Errorf("--cpus must be a positive number of cores, such as 4 or 0.5 (it is %v)", f.cpus)}
	}
	if f.memory == "" {
		return f.cpus, 0, nil
	}
	if memory, err = units.ParseBytes(f.memory); err != nil {
		return 0, 0, &usageError{cmd, fmt.Errorf("--memory: %w", err)}
	}
	if memory <= 0 {
		return 0, 0, &usageError{cmd, fmt.Errorf("--memory must be more than 0, such as 16GiB (leave it out for the machine's memory)")}
	}
	return f.cpus, memory, nil
}

func runBuild(cmd *cobra.Command, g *globals, f buildFlags, args []string) error {
	cpus, memory, err := f.budget(cmd)
	if err != nil {
		return err
	}
	w, err := g.load()
	if err != nil {
		return err
	}
	cfg := engine.Config{Jobs: f.jobs, CPUs: cpus, Memory: memory, KeepGoing: f.keepGoing, KeepFailed: f.keepFailed,
		Rebuild: make(map[label.Label]bool)}
	for _, r := range f.rebuild {
		l, err := label.Parse(r, w.pkg)
		if err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("--rebuild: %w", err)}
		}
		cfg.Rebuild[l] = true
	}
	var obs []engine.Observer
	prog := newProgress(g.stderr)
	g.prog = prog
	obs = append(obs, prog)
	if f.events != "" {
		ev, err := newEventLog(f.events)
		if err != nil {
			return &exitError{code: exitConfig, err: err}
		}
		defer func() {
			if cerr := ev.Close(); cerr != nil {
				fmt.Fprintln(g.stderr, "cogumi:", cerr)
			}
		}()
		obs = append(obs, ev)
	}
	spend := newAPISpend(w)
	obs = append(obs, spend)
	cfg.Observer = multiObserver(obs)
	switch f.download {
	case "minimal":
	case "all":
		cfg.DownloadAll = true
	default:
		return &exitError{code: exitConfig, err: fmt.Errorf("--download %q: use minimal or all", f.download)}
	}
	if err := g.withRemote(cmd, w, &cfg); err != nil {
		return err
	}
	e, err := g.engine(cmd.Context(), w, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := e.Close(); err != nil {
			fmt.Fprintln(g.stderr, "cogumi: warning:", err)
		}
	}()
	roots, err := w.labels(e, args)
	if err != nil {
		return err
	}
	if len(roots) == 0 {
		fmt.Fprintln(g.stderr, "cogumi: the workspace has no targets yet: nothing to build")
		return nil
	}
	for l := range cfg.Rebuild {
		if _, err := e.Select([]label.Pattern{{Pkg: l.Pkg, Name: l.Name}}); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("--rebuild: %w", err)}
		}
	}
	if f.dryRun {
		return dryRun(cmd, g, e, roots)
	}
	sum, err := e.Build(cmd.Context(), roots)
	prog.finish()
	if herr := recordMetricsHistory(g, w); herr != nil {
		fmt.Fprintln(g.stderr, "cogumi: warning: metrics history:", herr)
	}
	if line := spend.line(filepath.Join(w.ws.Root, "cogumi-out")); line != "" {
		fmt.Fprintln(g.stderr, line)
	}
	fmt.Fprintln(g.stderr, summaryLine(sum, err))
	if f.report != "" {
		if rerr := writeReport(g, w, f.report, nil); rerr != nil {
			fmt.Fprintln(g.stderr, "cogumi: warning: report:", rerr)
		}
	}
	return err
}

func dryRun(cmd *cobra.Command, g *globals, e *engine.Engine, roots []label.Label) error {
	items, err := e.Plan(cmd.Context(), roots)
	if err != nil {
		return err
	}
	n := 0
	for _, it := range items {
		if it.Stale {
			n++
			fmt.Fprintf(g.stdout, "would run %s (%s): %s\n", it.Label, it.Kind, strings.Join(it.Reasons, "; "))
		}
	}
	if n == 0 {
		fmt.Fprintln(g.stdout, "nothing to do: every target is up to date")
	} else {
		fmt.Fprintf(g.stdout, "%d action(s) would run\n", n)
	}
	return nil
}

func summaryLine(s engine.Summary, err error) string {
	head := "cogumi: build ok"
	switch {
	case err != nil && s.Failed > 0:
		head = "cogumi: build FAILED"
	case err != nil:
		head = "cogumi: build interrupted"
	case s.Executed == 0 && s.Remote == 0:
		head = "cogumi: up to date, nothing executed"
	}
	line := fmt.Sprintf("%s: %d executed, %d cached, %d failed", head, s.Executed, s.Cached+s.Remote, s.Failed)
	if s.Remote > 0 {
		line += fmt.Sprintf(" (%d from the remote cache)", s.Remote)
	}
	if s.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped", s.Skipped)
	}
	if s.Downloaded > 0 || s.Uploaded > 0 {
		line += fmt.Sprintf(", %s downloaded, %s uploaded", units.FormatBytes(s.Downloaded), units.FormatBytes(s.Uploaded))
	}
	line += fmt.Sprintf(" in %.2fs", s.Wall.Seconds())
	if s.PendingUploads > 0 {
		line += fmt.Sprintf("\ncogumi: %d result(s) not uploaded to the remote cache yet: the next build that reaches it sends them (or run `cogumi cache push`)", s.PendingUploads)
	}
	return line
}
