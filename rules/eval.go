package rules

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/evalset"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/executor/toolchain"
	"github.com/cogumi/cogumi/model/gguf"
)

// Eval measures a model on a dataset:
//
//	eval "final_val" {
//	  model        = ":final"                  # a GGUF, or a Hugging Face checkpoint
//	  dataset      = "//data:splits/val.jsonl"
//	  metrics      = ["perplexity"]
//	  by           = "domain"                  # optional: figures per value of a row field
//	  script       = "score.py"                # optional: a user metric script
//	  max_examples = 200                       # optional: the first N examples
//	  dtype        = "float32"                 # optional: torch's compute dtype
//	  reference    = ":model_f16"              # optional: KL divergence from this GGUF
//	}
//
// The artifact is metrics.json (the metrics over every example, token-
// weighted, and per group with by) and scores.jsonl (each example's tokens,
// summed negative log-likelihood and perplexity, with its file, line and
// the SHA-256 of its row). The text of a row is its "text" field, else its
// chat "messages"; a .txt file gives one example per paragraph.
//
// A GGUF is scored by llama.cpp through node-llama-cpp, declared in
// cogumi.hcl as
//
//	toolchain "llama" {
//	  command = "tools/node_modules/.bin/node-llama-cpp"   # npm install node-llama-cpp in tools/
//	}
//
// (relative to the workspace root; node comes from PATH, and the package's
// version joins the action key). A checkpoint directory is scored by
// cogumi's torch runtime with the python toolchain (CUDA when the target
// asks for a GPU), in dtype (float32 unless given): the device and the
// times go to the build log and events, not into the artifact. Both
// tokenise with the model's own tokenizer, prepend BOS and score every
// token after it.
//
// With reference (a GGUF of the same vocabulary, usually the float model a
// quantised GGUF came from), llama.cpp scores every example with both
// models and metrics.json also holds kld_mean, kld_p99, top1_agreement,
// delta_perplexity and reference_perplexity, overall and per group, with
// llama-perplexity --kl-divergence's definitions over cogumi's examples
// (every token after BOS of each example, where llama-perplexity scores
// the second half of fixed-size chunks of one text).
//
// The script, when given, runs with the python toolchain and
// COGUMI_INPUT_MODEL, COGUMI_INPUT_DATASET, COGUMI_OUT and COGUMI_PARAMS;
// it must write $COGUMI_OUT/metrics.json holding {"metrics": {name: number}},
// whose metrics join the others.
type Eval struct{}

func (Eval) Kind() string { return "eval" }

// Version includes the llama.cpp runner's digest: the runner is part of
// the rule. (The python scripts' digest is in every python key.)
func (Eval) Version() string { return "1-" + llamarun.Runner().Digest()[:12] }

// evalMetrics are the metrics cogumi computes itself.
var evalMetrics = []string{"perplexity"}

// evalParams are the attributes of an eval target. Metrics, MaxExamples
// and DType are pointers: the default metrics depend on script, and
// scoring a GGUF refuses a dtype written at all.
type evalParams struct {
	Model       string    `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one .gguf file (scored by llama.cpp) or one Hugging Face checkpoint (scored by torch)"`
	Dataset     string    `cogumi:"dataset,key,required,input=label" doc:"JSONL rows (\"text\", or chat \"messages\") or .txt paragraphs: a file or a directory; \"//data:splits/val.jsonl\" names one file of an artifact"`
	Metrics     *[]string `cogumi:"metrics,key" doc:"the metrics cogumi computes: \"perplexity\"; when unset, [\"perplexity\"], or [] with a script"`
	By          string    `cogumi:"by,key" doc:"a row field: metrics are also given for each of its values (groups in metrics.json)"`
	Script      string    `cogumi:"script,key,input=file" doc:"a Python script computing more metrics: it writes {\"metrics\": {...}} to $COGUMI_OUT/metrics.json"`
	Params      cty.Value `cogumi:"params,key" doc:"any value, written as JSON to the file $COGUMI_PARAMS names, for the script"`
	MaxExamples *int      `cogumi:"max_examples,key" doc:"evaluate only the first N examples of the dataset"`
	DType       *string   `cogumi:"dtype,key"`
	Reference   string    `cogumi:"reference,key,input=label" doc:"a target whose artifact holds one .gguf of the same vocabulary (the float model): adds the KL divergence of the model's token distributions from it (kld_mean, kld_p99, top1_agreement, delta_perplexity)"`
}

func (Eval) Schema() Schema {
	return Schema{
		Summary: "perplexity and script metrics of a GGUF or a checkpoint on a dataset",
		Attrs:   withDoc(attrsOf[evalParams](), "dtype", dtypeDoc("torch (a checkpoint model)")+"; when unset, "+torchDTypes[0]),
		Traits:  Traits{Resources: true, Toolchains: []string{"python", "llama"}},
	}
}

// metrics are the metrics cogumi computes for p: those written, else
// perplexity unless a script computes the metrics.
func (p *evalParams) metrics() []string {
	switch {
	case p.Metrics != nil:
		return *p.Metrics
	case p.Script != "":
		return nil
	}
	return []string{"perplexity"}
}

// dtype is torch's compute dtype.
func (p *evalParams) dtype() string {
	if p.DType != nil {
		return *p.DType
	}
	return torchDTypes[0]
}

func (Eval) Check(t *target.Target) []AttrError {
	p, errs := decode[evalParams](t)
	if len(errs) > 0 {
		return errs
	}
	if p.DType != nil {
		errs = checkDType(*p.DType)
	}
	for _, m := range p.metrics() {
		if !slices.Contains(evalMetrics, m) {
			errs = append(errs, AttrError{Attr: "metrics", Msg: fmt.Sprintf("metric %q is not computed by cogumi (%s); compute others with script", m, strings.Join(evalMetrics, ", "))})
		}
	}
	if p.MaxExamples != nil && *p.MaxExamples < 1 {
		errs = append(errs, AttrError{Attr: "max_examples", Msg: fmt.Sprintf("max_examples %d must be at least 1", *p.MaxExamples)})
	}
	if !p.Params.IsNull() && p.Script == "" {
		errs = append(errs, AttrError{Attr: "params", Msg: "params are for the script; give script too"})
	}
	if p.Metrics != nil && len(*p.Metrics) == 0 && p.Script == "" {
		errs = append(errs, AttrError{Attr: "metrics", Msg: "nothing to compute: give a metric or a script"})
	}
	if p.Reference != "" && !slices.Contains(p.metrics(), "perplexity") {
		errs = append(errs, AttrError{Attr: "reference", Msg: "the KL divergence from reference is computed with perplexity: keep \"perplexity\" in metrics"})
	}
	if p.Reference != "" && p.DType != nil {
		errs = append(errs, AttrError{Attr: "reference", Msg: "reference compares two GGUF files through llama.cpp, which ignores dtype: remove dtype"})
	}
	return errs
}

// Outs are metrics.json and scores.jsonl (perplexity, the only metric
// computed without a script). With a script they are not declared: the
// script writes into $COGUMI_OUT, and a declared list would remove what
// else it writes there.
func (Eval) Outs(t *target.Target) []string {
	p, errs := decode[evalParams](t)
	if len(errs) > 0 || p.Script != "" {
		return nil
	}
	return []string{"metrics.json", "scores.jsonl"}
}

func (Eval) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[evalParams](a)
	if err != nil {
		return err
	}
	metrics := p.metrics()
	max := 0
	if p.MaxExamples != nil {
		max = *p.MaxExamples
	}
	dataset, ok := a.InputDirs["dataset"]
	if !ok {
		return fmt.Errorf("dataset: no input staged")
	}
	exs, err := evalset.Read(dataset, evalset.Options{By: p.By, Max: max})
	if err != nil {
		return fmt.Errorf("dataset %s: %w", p.Dataset, err)
	}
	info := evalset.Info{Model: inputLabel(t, "model", ""), Dataset: inputLabel(t, "dataset", ""), By: p.By}
	if p.Reference != "" {
		info.Reference = inputLabel(t, "reference", "")
	}
	var scores []evalset.Score
	var runtimes []string
	if slices.Contains(metrics, "perplexity") {
		res, err := scoreModel(ctx, a, p, exs)
		if err != nil {
			return err
		}
		runtimes = append(runtimes, res.Runtime)
		scores = make([]evalset.Score, len(res.Results))
		for i, r := range res.Results {
			scores[i] = evalset.Score{Tokens: r.Tokens, NLL: r.NLL}
			if c := r.Reference; c != nil {
				scores[i].Reference = &evalset.Divergence{NLL: c.NLL, KLD: c.KLD, SameTop: c.SameTop}
			}
		}
		fmt.Fprintf(a.Log, "scored %d examples with %s\n", len(exs), res.Runtime)
	}
	var extra map[string]float64
	if p.Script != "" {
		if extra, err = runMetricScript(ctx, a, p); err != nil {
			return err
		}
		runtimes = append(runtimes, "script")
	}
	info.Runtime = strings.Join(runtimes, " + ")
	m, err := evalset.Summarize(info, exs, scores, extra)
	if err != nil {
		return err
	}
	if err := evalset.Write(a.Out, m, exs, scores); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(m.Metrics)) {
		fmt.Fprintf(a.Log, "%s = %.4f over %d examples, %d tokens\n", k, m.Metrics[k], m.Examples, m.Tokens)
	}
	for _, g := range slices.Sorted(maps.Keys(m.Groups)) {
		for _, k := range slices.Sorted(maps.Keys(m.Groups[g].Metrics)) {
			fmt.Fprintf(a.Log, "  %s=%s: %s = %.4f (%d examples)\n", m.By, g, k, m.Groups[g].Metrics[k], m.Groups[g].Examples)
		}
	}
	return nil
}

// scoreModel runs the runtime that fits the model input on the examples.
func scoreModel(ctx context.Context, a *Action, p *evalParams, exs []evalset.Example) (llamarun.Result, error) {
	dir, ok := a.InputDirs["model"]
	if !ok {
		return llamarun.Result{}, fmt.Errorf("model: no input staged")
	}
	work := filepath.Dir(a.Dir)
	texts := make([]llamarun.Text, len(exs))
	for i, ex := range exs {
		texts[i] = llamarun.Text{Text: ex.Text}
	}
	input, output := filepath.Join(work, "texts.jsonl"), filepath.Join(work, "result.json")
	if err := llamarun.WriteTexts(input, texts); err != nil {
		return llamarun.Result{}, err
	}
	gguf, err := findGGUF(dir)
	if err != nil {
		return llamarun.Result{}, fmt.Errorf("model %s: %w", p.Model, err)
	}
	var reference string
	if p.Reference != "" {
		if reference, err = referenceGGUF(a, p, gguf); err != nil {
			return llamarun.Result{}, err
		}
	}
	if gguf != "" {
		if p.DType != nil {
			return llamarun.Result{}, fmt.Errorf("dtype is torch's compute dtype; model %s is a GGUF, scored by llama.cpp in its own types", p.Model)
		}
		tc, err := llamaToolchain(a)
		if err != nil {
			return llamarun.Result{}, err
		}
		script, err := llamarun.Runner().Write(work)
		if err != nil {
			return llamarun.Result{}, err
		}
		argv, env := llamarun.Command(tc, script, llamarun.Job{Model: gguf, Input: input, Output: output, Threads: actionThreads(a), Reference: reference})
		if err := a.Exec(ctx, argv, env); err != nil {
			return llamarun.Result{}, err
		}
	} else {
		facts := filepath.Join(work, "eval-facts.json")
		if err := runPython(ctx, a, []string{filepath.Join(a.PythonPath, "cogumi_eval.py"), dir, input, output, p.dtype(), facts}); err != nil {
			return llamarun.Result{}, err
		}
		reportFacts(a, facts)
	}
	return llamarun.ReadResult(output, len(exs))
}

// referenceGGUF is the reference's GGUF file; the model must be a GGUF
// too: the divergence is measured through llama.cpp.
func referenceGGUF(a *Action, p *evalParams, model string) (string, error) {
	if model == "" {
		return "", fmt.Errorf("reference: model %s is a checkpoint; the KL divergence is measured between two GGUF files through llama.cpp (convert it with a gguf target)", p.Model)
	}
	dir, ok := a.InputDirs["reference"]
	if !ok {
		return "", fmt.Errorf("reference: no input staged")
	}
	ref, err := findGGUF(dir)
	if err != nil {
		return "", fmt.Errorf("reference %s: %w", p.Reference, err)
	}
	if ref == "" {
		return "", fmt.Errorf("reference %s holds no .gguf file: give the GGUF of the float model (a gguf target with type F16, BF16 or F32)", p.Reference)
	}
	return ref, nil
}

// findGGUF returns the GGUF file the model input is or holds (the first
// shard of a split file); "" when it holds none (a checkpoint). Several
// GGUF files are an error: which one was meant?
func findGGUF(dir string) (string, error) {
	if strings.HasSuffix(dir, ".gguf") {
		return dir, nil
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".gguf") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	if first, ok := gguf.SplitFirst(found); ok {
		return first, nil // a split file: llama.cpp loads it from its first shard
	}
	return "", fmt.Errorf("the artifact holds %d .gguf files; name one (//pkg:target/file.gguf)", len(found))
}

// llamaToolchain resolves the llama toolchain for this action.
func llamaToolchain(a *Action) (toolchain.NodeLlama, error) {
	cmd := a.Toolchains["llama"]
	if cmd == "" {
		return toolchain.NodeLlama{}, fmt.Errorf(`scoring a GGUF needs llama.cpp through node-llama-cpp: declare it in cogumi.hcl:
  toolchain "llama" {
    command = "tools/node_modules/.bin/node-llama-cpp"
  }
(after npm install node-llama-cpp in tools/)`)
	}
	if !filepath.IsAbs(cmd) {
		return toolchain.NodeLlama{}, fmt.Errorf("toolchain llama: command %q is not absolute; cogumi resolves it against the workspace root", cmd)
	}
	return toolchain.FindNodeLlama(cmd)
}

// actionThreads is the CPU count the target declared, else this machine's.
func actionThreads(a *Action) int {
	if c := a.Target.Resources.CPUs; c >= 1 {
		return int(c)
	}
	return 0
}

// runMetricScript runs the user's script and reads the metrics it wrote.
func runMetricScript(ctx context.Context, a *Action, p *evalParams) (map[string]float64, error) {
	script, err := scriptPath(a)
	if err != nil {
		return nil, err
	}
	params := filepath.Join(filepath.Dir(a.Dir), "params.json")
	if err := writeParamsValue(params, p.Params); err != nil {
		return nil, err
	}
	path := filepath.Join(a.Out, "metrics.json")
	_ = os.Remove(path)
	if err := runPython(ctx, a, []string{script}, "COGUMI_PARAMS="+params); err != nil {
		return nil, err
	}
	m, err := evalset.ReadScriptMetrics(path)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", p.Script, err)
	}
	return m, os.Remove(path)
}
