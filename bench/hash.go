package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/internal/units"
)

// hashRows hashes one random file (in the page cache) with cogumi's hasher
// (cache.DigestFile, BLAKE3, through bench/cmd/hashfile), b3sum (BLAKE3,
// its default threads), sha256sum and md5sum, and checks that cogumi's
// digest is b3sum's.
func (e *env) hashRows(ctx context.Context) ([]row, error) {
	file := filepath.Join(e.tmp, "hash.bin")
	fmt.Fprintf(os.Stderr, "writing %s of random bytes\n", units.FormatBytes(e.hashSize))
	if err := writeRandom(file, e.hashSize, 1); err != nil {
		return nil, err
	}
	defer os.Remove(file)
	if err := warm(file); err != nil {
		return nil, err
	}
	tools := []tool{{name: "cogumi (cache.DigestFile, BLAKE3)", argv: []string{e.hashfile, file}}}
	var rows []row
	if _, err := exec.LookPath("b3sum"); err == nil {
		tools = append(tools, tool{name: "b3sum (BLAKE3)", argv: []string{"b3sum", file}})
	} else {
		rows = append(rows, row{Benchmark: "hash", Tool: "b3sum", Note: "not measured: b3sum not installed (apt-get install b3sum)"})
	}
	tools = append(tools, tool{name: "sha256sum", argv: []string{"sha256sum", file}},
		tool{name: "md5sum", argv: []string{"md5sum", file}})
	for i := range tools {
		tools[i].dir = e.tmp
	}
	same := ""
	if len(tools) > 3 {
		ours, err := exec.CommandContext(ctx, e.hashfile, file).Output()
		if err != nil {
			return rows, fmt.Errorf("hashfile: %w", err)
		}
		theirs, err := exec.CommandContext(ctx, "b3sum", file).Output()
		if err != nil {
			return rows, fmt.Errorf("b3sum: %w", err)
		}
		a, _, _ := strings.Cut(string(ours), " ")
		b, _, _ := strings.Cut(string(theirs), " ")
		if a == b {
			same = "; same digest as b3sum"
		} else {
			same = "; DIGEST DIFFERS from b3sum's"
		}
	}
	ss, err := compare(ctx, e.reps, tools)
	if err != nil {
		return rows, err
	}
	bench := fmt.Sprintf("hash a %s file (page cache)", units.FormatBytes(e.hashSize))
	for i, t := range tools {
		note := fmt.Sprintf("%.0f MB/s at best", mbps(e.hashSize, best(ss[i])))
		if i == 0 {
			note += same
		}
		rows = append(rows, summarize(bench, t.name, ss[i], note))
	}
	return rows, nil
}
