package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cogumi/cogumi/internal/units"
)

// zstdRows compresses a BF16 checkpoint with the compress rule (its default
// level, klauspost's SpeedDefault, which is zstd level 3; timed as a
// rebuild of the target, staging and caching included) and with
// `zstd -T2 -3`.
func (e *env) zstdRows(ctx context.Context) ([]row, error) {
	if _, err := exec.LookPath("zstd"); err != nil {
		return nil, fmt.Errorf("zstd not installed (apt-get install zstd)")
	}
	src, err := e.bf16Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	ws := filepath.Join(e.tmp, "ws-zstd")
	defer os.RemoveAll(ws)
	if err := copyTree(src, filepath.Join(ws, "m", "ckpt"), true); err != nil {
		return nil, err
	}
	if err := writeFiles(ws, map[string]string{
		"cogumi.hcl":  "workspace {\n  name = \"zstd\"\n}\n",
		"m/BUILD.hcl": "model \"base\" {\n  path = \"ckpt\"\n}\n\ncompress \"z\" {\n  input = \":base\"\n}\n",
	}); err != nil {
		return nil, err
	}
	in := filepath.Join(ws, "m", "ckpt", "model.safetensors")
	size, err := fileSize(in)
	if err != nil {
		return nil, err
	}
	cacheDir := filepath.Join(e.tmp, "cache-zstd")
	defer os.RemoveAll(cacheDir)
	cacheEnv := []string{"COGUMI_CACHE_DIR=" + cacheDir}
	// The checkpoint is hashed once, untimed, as it would be in a workspace.
	if _, err := measure(ctx, ws, cacheEnv, e.bin, "build", "//m:z"); err != nil {
		return nil, err
	}
	out := filepath.Join(e.tmp, "zstd-out.zst")
	defer os.Remove(out)
	if err := warm(in); err != nil {
		return nil, err
	}
	threads := fmt.Sprintf("-T%d", numCPU())
	ss, err := compare(ctx, e.reps, []tool{
		{name: "cogumi compress (level default)", dir: ws, env: cacheEnv, argv: []string{e.bin, "build", "--rebuild", "//m:z", "//m:z"}},
		{name: "zstd " + threads + " -3", dir: e.tmp, argv: []string{"zstd", threads, "-3", "-q", "-f", "-o", out, in}},
	})
	if err != nil {
		return nil, err
	}
	ours, err := fileSize(filepath.Join(ws, "cogumi-out", "m", "z", "model.safetensors.zst"))
	if err != nil {
		return nil, err
	}
	theirs, err := fileSize(out)
	if err != nil {
		return nil, err
	}
	bench := fmt.Sprintf("zstd of a %s BF16 checkpoint", units.FormatBytes(size))
	note := func(ss []sample, comp int64, what string) string {
		return fmt.Sprintf("ratio %.3f (%s -> %s), %.0f MB/s at best; %s", float64(size)/float64(comp),
			units.FormatBytes(size), units.FormatBytes(comp), mbps(size, best(ss)), what)
	}
	return []row{
		summarize(bench, "cogumi compress (level default)", ss[0], note(ss[0], ours, "a rebuild of the target: stage, compress every file, cache the output")),
		summarize(bench, "zstd "+threads+" -3", ss[1], note(ss[1], theirs, "random normal weights")),
	}, nil
}
