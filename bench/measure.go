package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sample is one run of a command.
type sample struct {
	wall, cpu time.Duration
	rssKiB    int64
	// readBytes and rchar are the process's own /proc/<pid>/io counters
	// (bytes fetched from storage, and bytes returned by read calls, page
	// cache included), read after it exited and before it was reaped; -1
	// when unknown. Children the process waited for are not counted.
	readBytes, rchar int64
}

// measure runs argv in dir and returns its wall time, CPU time (user+system
// of it and its children), peak RSS and read counters.
func measure(ctx context.Context, dir string, env []string, argv ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("%v in %s: %w", argv, dir, err)
	}
	// Wait for the exit without reaping, so that /proc/<pid>/io still
	// holds the counters of the whole process.
	var info unix.Siginfo
	rb, rc := int64(-1), int64(-1)
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == syscall.EINTR {
			continue
		}
		if err == nil {
			rb, rc = procIO(cmd.Process.Pid)
		}
		break
	}
	err := cmd.Wait()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v in %s: %w\n%s", argv, dir, err, tail(out.Bytes()))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu, rssKiB: ru.Maxrss, readBytes: rb, rchar: rc}, nil
}

// procIO reads read_bytes and rchar of /proc/<pid>/io (-1 when unreadable).
func procIO(pid int) (readBytes, rchar int64) {
	readBytes, rchar = -1, -1
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "read_bytes":
			readBytes = n
		case "rchar":
			rchar = n
		}
	}
	return
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
	rb, rc := int64(-1), int64(-1)
	for i, s := range ss {
		walls[i] = s.wall.Seconds()
		cpus[i] = s.cpu.Seconds()
		rss = max(rss, s.rssKiB)
		rb, rc = max(rb, s.readBytes), max(rc, s.rchar)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	r := row{Benchmark: bench, Tool: tool, Reps: len(ss), WallMed: median(walls), WallMin: walls[0],
		WallMax: walls[len(walls)-1], CPUMed: median(cpus), RSSMaxMiB: float64(rss) / 1024, Note: note}
	if rb >= 0 {
		r.ReadBytes, r.RChar = &rb, &rc
	}
	return r
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// best is the shortest wall time of ss, in seconds.
func best(ss []sample) float64 {
	b := ss[0].wall.Seconds()
	for _, s := range ss[1:] {
		b = min(b, s.wall.Seconds())
	}
	return b
}

func numCPU() int { return runtime.NumCPU() }

// longRun is the wall time beyond which a measurement is taken once.
const longRun = 30 * time.Second

// tool is one contender of a comparison.
type tool struct {
	name string
	dir  string
	env  []string
	argv []string
	// prep runs, untimed, before each of its repetitions (a fresh cache, a
	// new bucket prefix...).
	prep func(rep int) error
	// check runs, untimed, after each repetition (compares outputs).
	check func(rep int) error
}

// compare runs the tools alternately, rotating which goes first, for reps
// rounds; after a round in which any tool took longer than longRun, it
// stops (one repetition for anything over 30 s).
func compare(ctx context.Context, reps int, tools []tool) ([][]sample, error) {
	out := make([][]sample, len(tools))
	for rep := 0; rep < reps; rep++ {
		long := false
		for k := range tools {
			t := tools[(k+rep)%len(tools)]
			i := (k + rep) % len(tools)
			if t.prep != nil {
				if err := t.prep(rep); err != nil {
					return nil, fmt.Errorf("%s: preparing: %w", t.name, err)
				}
			}
			s, err := measure(ctx, t.dir, t.env, t.argv...)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			if t.check != nil {
				if err := t.check(rep); err != nil {
					return nil, fmt.Errorf("%s: %w", t.name, err)
				}
			}
			out[i] = append(out[i], s)
			long = long || s.wall > longRun
		}
		if long {
			break
		}
	}
	return out, nil
}
