package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cogumi/cogumi/bench/gen"
)

// noopRows measures, for one graph of n targets: cogumi's first --dry-run
// (every source hashed, nothing cached), cogumi's no-op build after a full
// build, and ninja's and make's no-op builds of the same graph.
func noopRows(ctx context.Context, bin, tmp string, n, reps int) ([]row, error) {
	ws := filepath.Join(tmp, fmt.Sprintf("ws%d", n))
	fmt.Fprintf(os.Stderr, "generating %d targets\n", n)
	if err := gen.Write(ws, n, gen.Options{}); err != nil {
		return nil, err
	}
	cacheDir := filepath.Join(tmp, fmt.Sprintf("cache%d", n))
	env := []string{"COGUMI_CACHE_DIR=" + cacheDir}
	bench := fmt.Sprintf("no-op build, %d targets", n)
	var rows []row

	// A first dry run: a fresh cache each time, so every source is hashed.
	var dry []sample
	for i := 0; i < reps; i++ {
		os.RemoveAll(cacheDir)
		s, err := measure(ctx, ws, env, bin, "build", "--dry-run", "//...")
		if err != nil {
			return nil, err
		}
		dry = append(dry, s)
	}
	rows = append(rows, summarize(fmt.Sprintf("first --dry-run, %d targets", n), "cogumi", dry, "fresh cache: every source hashed"))

	fmt.Fprintf(os.Stderr, "full builds of %d targets (cogumi, ninja, make)\n", n)
	os.RemoveAll(cacheDir)
	full, err := measure(ctx, ws, env, bin, "build", "//...")
	if err != nil {
		return nil, err
	}
	rows = append(rows, summarize(fmt.Sprintf("full build, %d targets", n), "cogumi", []sample{full}, "one run"))
	tools := [][]string{{bin, "build", "//..."}}
	names := []string{"cogumi"}
	if _, err := exec.LookPath("ninja"); err == nil {
		s, err := measure(ctx, ws, nil, "ninja", "-j", fmt.Sprint(numCPU()))
		if err != nil {
			return nil, err
		}
		rows = append(rows, summarize(fmt.Sprintf("full build, %d targets", n), "ninja", []sample{s}, "one run"))
		tools = append(tools, []string{"ninja"})
		names = append(names, "ninja")
	}
	if _, err := exec.LookPath("make"); err == nil {
		s, err := measure(ctx, ws, nil, "make", "-s", "-j", fmt.Sprint(numCPU()))
		if err != nil {
			return nil, err
		}
		rows = append(rows, summarize(fmt.Sprintf("full build, %d targets", n), "make", []sample{s}, "one run"))
		tools = append(tools, []string{"make", "-s"})
		names = append(names, "make")
	}

	// No-op builds, alternating the tools.
	samples := make([][]sample, len(tools))
	for i := 0; i < reps; i++ {
		for t, argv := range tools {
			s, err := measure(ctx, ws, env, argv...)
			if err != nil {
				return nil, err
			}
			samples[t] = append(samples[t], s)
		}
	}
	for t := range tools {
		note := ""
		if names[t] == "cogumi" {
			note = "loads every BUILD.hcl, stats every source, checks every action key"
		}
		rows = append(rows, summarize(bench, names[t], samples[t], note))
	}
	return rows, nil
}
