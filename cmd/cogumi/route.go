package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/executor/toolchain"
	"github.com/cogumi/cogumi/rules"
)

type routeFlags struct {
	router string
	prompt string
	domain string
	json   bool
}

func newRouteCmd(g *globals) *cobra.Command {
	var f routeFlags
	cmd := &cobra.Command{
		Use:   "route --router TARGET --prompt TEXT [--domain NAME]",
		Short: "Say which model a router sends a prompt to",
		Long: `Route builds the router target if it is stale, then computes the base model's
perplexity on the prompt with llama.cpp (the workspace's "llama" toolchain) and
applies the router's rule: at most the threshold, the base model answers;
above it, the prompt's domain's modifier (--domain), or without --domain the
modifier whose LoRA adapter gives the prompt the lowest perplexity.

The time printed for the check is llama.cpp's scoring of the prompt with the
loaded model; loading the model and adapters is reported apart.

Example:
  cogumi route --router //models:router --prompt "Write a quicksort in Go" --domain coding`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runRoute(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.router, "router", "", "the router `TARGET` (its artifact holds router.json)")
	fl.StringVar(&f.prompt, "prompt", "", "the prompt `TEXT` to route")
	fl.StringVar(&f.domain, "domain", "", "the prompt's domain `NAME`, one of the router's modifiers")
	fl.BoolVar(&f.json, "json", false, "print the decision as one JSON object")
	return cmd
}

// routeDecision is what route prints with --json.
type routeDecision struct {
	Perplexity float64            `json:"perplexity"`
	Threshold  float64            `json:"threshold"`
	Tokens     int                `json:"tokens"`
	Route      string             `json:"route"` // "base" or a domain
	Label      string             `json:"label"`
	File       string             `json:"file"`
	Adapters   map[string]float64 `json:"adapter_perplexity,omitempty"`
	CheckMS    float64            `json:"check_ms"`
	AdaptersMS float64            `json:"adapters_ms,omitempty"`
	LoadMS     float64            `json:"load_ms"`
	Runtime    string             `json:"runtime"`
}

func runRoute(cmd *cobra.Command, g *globals, f routeFlags) error {
	if f.router == "" || f.prompt == "" {
		return &exitError{code: exitConfig, err: fmt.Errorf("route needs --router TARGET and --prompt TEXT")}
	}
	w, err := g.load()
	if err != nil {
		return err
	}
	l, err := label.Parse(f.router, w.pkg)
	if err != nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("--router: %w", err)}
	}
	cfg := engine.Config{Jobs: runtime.NumCPU(), CPUs: float64(runtime.NumCPU())}
	prog := newProgress(g.stderr)
	g.prog = prog
	cfg.Observer = prog
	if err := g.withRemote(cmd, w, &cfg); err != nil {
		return err
	}
	e, err := g.engine(cmd.Context(), w, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	if _, err := e.Build(cmd.Context(), []label.Label{l}); err != nil {
		prog.finish()
		return err
	}
	prog.finish()
	rc, err := readRouter(filepath.Join(w.ws.Root, "cogumi-out", filepath.FromSlash(l.Pkg), l.Name, "router.json"))
	if err != nil {
		return err
	}
	c, err := g.openCache(w)
	if err != nil {
		return err
	}
	tc, err := routeToolchain(w.ws.Root, w.ws.Toolchains["llama"].Command)
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	d, err := route(cmd.Context(), c, tc, rc, f.prompt, f.domain)
	if err != nil {
		return err
	}
	if f.json {
		b, _ := json.Marshal(d)
		fmt.Fprintln(g.stdout, string(b))
		return nil
	}
	if d.Route == "base" {
		fmt.Fprintf(g.stdout, "perplexity %.1f <= %.1f: use the base model (%s, %s)\n", d.Perplexity, d.Threshold, d.Label, d.File)
	} else {
		fmt.Fprintf(g.stdout, "perplexity %.1f > %.1f: route to %s (%s, %s)\n", d.Perplexity, d.Threshold, d.Route, d.Label, d.File)
	}
	for _, name := range slices.Sorted(maps.Keys(d.Adapters)) {
		fmt.Fprintf(g.stdout, "  with %s's adapter: perplexity %.1f\n", name, d.Adapters[name])
	}
	fmt.Fprintf(g.stdout, "check: %.1f ms for %d tokens", d.CheckMS, d.Tokens)
	if d.AdaptersMS > 0 {
		fmt.Fprintf(g.stdout, "; adapters: %.1f ms", d.AdaptersMS)
	}
	fmt.Fprintf(g.stdout, " (%s; loading took %.0f ms)\n", d.Runtime, d.LoadMS)
	return nil
}

func readRouter(path string) (rules.RouterConfig, error) {
	var rc rules.RouterConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return rc, fmt.Errorf("reading the router: %w", err)
	}
	if err := json.Unmarshal(b, &rc); err != nil {
		return rc, fmt.Errorf("%s: %w", path, err)
	}
	if rc.Version != 1 {
		return rc, fmt.Errorf("%s: version %d; this cogumi reads version 1", path, rc.Version)
	}
	if rc.Metric != "perplexity" {
		return rc, fmt.Errorf("%s: metric %q; cogumi routes by perplexity", path, rc.Metric)
	}
	if rc.Base.Digest == "" || rc.Base.File == "" {
		return rc, fmt.Errorf("%s: the base model has no file or digest", path)
	}
	return rc, nil
}

// routeToolchain resolves the workspace's llama toolchain; a relative
// command is relative to the workspace root.
func routeToolchain(root, command string) (toolchain.NodeLlama, error) {
	if command == "" {
		return toolchain.NodeLlama{}, fmt.Errorf(`cogumi route runs llama.cpp through node-llama-cpp: declare it in cogumi.hcl:
  toolchain "llama" {
    command = "tools/node_modules/.bin/node-llama-cpp"
  }`)
	}
	if !filepath.IsAbs(command) && strings.Contains(command, "/") {
		command = filepath.Join(root, command)
	}
	return toolchain.FindNodeLlama(command)
}

// blobFile is the path of a file of the router in the local cache.
func blobFile(ctx context.Context, c *cache.Local, what, digest string, size int64) (string, error) {
	d, err := cache.ParseDigest(digest)
	if err != nil {
		return "", fmt.Errorf("router.json: %s: %w", what, err)
	}
	if !c.HasBlob(ctx, d, size) {
		return "", fmt.Errorf("%s (%s) is not in the local cache: build it here first", what, d.Short())
	}
	return c.BlobPath(d), nil
}

// route scores the prompt and applies the router's rule.
func route(ctx context.Context, c *cache.Local, tc toolchain.NodeLlama, rc rules.RouterConfig, prompt, domain string) (routeDecision, error) {
	d := routeDecision{Threshold: rc.Threshold}
	if domain != "" {
		if _, ok := rc.Modifiers[domain]; !ok {
			return d, &exitError{code: exitConfig, err: fmt.Errorf("--domain %q: the router's modifiers are %s", domain, strings.Join(slices.Sorted(maps.Keys(rc.Modifiers)), ", "))}
		}
	}
	base, err := blobFile(ctx, c, "base model "+rc.Base.Model, rc.Base.Digest, rc.Base.Size)
	if err != nil {
		return d, err
	}
	dir, err := os.MkdirTemp("", "cogumi-route-")
	if err != nil {
		return d, err
	}
	defer os.RemoveAll(dir)
	res, err := scorePrompt(ctx, tc, dir, base, nil, []llamarun.Text{{Text: prompt}})
	if err != nil {
		return d, err
	}
	s := res.Results[0]
	if s.Tokens == 0 {
		return d, fmt.Errorf("the prompt is too short to score: it has no token after BOS")
	}
	d.Perplexity, d.Tokens, d.CheckMS, d.LoadMS, d.Runtime = math.Exp(s.NLL/float64(s.Tokens)), s.Tokens, s.MS, res.LoadMS, res.Runtime
	// Only a prompt routed to a modifier without a domain needs the
	// adapters: the base check stays one model load and one evaluation.
	if d.Perplexity > rc.Threshold && domain == "" && len(rc.Modifiers) > 0 {
		adapters := map[string]string{}
		var texts []llamarun.Text
		for _, name := range slices.Sorted(maps.Keys(rc.Modifiers)) {
			m := rc.Modifiers[name]
			p, err := blobFile(ctx, c, "adapter of "+m.Label, m.Digest, m.Size)
			if err != nil {
				return d, err
			}
			adapters[name] = p
			texts = append(texts, llamarun.Text{Text: prompt, Adapter: name})
		}
		ares, err := scorePrompt(ctx, tc, dir, base, adapters, texts)
		if err != nil {
			return d, err
		}
		d.Adapters = map[string]float64{}
		for i, name := range slices.Sorted(maps.Keys(adapters)) {
			r := ares.Results[i]
			d.Adapters[name] = math.Exp(r.NLL / float64(r.Tokens))
			d.AdaptersMS += r.MS
		}
	}
	switch {
	case d.Perplexity <= rc.Threshold:
		d.Route, d.Label, d.File = "base", rc.Base.Model, rc.Base.File
	case domain != "":
		m := rc.Modifiers[domain]
		d.Route, d.Label, d.File = domain, m.Label, m.File
	case len(d.Adapters) > 0:
		best := ""
		for _, name := range slices.Sorted(maps.Keys(d.Adapters)) {
			if best == "" || d.Adapters[name] < d.Adapters[best] {
				best = name
			}
		}
		m := rc.Modifiers[best]
		d.Route, d.Label, d.File = best, m.Label, m.File
	default:
		return d, fmt.Errorf("perplexity %.1f > %.1f, but the router has no modifiers", d.Perplexity, rc.Threshold)
	}
	return d, nil
}

// scorePrompt scores texts with the base model and adapters in one run.
func scorePrompt(ctx context.Context, tc toolchain.NodeLlama, dir, base string, adapters map[string]string, texts []llamarun.Text) (llamarun.Result, error) {
	job := llamarun.Job{Model: base, Adapters: adapters, Input: filepath.Join(dir, "texts.jsonl"), Output: filepath.Join(dir, "result.json")}
	if err := llamarun.WriteTexts(job.Input, texts); err != nil {
		return llamarun.Result{}, err
	}
	return llamarun.Run(ctx, tc, dir, job)
}
