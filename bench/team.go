package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cogumi/cogumi/internal/s3test"
)

// teamRows measures a team cache hit: clone A builds the pipeline with a
// remote cache; clone B (another directory, another local cache, the same
// bucket) then builds it, against the same pipeline built from scratch.
func (e *env) teamRows(ctx context.Context) ([]row, error) {
	gw, err := s3test.Binary()
	if err != nil {
		return nil, fmt.Errorf("%v; install it with: %s", err, s3test.InstallCommand)
	}
	pipe := e.pipeline
	if !filepath.IsAbs(pipe) {
		pipe = filepath.Join(e.repo, pipe)
	}
	if _, err := os.Stat(filepath.Join(pipe, "cogumi.hcl")); err != nil {
		return nil, fmt.Errorf("-pipeline %s: no cogumi.hcl: the pipeline is not there", e.pipeline)
	}
	targets := strings.Fields(e.pipelineTargets)
	root := filepath.Join(e.tmp, "team")
	defer os.RemoveAll(root)
	clones := map[string]string{}
	for _, c := range []string{"a", "b", "scratch"} {
		dir := filepath.Join(root, c)
		if err := copyTree(pipe, dir, false, "cogumi-out", "__pycache__", ".cogumi"); err != nil {
			return nil, err
		}
		clones[c] = dir
		if len(e.pipelineTargets) == 0 && filepath.Base(pipe) == "gpu" {
			// examples/gpu trains on the CPU; the bench adds the rest of
			// the pipeline's shape after it: prune, then gguf.
			if err := writeFiles(dir, map[string]string{"benchpipe/BUILD.hcl": `prune "sparse" {
  model    = "//:cpu"
  sparsity = 0.5
}

gguf "q" {
  model = ":sparse"
  type  = "Q4_K_M"
}
`}); err != nil {
				return nil, err
			}
		}
	}
	what := e.pipelineTargets
	if len(targets) == 0 {
		targets = []string{"//..."}
		what = "//..."
		if filepath.Base(pipe) == "gpu" {
			targets = []string{"//benchpipe:q"}
			what = `examples/gpu: train "cpu" -> prune -> gguf Q4_K_M`
		}
	}
	srv, err := s3test.Launch(gw, filepath.Join(e.tmp, "s3-team"))
	if srv != nil {
		defer srv.Stop()
	}
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Join(e.tmp, "s3-team"))
	creds := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + srv.Region}
	var vars []string
	if settings, err := os.ReadFile(filepath.Join(pipe, "cogumi.hcl")); err == nil && e.python != "" &&
		strings.Contains(string(settings), `variable "python"`) {
		// The interpreter with torch (the default python3 on PATH may lack it).
		vars = append(vars, "COGUMI_VAR_python="+e.python)
	}
	creds = append(creds, vars...)
	caches := map[string]string{}
	for c := range clones {
		caches[c] = filepath.Join(root, "cache-"+c)
	}
	build := func(remote bool) []string {
		argv := []string{e.bin, "build"}
		if remote {
			argv = append(argv, "--remote-cache", "s3://"+srv.Bucket+"/team", "--remote-endpoint", srv.Endpoint)
		}
		return append(argv, targets...)
	}
	fmt.Fprintf(os.Stderr, "clone A builds %v with the remote cache\n", targets)
	a, err := measure(ctx, clones["a"], append([]string{"COGUMI_CACHE_DIR=" + caches["a"]}, creds...), build(true)...)
	if err != nil {
		return nil, err
	}
	fresh := func(c string) func(int) error {
		return func(int) error {
			if err := os.RemoveAll(caches[c]); err != nil {
				return err
			}
			return os.RemoveAll(filepath.Join(clones[c], "cogumi-out"))
		}
	}
	ss, err := compare(ctx, e.reps, []tool{
		{name: "from scratch", dir: clones["scratch"], env: append([]string{"COGUMI_CACHE_DIR=" + caches["scratch"]}, vars...),
			argv: build(false), prep: fresh("scratch")},
		{name: "clone B, remote hit", dir: clones["b"], env: append([]string{"COGUMI_CACHE_DIR=" + caches["b"]}, creds...),
			argv: build(true), prep: fresh("b")},
	})
	if err != nil {
		return nil, err
	}
	bench := "team cache hit: " + what
	return []row{
		summarize(bench, "clone A, first build + upload", []sample{a}, "runs everything, uploads to a versitygw bucket"),
		summarize(bench, "from scratch", ss[0], "fresh local cache, no remote cache: every action runs"),
		summarize(bench, "clone B, remote hit", ss[1], fmt.Sprintf("another directory and local cache, same bucket: nothing runs, the final outputs come down; %.0fx faster than from scratch", median(sorted(ss[0]))/median(sorted(ss[1])))),
	}, nil
}

// sorted returns the sorted wall times of ss, in seconds.
func sorted(ss []sample) []float64 {
	w := make([]float64, len(ss))
	for i, s := range ss {
		w[i] = s.wall.Seconds()
	}
	slices.Sort(w)
	return w
}
