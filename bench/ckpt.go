package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cogumi/cogumi/internal/units"
)

// bf16Checkpoint writes (once) the random BF16 checkpoint of about
// e.checkpoint bytes that the no-op and zstd comparisons share.
func (e *env) bf16Checkpoint(ctx context.Context) (string, error) {
	dir := filepath.Join(e.tmp, "ckpt-bf16")
	fmt.Fprintf(os.Stderr, "writing a BF16 checkpoint of about %s\n", units.FormatBytes(e.checkpoint))
	return dir, e.makeCheckpoint(ctx, dir, "bf16", e.checkpoint, 1)
}

// checkpointNoopRows builds a workspace of model targets over copies of a
// checkpoint (e.noopBytes in all), then measures cogumi's no-op build, with
// the bytes it reads, against md5sum of the same files: what a tool that
// re-hashes its inputs on every run (DVC) pays.
func (e *env) checkpointNoopRows(ctx context.Context) ([]row, error) {
	src, err := e.bf16Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	one, _, err := safetensorsBytes(src)
	if err != nil {
		return nil, err
	}
	n := int((e.noopBytes + one - 1) / one)
	ws := filepath.Join(e.tmp, "ws-ckpt")
	defer os.RemoveAll(ws)
	var build strings.Builder
	for i := range n {
		name := fmt.Sprintf("c%03d", i)
		// Copies, not links: every checkpoint is its own file.
		if err := copyTree(src, filepath.Join(ws, "m", name), false); err != nil {
			return nil, err
		}
		fmt.Fprintf(&build, "model %q {\n  path = %q\n}\n\n", name, name)
	}
	if err := writeFiles(ws, map[string]string{
		"cogumi.hcl":  "workspace {\n  name = \"ckpt\"\n}\n",
		"m/BUILD.hcl": build.String(),
	}); err != nil {
		return nil, err
	}
	total, files, err := safetensorsBytes(filepath.Join(ws, "m"))
	if err != nil {
		return nil, err
	}
	// The stat cache trusts a digest only when it was recorded at least
	// racyMargin (2 s) after the file last changed, as git does for racily
	// clean files; real checkpoints are older than that.
	time.Sleep(2500 * time.Millisecond)
	cacheEnv := []string{"COGUMI_CACHE_DIR=" + filepath.Join(e.tmp, "cache-ckpt")}
	defer os.RemoveAll(filepath.Join(e.tmp, "cache-ckpt"))
	bench := fmt.Sprintf("no-op over %d unchanged checkpoints, %s", n, units.FormatBytes(total))
	fmt.Fprintf(os.Stderr, "first build of %d model targets (%s)\n", n, units.FormatBytes(total))
	first, err := measure(ctx, ws, cacheEnv, e.bin, "build", "//...")
	if err != nil {
		return nil, err
	}
	rows := []row{summarize(bench, "cogumi, first build", []sample{first},
		"hashes and validates every checkpoint; "+ioNote(first, total))}
	if err := warm(files...); err != nil {
		return rows, err
	}
	ss, err := compare(ctx, e.reps, []tool{
		{name: "cogumi no-op build", dir: ws, env: cacheEnv, argv: []string{e.bin, "build", "//..."}},
		{name: "md5sum (DVC-style re-hash)", dir: ws, argv: append([]string{"md5sum"}, files...)},
	})
	if err != nil {
		return rows, err
	}
	var worst sample
	for _, s := range ss[0] {
		if s.rchar > worst.rchar {
			worst = s
		}
	}
	verdict := "checkpoint bytes read: 0"
	if worst.rchar < 0 || worst.rchar >= total/100 {
		verdict = "CHECKPOINT BYTES READ"
	}
	rows = append(rows,
		summarize(bench, "cogumi no-op build", ss[0], "stat cache only, files in the page cache; "+verdict+" ("+ioNote(worst, total)+", all files together)"),
		summarize(bench, "md5sum (DVC-style re-hash)", ss[1], fmt.Sprintf("reads every byte, page cache warm: %.0f MB/s at best", mbps(total, best(ss[1])))))
	return rows, nil
}

// ioNote describes a process's reads against the bytes of the checkpoints.
func ioNote(s sample, total int64) string {
	if s.rchar < 0 {
		return "/proc/<pid>/io unreadable"
	}
	return fmt.Sprintf("rchar %s, read_bytes %s of %s", units.FormatBytes(s.rchar), units.FormatBytes(s.readBytes), units.FormatBytes(total))
}
