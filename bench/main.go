// Command bench measures cogumi against the tools its users run today, side
// by side in one run on the same data, and writes a Markdown table and JSON.
//
//	go run ./bench -o bench/results.md             # defaults: 1K and 10K targets
//	go run ./bench -sizes 1000,10000,100000 -o ...  # the large size too
//
// Each comparison alternates the tools over several repetitions and reports
// the median and the range of wall time, the CPU time and the peak RSS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "bench/results.md", "Markdown `FILE` to write (JSON goes beside it)")
	sizes := flag.String("sizes", "1000,10000", "comma-separated target counts for the no-op benchmark")
	reps := flag.Int("reps", 5, "repetitions of each measurement")
	keep := flag.Bool("keep", false, "keep the generated workspaces")
	flag.Parse()
	if err := run(context.Background(), *out, *sizes, *reps, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, sizeList string, reps int, keep bool) error {
	var ns []int
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-sizes: bad size %q", s)
		}
		ns = append(ns, n)
	}
	tmp, err := os.MkdirTemp("", "cogumi-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	bin := filepath.Join(tmp, "cogumi")
	fmt.Fprintln(os.Stderr, "building cogumi")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/cogumi")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building cogumi: %w", err)
	}
	var rows []row
	for _, n := range ns {
		r, err := noopRows(ctx, bin, tmp, n, reps)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	return writeResults(out, rows)
}

// row is one measured line of the results table.
type row struct {
	Benchmark string  `json:"benchmark"`
	Tool      string  `json:"tool"`
	Reps      int     `json:"reps"`
	WallMed   float64 `json:"wall_median_s"`
	WallMin   float64 `json:"wall_min_s"`
	WallMax   float64 `json:"wall_max_s"`
	CPUMed    float64 `json:"cpu_median_s"`
	RSSMaxMiB float64 `json:"peak_rss_mib"`
	Note      string  `json:"note,omitempty"`
}

func writeResults(out string, rows []row) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# cogumi benchmarks\n\nMeasured %s on %s (%d CPUs), by `go run ./bench`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, numCPU())
	b.WriteString("| benchmark | tool | reps | wall median (s) | wall min-max (s) | CPU median (s) | peak RSS (MiB) | note |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %.3f-%.3f | %.3f | %.1f | %s |\n",
			r.Benchmark, r.Tool, r.Reps, r.WallMed, r.WallMin, r.WallMax, r.CPUMed, r.RSSMaxMiB, r.Note)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	jsonPath := strings.TrimSuffix(out, filepath.Ext(out)) + ".json"
	if err := os.WriteFile(jsonPath, append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}
