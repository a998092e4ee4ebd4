package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/model/gguf"
)

// BenchServing measures speculative decoding: how many of the tokens a
// draft model proposes the base model keeps, in llama.cpp:
//
//	bench_serving "spec" {
//	  serving = ":serve"        # optional: a serving target; its draft settings are used
//	  model   = ":final"        # the base GGUF (the one serving names)
//	  draft   = ":draft_gguf"   # the draft GGUF (the one serving names)
//	  prompts = ["Question: ..."]
//	  max_tokens = 64
//	}
//
// Each prompt is continued greedily by the base alone and by the base with
// the draft, as llama-server does with -md: the draft proposes up to
// draft_max tokens a step, each at least draft_p_min probable, a draft
// shorter than draft_min is dropped, and the base keeps the drafted tokens
// up to the first it would not have chosen. The artifact is metrics.json:
// acceptance_rate (accepted / drafted tokens), the counts, and the same
// per prompt (groups prompt1, prompt2, ...), so a gate can require
// min = { acceptance_rate = 0.5 }. Greedy decoding makes the counts depend
// on the models, the prompts and the llama.cpp build only; tokens per
// second with and without the draft depend on the machine, and go to the
// build log and events instead.
//
// llama.cpp runs through node-llama-cpp (the llama toolchain, as for eval;
// its version, which fixes the llama.cpp build, joins the key) on the
// backend the target names, which joins the key too: a GPU build may
// choose other tokens at near-ties. The run uses the target's declared
// cpus as threads (1 when undeclared: llama.cpp's threads spin while they
// wait, and a shared machine's other work makes spinning threads crawl).
type BenchServing struct{}

func (BenchServing) Kind() string { return "bench_serving" }

// Version includes the bench script's digest: the script is part of the rule.
func (BenchServing) Version() string { return "1-" + llamarun.Speculate().Digest()[:12] }

// defaultBenchPrompts are the prompts measured when none are given: short
// beginnings of the kinds of text a served model continues.
var defaultBenchPrompts = []string{
	"Question: What is the capital of France?\nAnswer:",
	"Question: Write a Python function that returns the sum of a list of numbers.\nAnswer:",
	"Question: A train travels 120 km in 2 hours. What is its average speed?\nAnswer:",
	"The history of the printing press begins",
}

// llamaBackends are the llama.cpp builds node-llama-cpp can load.
var llamaBackends = []string{"cpu", "cuda", "vulkan", "metal"}

// benchServingParams are the attributes of a bench_serving target. The
// draft settings are pointers: with serving they must be unset.
type benchServingParams struct {
	Serving   string    `cogumi:"serving,key,input=label" doc:"a serving target: its serving.json must name model and draft, and its draft settings are used"`
	Model     string    `cogumi:"model,key,required,input=label" doc:"the base model: a target whose artifact holds one GGUF file (or a label of the file)"`
	Draft     string    `cogumi:"draft,key,required,input=label" doc:"the draft model: a GGUF whose vocabulary llama.cpp accepts for the base's"`
	DraftMax  *int      `cogumi:"draft_max,key" doc:"tokens to draft per step, as llama-server's --spec-draft-n-max: serving's with serving, else 3 when unset"`
	DraftMin  *int      `cogumi:"draft_min,key" doc:"a shorter draft is dropped (--spec-draft-n-min): serving's with serving, else 0 when unset"`
	DraftPMin *float64  `cogumi:"draft_p_min,key" doc:"drafting stops before a token the draft gives less probability (--spec-draft-p-min): serving's with serving, else 0 (none) when unset"`
	Prompts   *[]string `cogumi:"prompts,key" doc:"the texts continued; when unset, three short \"Question: ...\\nAnswer:\" prompts and the start of a sentence"`
	MaxTokens int       `cogumi:"max_tokens,key" default:"64" doc:"tokens generated per prompt (fewer when the base ends the text)"`
	Backend   string    `cogumi:"backend,key" default:"cpu" doc:"the llama.cpp build node-llama-cpp loads: cpu, cuda, vulkan or metal (a GPU backend wants resources { gpus = 1 })"`
}

func (BenchServing) Schema() Schema {
	return Schema{
		Summary: "speculative decoding measured: the share of a draft model's tokens the base keeps, in llama.cpp (metrics.json)",
		Attrs:   attrsOf[benchServingParams](),
		Traits:  Traits{Resources: true, Toolchains: []string{"llama"}},
	}
}

func (BenchServing) Check(t *target.Target) []AttrError {
	p, errs := decode[benchServingParams](t)
	if len(errs) > 0 {
		return errs
	}
	if p.Serving != "" {
		for _, a := range []struct {
			name string
			set  bool
		}{{"draft_max", p.DraftMax != nil}, {"draft_min", p.DraftMin != nil}, {"draft_p_min", p.DraftPMin != nil}} {
			if a.set {
				errs = append(errs, AttrError{Attr: a.name, Msg: a.name + " comes from serving's config: set it there, or drop serving"})
			}
		}
	}
	dmax, dmin, pmin := benchDraftSettings(p, nil)
	switch {
	case dmax < 1:
		errs = append(errs, AttrError{Attr: "draft_max", Msg: fmt.Sprintf("%d: a bench needs at least 1 drafted token a step", dmax)})
	case dmin < 0 || dmin > dmax:
		errs = append(errs, AttrError{Attr: "draft_min", Msg: fmt.Sprintf("draft_min %d, draft_max %d: want 0 <= draft_min <= draft_max", dmin, dmax)})
	}
	if pmin < 0 || pmin > 1 {
		errs = append(errs, AttrError{Attr: "draft_p_min", Msg: fmt.Sprintf("%g: a probability is between 0 and 1", pmin)})
	}
	if p.MaxTokens < 1 {
		errs = append(errs, AttrError{Attr: "max_tokens", Msg: fmt.Sprintf("%d: generate at least 1 token", p.MaxTokens)})
	}
	if p.Prompts != nil && len(*p.Prompts) == 0 {
		errs = append(errs, AttrError{Attr: "prompts", Msg: "no prompts: give at least one, or leave prompts unset for the default set"})
	}
	if p.Prompts != nil {
		for i, s := range *p.Prompts {
			if strings.TrimSpace(s) == "" {
				errs = append(errs, AttrError{Attr: "prompts", Msg: fmt.Sprintf("prompt %d is empty", i+1)})
			}
		}
	}
	if !slices.Contains(llamaBackends, p.Backend) {
		errs = append(errs, AttrError{Attr: "backend", Msg: fmt.Sprintf("%q: want %s", p.Backend, strings.Join(llamaBackends, ", "))})
	} else if p.Backend != "cpu" && t.Resources.GPUs < 1 {
		errs = append(errs, AttrError{Attr: "backend", Msg: fmt.Sprintf("backend %s runs on a GPU: add resources { gpus = 1 }", p.Backend)})
	}
	return errs
}

// benchDraftSettings are the draft settings: serving's config when given,
// else the attributes, else llama.cpp's defaults (serving's).
func benchDraftSettings(p *benchServingParams, cfg *ServingConfig) (dmax, dmin int, pmin float64) {
	if cfg != nil && cfg.Draft != nil {
		return cfg.Draft.Max, cfg.Draft.Min, cfg.Draft.PMin
	}
	dmax, dmin, pmin = 3, 0, 0
	if p.DraftMax != nil {
		dmax = *p.DraftMax
	}
	if p.DraftMin != nil {
		dmin = *p.DraftMin
	}
	if p.DraftPMin != nil {
		pmin = *p.DraftPMin
	}
	return dmax, dmin, pmin
}

func (BenchServing) Outs(*target.Target) []string { return []string{metrics.FileName} }

func (BenchServing) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[benchServingParams](a)
	if err != nil {
		return err
	}
	modelLabel := inputLabel(t, "model", "")
	basePath, baseFile, err := ggufIn(a.InputDirs["model"])
	if err != nil {
		return fmt.Errorf("model: %s: %w", modelLabel, err)
	}
	base, err := gguf.Open(basePath)
	if err != nil {
		return fmt.Errorf("model: %s: %w", modelLabel, err)
	}
	defer base.Close()
	draft, err := servingDraft(t, a.InputDirs["draft"], base, modelLabel)
	if err != nil {
		return err
	}
	var cfg *ServingConfig
	if p.Serving != "" {
		if cfg, err = benchServingConfig(t, a.InputDirs["serving"], basePath, modelLabel, draft); err != nil {
			return err
		}
	}
	dmax, dmin, pmin := benchDraftSettings(p, cfg)
	prompts := defaultBenchPrompts
	if p.Prompts != nil {
		prompts = *p.Prompts
	}
	tc, err := llamaToolchain(a)
	if err != nil {
		return err
	}
	work := filepath.Dir(a.Dir)
	texts := make([]llamarun.Text, len(prompts))
	for i, s := range prompts {
		texts[i] = llamarun.Text{Text: s}
	}
	input, output := filepath.Join(work, "prompts.jsonl"), filepath.Join(work, "speculate.json")
	if err := llamarun.WriteTexts(input, texts); err != nil {
		return err
	}
	script, err := llamarun.Speculate().Write(work)
	if err != nil {
		return err
	}
	threads := actionThreads(a)
	if threads == 0 {
		threads = 1
	}
	draftPath, _, err := ggufIn(a.InputDirs["draft"])
	if err != nil {
		return fmt.Errorf("draft: %s: %w", draft.Label, err)
	}
	fmt.Fprintf(a.Log, "base %s (%s), draft %s: draft_max %d, draft_min %d, draft_p_min %g, %d prompts x %d tokens, backend %s, %d threads\n",
		modelLabel, baseFile, draft.Label, dmax, dmin, pmin, len(prompts), p.MaxTokens, p.Backend, threads)
	argv, env := llamarun.SpecCommand(tc, script, llamarun.SpecJob{Model: basePath, Draft: draftPath, Input: input, Output: output,
		MaxTokens: p.MaxTokens, DraftMax: dmax, DraftMin: dmin, PMin: pmin, Threads: threads, Backend: p.Backend})
	if err := a.Exec(ctx, argv, env); err != nil {
		return err
	}
	res, err := llamarun.ReadSpecResult(output, len(prompts))
	if err != nil {
		return err
	}
	m, err := benchMetrics(modelLabel, draft.Label, res)
	if err != nil {
		return err
	}
	benchReport(a, res, m)
	return writeJSONFile(filepath.Join(a.Out, metrics.FileName), m)
}

// benchServingConfig reads the serving target's serving.json and checks
// that it serves the model and the draft this target measures.
func benchServingConfig(t *target.Target, dir, basePath, modelLabel string, draft ServingFile) (*ServingConfig, error) {
	l := inputLabel(t, "serving", "")
	b, err := os.ReadFile(filepath.Join(dir, servingFile))
	if err != nil {
		return nil, fmt.Errorf("serving: %s: %w (name a serving target)", l, err)
	}
	var cfg ServingConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("serving: %s: %s: %w", l, servingFile, err)
	}
	d, _, err := cache.DigestFile(basePath)
	if err != nil {
		return nil, err
	}
	if cfg.Model.Digest != d.String() {
		return nil, fmt.Errorf("serving: %s serves %s (digest %.12s), not model %s (digest %.12s): measure the files the config serves",
			l, cfg.Model.Label, cfg.Model.Digest, modelLabel, d.String())
	}
	if cfg.Draft == nil {
		return nil, fmt.Errorf("serving: %s has no draft model: there is no speculative decoding to measure", l)
	}
	if cfg.Draft.Digest != draft.Digest {
		return nil, fmt.Errorf("serving: %s drafts with %s (digest %.12s), not draft %s (digest %.12s): measure the files the config serves",
			l, cfg.Draft.Label, cfg.Draft.Digest, draft.Label, draft.Digest)
	}
	return &cfg, nil
}

// benchMetrics is metrics.json: counts and rates only, never times.
func benchMetrics(model, draft string, res llamarun.SpecResult) (*metrics.File, error) {
	m := &metrics.File{Version: 1, Model: model, Runtime: res.Runtime + " on " + res.Backend + ", draft " + draft,
		Metrics: map[string]float64{}, Groups: map[string]metrics.Group{}, Examples: int64(len(res.Results))}
	var drafted, accepted, generated, steps int
	for i, r := range res.Results {
		drafted += r.Drafted
		accepted += r.Accepted
		generated += r.Generated
		steps += r.Steps
		g := metrics.Group{Metrics: benchCounts(r.Drafted, r.Accepted, r.Generated, r.Steps), Examples: 1, Tokens: int64(r.Generated)}
		m.Groups[fmt.Sprintf("prompt%d", i+1)] = g
	}
	if drafted == 0 {
		return nil, fmt.Errorf("the draft proposed no token in %d steps: nothing to measure (is draft_p_min above every probability the draft gives, or draft_min above what it drafts?)", steps)
	}
	m.Metrics = benchCounts(drafted, accepted, generated, steps)
	m.Tokens = int64(generated)
	return m, nil
}

// benchCounts are the metrics of some runs: acceptance_rate is left out
// where nothing was drafted (a rate of nothing).
func benchCounts(drafted, accepted, generated, steps int) map[string]float64 {
	m := map[string]float64{"drafted_tokens": float64(drafted), "accepted_tokens": float64(accepted),
		"generated_tokens": float64(generated), "steps": float64(steps)}
	if drafted > 0 {
		m["acceptance_rate"] = float64(accepted) / float64(drafted)
	}
	return m
}

// benchReport writes the speeds, which depend on the machine, to the log
// and the build's events.
func benchReport(a *Action, res llamarun.SpecResult, m *metrics.File) {
	var baseMS, draftMS float64
	same := 0
	for _, r := range res.Results {
		baseMS += r.BaseMS
		draftMS += r.DraftMS
		if r.Same {
			same++
		}
	}
	gen := m.Metrics["generated_tokens"]
	perS := func(ms float64) float64 {
		if ms <= 0 {
			return 0
		}
		return gen / (ms / 1000)
	}
	speedup := 0.0
	if draftMS > 0 {
		speedup = baseMS / draftMS
	}
	fmt.Fprintf(a.Log, "acceptance rate %.4f: %d of %d drafted tokens accepted, %d tokens generated in %d steps\n",
		m.Metrics["acceptance_rate"], int(m.Metrics["accepted_tokens"]), int(m.Metrics["drafted_tokens"]), int(gen), int(m.Metrics["steps"]))
	fmt.Fprintf(a.Log, "%s: base alone %.1f tokens/s, with the draft %.1f tokens/s (x%.2f); loading took %.0f ms\n",
		res.Runtime+" on "+res.Backend, perS(baseMS), perS(draftMS), speedup, res.LoadMS)
	if same != len(res.Results) {
		fmt.Fprintf(a.Log, "warning: for %d of %d prompts the output with the draft differs from the base's alone (a near-tie decided differently in a batch)\n",
			len(res.Results)-same, len(res.Results))
	}
	if a.Stats != nil {
		a.Stats(map[string]any{"backend": res.Backend, "base_tokens_per_s": perS(baseMS), "draft_tokens_per_s": perS(draftMS),
			"speedup": speedup, "load_ms": res.LoadMS, "same_output": same})
	}
}
