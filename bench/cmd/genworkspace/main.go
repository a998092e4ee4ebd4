// Command genworkspace writes a synthetic cogumi workspace for benchmarks,
// with a build.ninja and a Makefile of the same graph:
//
//	go run ./bench/cmd/genworkspace -n 10000 -o /tmp/ws10k
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cogumi/cogumi/bench/gen"
)

func main() {
	var (
		n    = flag.Int("n", 1000, "number of targets")
		out  = flag.String("o", "", "directory to write (must not exist or be empty)")
		seed = flag.Uint64("seed", 1, "seed of the random graph")
		per  = flag.Int("per-package", 100, "targets per package")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: genworkspace -n N -o DIR [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := gen.Write(*out, *n, gen.Options{Seed: *seed, TargetsPerPackage: *per}); err != nil {
		fmt.Fprintln(os.Stderr, "genworkspace:", err)
		os.Exit(1)
	}
}
