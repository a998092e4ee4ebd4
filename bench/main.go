// Command bench measures cogumi against the tools its users run today, side
// by side in one run on the same data, and writes a Markdown table and JSON.
//
//	go run ./bench -o bench/results.md      # defaults: under 15 minutes on 2 cores
//	go run ./bench -sizes 1000,10000,100000 -hash-size 4GiB -noop-bytes 20GiB \
//	    -checkpoint 2GiB -s3-size 2GiB -o bench/results-large.md
//	go run ./bench -only hash,zstd                # some comparisons only, printed
//	go run ./bench -only hash,zstd -o /tmp/r.md   # ... and written
//
// The comparisons (issue 7): no-op builds of N targets against ninja and
// make; a no-op over unchanged checkpoints (bytes read) against md5sum's
// re-hash; cogumi's hasher against b3sum, sha256sum and md5sum; the compress
// rule against zstd -T2 -3; the gguf rule against llama.cpp's quantiser;
// cache push and pull against single-stream minio-go; chunk-level
// deduplication of versions of a checkpoint and a dataset (issue 21,
// -dedup-size 2.2GB for TinyLlama's shape); a team cache hit
// against a build from scratch.
//
// Each comparison alternates the tools over several repetitions (one when
// a run takes over 30 s) and reports the median and the range of wall time,
// the CPU time and the peak RSS. A comparison whose tool is missing gives a
// row saying so, and the others go on.
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

	"github.com/cogumi/cogumi/internal/units"
)

// config holds the command line.
type config struct {
	out             string
	sizes           []int
	reps            int
	keep            bool
	only            map[string]bool
	hashSize        int64
	noopBytes       int64
	checkpoint      int64
	s3Size          int64
	dedupSize       int64
	pipeline        string
	pipelineTargets string
	tmpDir          string
	python          string
}

// sections are the comparisons, in the order they run.
var sectionNames = []string{"noop", "hash", "ckpt", "zstd", "gguf", "s3", "dedup", "team"}

func main() {
	var c config
	var sizes, only, hashSize, noopBytes, ckpt, s3Size, dedupSize string
	flag.StringVar(&c.out, "o", "bench/results.md", "Markdown `FILE` to write (JSON goes beside it); with -only, nothing is written unless -o is given")
	flag.StringVar(&sizes, "sizes", "1000,10000", "comma-separated target counts for the no-op benchmark")
	flag.IntVar(&c.reps, "reps", 5, "repetitions of each measurement (1 when a run takes over 30 s)")
	flag.BoolVar(&c.keep, "keep", false, "keep the generated workspaces and files")
	flag.StringVar(&only, "only", "", "comma-separated comparisons to run: "+strings.Join(sectionNames, ","))
	flag.StringVar(&hashSize, "hash-size", "1GiB", "size of the file hashed")
	flag.StringVar(&noopBytes, "noop-bytes", "2GiB", "checkpoint bytes under the stat-cached no-op")
	flag.StringVar(&ckpt, "checkpoint", "256MiB", "checkpoint size for quantisation and zstd")
	flag.StringVar(&s3Size, "s3-size", "256MiB", "size of the artifact pushed and pulled")
	flag.StringVar(&dedupSize, "dedup-size", "256MiB", "size of the checkpoints and dataset of the deduplication rows (2.2GB: TinyLlama's shape)")
	flag.StringVar(&c.pipeline, "pipeline", "examples/gpu", "workspace `DIR` of the team cache comparison")
	flag.StringVar(&c.pipelineTargets, "pipeline-targets", "", "targets built in -pipeline (default: train cpu + prune + gguf for examples/gpu, else //...)")
	flag.StringVar(&c.python, "python", "/usr/bin/python3", "the interpreter with torch, passed as var.python to a -pipeline that declares it (empty: the pipeline's default)")
	flag.StringVar(&c.tmpDir, "tmp", "", "where the generated files go (default $TMPDIR)")
	flag.Parse()
	err := func() error {
		for _, s := range strings.Split(sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return fmt.Errorf("-sizes: bad size %q", s)
			}
			c.sizes = append(c.sizes, n)
		}
		if only != "" {
			// A partial run printed, not written over the full results,
			// unless a file is named.
			if !flagSet("o") {
				c.out = ""
			}
			c.only = make(map[string]bool)
			for _, s := range strings.Split(only, ",") {
				s = strings.TrimSpace(s)
				if !contains(sectionNames, s) {
					return fmt.Errorf("-only: unknown comparison %q; have %s", s, strings.Join(sectionNames, ","))
				}
				c.only[s] = true
			}
		}
		for _, f := range []struct {
			name string
			s    string
			v    *int64
		}{{"hash-size", hashSize, &c.hashSize}, {"noop-bytes", noopBytes, &c.noopBytes}, {"checkpoint", ckpt, &c.checkpoint}, {"s3-size", s3Size, &c.s3Size}, {"dedup-size", dedupSize, &c.dedupSize}} {
			n, err := units.ParseBytes(f.s)
			if err != nil || n < 1 {
				return fmt.Errorf("-%s: bad size %q", f.name, f.s)
			}
			*f.v = n
		}
		return run(context.Background(), c)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// env is what every comparison shares: the binaries and a scratch directory.
type env struct {
	config
	tmp       string
	bin       string // cogumi
	hashfile  string // bench/cmd/hashfile
	s3stream  string // bench/cmd/s3stream
	s3blobBin string // bench/cmd/s3blob
	llama     string // internal/tinyllama/cmd/tinyllama
	repo      string // the repository root
}

func run(ctx context.Context, c config) error {
	start := time.Now()
	tmp, err := os.MkdirTemp(c.tmpDir, "cogumi-bench-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(tmp)
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	e := &env{config: c, tmp: tmp, repo: repo,
		bin: filepath.Join(tmp, "bin", "cogumi"), hashfile: filepath.Join(tmp, "bin", "hashfile"),
		s3stream: filepath.Join(tmp, "bin", "s3stream"), llama: filepath.Join(tmp, "bin", "tinyllama"),
		s3blobBin: filepath.Join(tmp, "bin", "s3blob")}
	fmt.Fprintln(os.Stderr, "building cogumi and the helpers")
	for bin, pkg := range map[string]string{e.bin: "./cmd/cogumi", e.hashfile: "./bench/cmd/hashfile",
		e.s3stream: "./bench/cmd/s3stream", e.llama: "./internal/tinyllama/cmd/tinyllama", e.s3blobBin: "./bench/cmd/s3blob"} {
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building %s: %w", pkg, err)
		}
	}
	sections := map[string]func(context.Context) ([]row, error){
		"noop": func(ctx context.Context) ([]row, error) {
			var rows []row
			for _, n := range c.sizes {
				r, err := noopRows(ctx, e.bin, tmp, n, c.reps)
				if err != nil {
					return rows, err
				}
				rows = append(rows, r...)
			}
			return rows, nil
		},
		"hash":  e.hashRows,
		"ckpt":  e.checkpointNoopRows,
		"zstd":  e.zstdRows,
		"gguf":  e.ggufRows,
		"s3":    e.s3Rows,
		"dedup": e.dedupRows,
		"team":  e.teamRows,
	}
	var rows []row
	for _, name := range sectionNames {
		if c.only != nil && !c.only[name] {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		r, err := sections[name](ctx)
		rows = append(rows, r...)
		if err != nil {
			// One comparison that cannot run (a tool missing, a rule not
			// written yet) says so in the table; the others go on.
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
			rows = append(rows, row{Benchmark: name, Tool: "-", Note: "not measured: " + oneLine(err.Error())})
		}
		fmt.Fprintf(os.Stderr, "== %s done in %s\n", name, time.Since(t0).Round(time.Second))
	}
	return writeResults(c.out, rows, c, time.Since(start))
}

// oneLine keeps an error message on one table line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
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
	// ReadBytes and RChar are the largest /proc/<pid>/io read_bytes and
	// rchar of the measured process over the repetitions.
	ReadBytes *int64 `json:"read_bytes,omitempty"`
	RChar     *int64 `json:"rchar,omitempty"`
	Note      string `json:"note,omitempty"`
}

// results is the JSON file.
type results struct {
	Measured string         `json:"measured"`
	Host     string         `json:"host"`
	CPUs     int            `json:"cpus"`
	Settings map[string]any `json:"settings"`
	Seconds  float64        `json:"total_s"`
	Rows     []row          `json:"rows"`
}

func writeResults(out string, rows []row, c config, total time.Duration) error {
	var b strings.Builder
	host, _ := os.Hostname()
	now := time.Now().UTC().Format("2006-01-02 15:04 UTC")
	settings := map[string]any{"sizes": c.sizes, "reps": c.reps, "hash_size": c.hashSize, "noop_bytes": c.noopBytes,
		"checkpoint": c.checkpoint, "s3_size": c.s3Size, "dedup_size": c.dedupSize, "pipeline": c.pipeline}
	fmt.Fprintf(&b, "# cogumi benchmarks\n\nMeasured %s on %s (%d CPUs), by `go run ./bench` in %s.\n",
		now, host, numCPU(), total.Round(time.Second))
	fmt.Fprintf(&b, "Settings: targets %v, hash input %s, checkpoints under the no-op %s, quantisation and zstd checkpoint %s, S3 artifact %s, pipeline %s; %d repetitions (1 for runs over 30 s).\n\n",
		c.sizes, units.FormatBytes(c.hashSize), units.FormatBytes(c.noopBytes), units.FormatBytes(c.checkpoint),
		units.FormatBytes(c.s3Size), c.pipeline, c.reps)
	b.WriteString("| benchmark | tool | reps | wall median (s) | wall min-max (s) | CPU median (s) | peak RSS (MiB) | note |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Reps == 0 {
			fmt.Fprintf(&b, "| %s | %s | - | - | - | - | - | %s |\n", r.Benchmark, r.Tool, r.Note)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %.3f-%.3f | %.3f | %.1f | %s |\n",
			r.Benchmark, r.Tool, r.Reps, r.WallMed, r.WallMin, r.WallMax, r.CPUMed, r.RSSMaxMiB, r.Note)
	}
	if out == "" {
		fmt.Print(b.String())
		return nil
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(results{Measured: now, Host: host, CPUs: numCPU(), Settings: settings,
		Seconds: total.Seconds(), Rows: rows}, "", "  ")
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
