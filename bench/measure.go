package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// sample is one run of a command.
type sample struct {
	wall, cpu time.Duration
	rssKiB    int64
}

// measure runs argv in dir and returns its wall time, CPU time (user+system
// of it and its children) and peak RSS.
func measure(ctx context.Context, dir string, env []string, argv ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out []byte
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v in %s: %w\n%s", argv, dir, err, tail(out))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu, rssKiB: ru.Maxrss}, nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// summarize turns samples into a table row.
func summarize(bench, tool string, ss []sample, note string) row {
	walls := make([]float64, len(ss))
	cpus := make([]float64, len(ss))
	var rss int64
	for i, s := range ss {
		walls[i] = s.wall.Seconds()
		cpus[i] = s.cpu.Seconds()
		rss = max(rss, s.rssKiB)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return row{Benchmark: bench, Tool: tool, Reps: len(ss), WallMed: median(walls), WallMin: walls[0],
		WallMax: walls[len(walls)-1], CPUMed: median(cpus), RSSMaxMiB: float64(rss) / 1024, Note: note}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func numCPU() int { return runtime.NumCPU() }
