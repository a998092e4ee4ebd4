// Command zpackbench measures zpack against the zstd CLI on synthetic
// weights: a safetensors file of Gaussian BF16 (or F16) tensors, std 0.02,
// seeded, with small F32 norm tensors between them, as in a checkpoint.
//
//	go run ./zpack/cmd/zpackbench -mib 1024
//
// Each step runs in its own process (this binary re-executed, or the zstd
// CLI) so that wall time, CPU time and peak RSS are measured alike; with
// -runs N each step runs N times and the fastest run is reported. Every
// decompression is checked against the original's BLAKE3. Use -dir
// /dev/shm to keep disk writeback out of the timings.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/cogumi/cogumi/model/zpack"
	"github.com/cogumi/cogumi/model/zpack/internal/synth"
	"lukechampine.com/blake3"
)

type config struct {
	mib      int64
	dtype    string
	std      float64
	sparsity float64
	seed     uint64
	level    string
	cliLevel int
	threads  int
	dir      string
	keep     bool
	zstd     string
	jsonOut  string
	runs     int
}

// result is one measured step.
type result struct {
	Step       string  `json:"step"`
	WallS      float64 `json:"wall_s"`
	CPUS       float64 `json:"cpu_s"`
	MBps       float64 `json:"mb_per_s"`
	RatioPct   float64 `json:"ratio_pct,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

func main() {
	// Child mode: one compression or decompression, timed by the parent.
	if len(os.Args) > 1 && os.Args[1] == "-step" {
		if err := step(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "zpackbench:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	flag.Int64Var(&c.mib, "mib", 256, "size of the weights in MiB (1024 for the issue's figure)")
	flag.StringVar(&c.dtype, "dtype", "BF16", "BF16 or F16")
	flag.Float64Var(&c.std, "std", 0.02, "standard deviation of the weights")
	flag.Float64Var(&c.sparsity, "sparsity", 0, "fraction of weights set to zero (as after pruning)")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed")
	flag.StringVar(&c.level, "level", "default", "zpack level (fastest, default, better, best or 1-22)")
	flag.IntVar(&c.cliLevel, "cli-level", 3, "zstd CLI level to compare with")
	flag.IntVar(&c.threads, "threads", runtime.GOMAXPROCS(0), "threads for zpack and zstd -T")
	flag.StringVar(&c.dir, "dir", os.TempDir(), "directory for the files")
	flag.BoolVar(&c.keep, "keep", false, "keep the files")
	flag.StringVar(&c.zstd, "zstd", "zstd", "zstd CLI (skipped if not found)")
	flag.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.IntVar(&c.runs, "runs", 1, "run each step this many times and keep the fastest (for a busy machine)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "zpackbench:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	conv := synth.BF16
	switch c.dtype {
	case "BF16":
	case "F16":
		conv = synth.F16
	default:
		return fmt.Errorf("dtype %q: want BF16 or F16", c.dtype)
	}
	work, err := os.MkdirTemp(c.dir, "zpackbench-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(work)
	}
	src := filepath.Join(work, "model.safetensors")
	t0 := time.Now()
	if err := generate(src, c, conv); err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	size := fi.Size()
	want, err := hashFile(src)
	if err != nil {
		return err
	}
	fmt.Printf("input: %s, %d bytes of %s N(0, %g²) weights, sparsity %g, seed %d (made in %.1fs); %d threads, best of %d runs\n\n",
		src, size, c.dtype, c.std, c.sparsity, c.seed, time.Since(t0).Seconds(), c.threads, max(1, c.runs))

	self, err := os.Executable()
	if err != nil {
		return err
	}
	zstdCLI, _ := exec.LookPath(c.zstd)
	var results []result
	measure := func(name, out string, ratioOf string, argv ...string) error {
		var r result
		for i := range max(1, c.runs) {
			ri, err := timeCommand(argv...)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if i == 0 || ri.WallS < r.WallS {
				r = ri
			}
		}
		r.Step = name
		r.MBps = float64(size) / 1e6 / r.WallS
		if ratioOf != "" {
			st, err := os.Stat(ratioOf)
			if err != nil {
				return err
			}
			r.RatioPct = 100 * float64(st.Size()) / float64(size)
		}
		if out != "" {
			got, err := hashFile(out)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s: output differs from the original", name)
			}
			os.Remove(out)
		}
		results = append(results, r)
		return nil
	}
	threads := fmt.Sprint(c.threads)
	plain, weights, cli := src+".zst", src+".zpk", src+".cli.zst"
	steps := []struct {
		name, out, ratioOf string
		argv               []string
	}{
		{"zpack plain " + c.level, "", plain, []string{self, "-step", "compress", c.level, threads, "false", src, plain}},
		{"zpack weights " + c.level, "", weights, []string{self, "-step", "compress", c.level, threads, "true", src, weights}},
		{"zpack plain decompress", src + ".1", "", []string{self, "-step", "decompress", plain, src + ".1"}},
		{"zpack weights decompress", src + ".2", "", []string{self, "-step", "decompress", weights, src + ".2"}},
	}
	if zstdCLI != "" {
		lvl := fmt.Sprintf("-%d", c.cliLevel)
		steps = append(steps,
			struct {
				name, out, ratioOf string
				argv               []string
			}{fmt.Sprintf("zstd %s -T%d", lvl, c.threads), "", cli, []string{zstdCLI, "-q", "-f", lvl, "-T" + threads, src, "-o", cli}},
			struct {
				name, out, ratioOf string
				argv               []string
			}{"zstd -d (its own output)", src + ".3", "", []string{zstdCLI, "-q", "-f", "-d", cli, "-o", src + ".3"}},
			struct {
				name, out, ratioOf string
				argv               []string
			}{"zstd -d (zpack plain output)", src + ".4", "", []string{zstdCLI, "-q", "-f", "-d", plain, "-o", src + ".4"}})
	} else {
		fmt.Printf("zstd CLI %q not found: skipping its steps\n\n", c.zstd)
	}
	for _, s := range steps {
		if err := measure(s.name, s.out, s.ratioOf, s.argv...); err != nil {
			return err
		}
	}
	fmt.Printf("| step | wall s | MB/s | CPU s | kept %% | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		ratio := ""
		if r.RatioPct > 0 {
			ratio = fmt.Sprintf("%.2f", r.RatioPct)
		}
		fmt.Printf("| %s | %.2f | %.0f | %.2f | %s | %.0f |\n", r.Step, r.WallS, r.MBps, r.CPUS, ratio, r.PeakRSSMiB)
	}
	if c.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"bytes": size, "dtype": c.dtype, "std": c.std, "sparsity": c.sparsity,
			"seed": c.seed, "threads": c.threads, "runs": max(1, c.runs), "results": results}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(c.jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// generate writes a checkpoint-like safetensors file: 4096x4096 weight
// matrices (the last one cut to fit c.mib) with a 4096-float F32 norm
// after each.
func generate(path string, c config, conv func(float32) uint16) error {
	const rows, cols = 4096, 4096
	total := c.mib << 20
	var infos []synth.Info
	for i := 0; total > 0; i++ {
		n := min(total/2, rows*cols)
		if n == 0 {
			break
		}
		infos = append(infos,
			synth.Info{Name: fmt.Sprintf("model.layers.%d.mlp.weight", i), Dtype: c.dtype, Shape: []int64{n / cols, cols}, Size: 2 * (n / cols * cols)},
			synth.Info{Name: fmt.Sprintf("model.layers.%d.norm.weight", i), Dtype: "F32", Shape: []int64{cols}, Size: 4 * cols})
		total -= 2 * n
	}
	hdr, err := synth.Header(infos)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	ones := make([]byte, 4*cols)
	for i := range cols {
		copy(ones[4*i:], []byte{0, 0, 0x80, 0x3f}) // 1.0f
	}
	for i, t := range infos {
		if t.Dtype == "F32" {
			if _, err := w.Write(ones); err != nil {
				return err
			}
			continue
		}
		if err := synth.Gaussian(w, t.Size/2, c.std, c.sparsity, c.seed+uint64(i), conv); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// timeCommand runs argv and reports its wall time, CPU time (user+system)
// and peak RSS.
func timeCommand(argv ...string) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, err
	}
	wall := time.Since(t)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r := result{WallS: wall.Seconds()}
	if ru != nil {
		r.CPUS = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024 // Linux reports KiB
	}
	return r, nil
}

func step(args []string) error {
	ctx := context.Background()
	switch {
	case len(args) == 6 && args[0] == "compress":
		lvl, err := zpack.ParseLevel(args[1])
		if err != nil {
			return err
		}
		var threads int
		if _, err := fmt.Sscan(args[2], &threads); err != nil {
			return fmt.Errorf("threads %q: %w", args[2], err)
		}
		_, err = zpack.CompressFile(ctx, args[4], args[5], zpack.Options{Level: lvl, Threads: threads, Weights: args[3] == "true"})
		return err
	case len(args) == 3 && args[0] == "decompress":
		_, err := zpack.DecompressFile(ctx, args[1], args[2])
		return err
	default:
		return fmt.Errorf("bad step arguments %q", args)
	}
}

func hashFile(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := blake3.New(32, nil)
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("hash %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
