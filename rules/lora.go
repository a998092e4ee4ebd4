package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/lora"
)

// Lora trains LoRA adapters on a frozen float checkpoint with the python
// toolchain (torch only; CUDA when given a GPU):
//
//	lora "code" {
//	  base    = ":sparse"       # a float Hugging Face Llama checkpoint
//	  dataset = ":failures"     # JSONL ("text" or chat "messages"), .txt, or a directory
//	  rank    = 16
//	  alpha   = 32              # the update is alpha/rank · B·A
//	  target_modules = ["q_proj", "k_proj", "v_proj", "o_proj"]   # the default
//	  params  = { lr = 1e-3, steps = 100, seed = 0, batch = 8, seq_len = 64 }
//	  dtype   = "float32"       # the frozen base's compute dtype (the adapters train in float32)
//	  resources {
//	    gpus = 1
//	  }
//	}
//
// Its artifact is the adapter in PEFT's layout (adapter_config.json,
// adapter_model.safetensors), the same adapter for llama.cpp
// (adapter.gguf, written here in Go, recording the base's label and the
// digest of its artifact, which serving matches against its model's
// source), and metrics.json from training (the
// loss curve and the settings; the device and the times go to the build log
// and events).
type Lora struct{}

func (Lora) Kind() string { return "lora" }

// Version 2: adapter.gguf records the base's label and digest.
func (Lora) Version() string { return "2" }

// loraParamKeys are the params keys cogumi_lora.py takes, with their defaults.
func loraParamKeys() map[string]string {
	return map[string]string{"lr": "1e-3", "steps": "100", "seed": "0", "batch": "8", "seq_len": "64", "log_every": "10",
		"device": `"auto" (cuda when a GPU is given), "cpu" or "cuda"`}
}

// loraParams are the attributes of a lora target. Alpha and TargetModules
// are pointers: alpha's default is the rank, and an empty list of modules
// is an error, unlike an unset one.
type loraParams struct {
	Base          string    `cogumi:"base,key,required,input=label" doc:"the frozen base: a target whose artifact holds one float Hugging Face Llama checkpoint"`
	Dataset       string    `cogumi:"dataset,key,required,input=label" doc:"training text: JSONL rows (\"text\", or chat \"messages\") or .txt paragraphs, a file or a directory"`
	Rank          int       `cogumi:"rank,key,required" doc:"the LoRA rank r (A is r x in, B is out x r)"`
	Alpha         *float64  `cogumi:"alpha,key" doc:"lora_alpha: the update is alpha/rank · B·A; when unset, the rank (a scale of 1)"`
	TargetModules *[]string `cogumi:"target_modules,key"`
	Params        cty.Value `cogumi:"params,key" doc:"training settings: lr (1e-3), steps (100), seed (0), batch (8), seq_len (64), log_every (10), device (auto)"`
	DType         string    `cogumi:"dtype,key" default:"float32"`
}

func (Lora) Schema() Schema {
	attrs := attrsOf[loraParams]()
	// These docs list the lora package's and the runtime's values.
	attrs = withDoc(attrs, "target_modules", "the projections adapted in every layer, among "+strings.Join(lora.Modules(), ", ")+
		"; when unset, "+strings.Join(lora.DefaultModules(), ", "))
	attrs = withDoc(attrs, "dtype", dtypeDoc("the frozen base"))
	return Schema{
		Summary: "LoRA adapters trained on a frozen checkpoint, for PEFT and llama.cpp",
		Attrs:   attrs,
		Traits:  Traits{Resources: true, Toolchains: []string{"python"}, UsesName: true},
	}
}

func (Lora) Check(t *target.Target) []AttrError {
	p, errs := decode[loraParams](t)
	if len(errs) > 0 {
		return errs
	}
	errs = checkDType(p.DType)
	if v, set := t.Attrs["rank"]; set && !v.IsNull() && p.Rank <= 0 {
		errs = append(errs, AttrError{Attr: "rank", Msg: fmt.Sprintf("rank %d must be a whole number of at least 1", p.Rank)})
	}
	if p.Alpha != nil && !(*p.Alpha > 0) {
		errs = append(errs, AttrError{Attr: "alpha", Msg: fmt.Sprintf("alpha %g must be positive", *p.Alpha)})
	}
	if p.TargetModules != nil {
		mods := *p.TargetModules
		if len(mods) == 0 {
			errs = append(errs, AttrError{Attr: "target_modules", Msg: "target_modules is empty: list at least one of " + strings.Join(lora.Modules(), ", ")})
		}
		seen := map[string]bool{}
		for _, m := range mods {
			switch {
			case !slices.Contains(lora.Modules(), m):
				errs = append(errs, AttrError{Attr: "target_modules", Msg: fmt.Sprintf("%q is not a Llama projection; use %s", m, strings.Join(lora.Modules(), ", "))})
			case seen[m]:
				errs = append(errs, AttrError{Attr: "target_modules", Msg: fmt.Sprintf("%q is listed twice", m)})
			}
			seen[m] = true
		}
	}
	if v := p.Params; !v.IsNull() {
		if !v.Type().IsObjectType() && !v.Type().IsMapType() {
			errs = append(errs, AttrError{Attr: "params", Msg: "params must be an object, e.g. { lr = 1e-3, steps = 100 }"})
		} else {
			known := loraParamKeys()
			for it := v.ElementIterator(); it.Next(); {
				k, _ := it.Element()
				if _, ok := known[k.AsString()]; !ok {
					names := make([]string, 0, len(known))
					for n := range known {
						names = append(names, n)
					}
					slices.Sort(names)
					errs = append(errs, AttrError{Attr: "params", Msg: fmt.Sprintf("unknown param %q; lora takes %s", k.AsString(), strings.Join(names, ", "))})
				}
			}
		}
	}
	return errs
}

func (Lora) Outs(*target.Target) []string {
	return []string{lora.ConfigFile, lora.WeightsFile, lora.GGUFFile, "metrics.json"}
}

// loraSettings returns rank, alpha and the target modules, with defaults.
func loraSettings(p *loraParams) (rank int, alpha float64, modules []string) {
	rank, alpha = p.Rank, float64(p.Rank)
	if p.Alpha != nil {
		alpha = *p.Alpha
	}
	if p.TargetModules != nil {
		modules = *p.TargetModules
	}
	if len(modules) == 0 {
		modules = lora.DefaultModules()
	}
	return rank, alpha, modules
}

func (Lora) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[loraParams](a)
	if err != nil {
		return err
	}
	rank, alpha, modules := loraSettings(p)
	if rank <= 0 {
		return fmt.Errorf("rank %d: the rank must be at least 1", rank)
	}
	// Validate the base here, with cogumi's checkpoint reader, so that a
	// quantised or malformed base fails with one clear message before
	// python starts.
	base, err := openModelInput(a, "base")
	if err != nil {
		return err
	}
	defer base.Close()
	for _, tr := range base.Tensors() {
		if !tr.DType.IsFloat() {
			return fmt.Errorf("base %s: tensor %s has dtype %s; lora trains on a float checkpoint (F32, F16, BF16), before quantisation",
				inputLabel(t, "base", ""), tr.Name, tr.DType)
		}
	}
	cfg := base.Config()
	if cfg.AttentionBias || cfg.MLPBias || cfg.RopeScaling != nil {
		return fmt.Errorf("base %s uses attention/MLP biases or scaled RoPE, which lora's trainer does not implement", inputLabel(t, "base", ""))
	}
	dataset, ok := a.InputDirs["dataset"]
	if !ok {
		return fmt.Errorf("dataset: no input staged")
	}
	params := json.RawMessage("{}")
	if v := p.Params; !v.IsNull() {
		if params, err = ctyjson.Marshal(v, v.Type()); err != nil {
			return fmt.Errorf("encoding params: %w", err)
		}
	}
	facts := filepath.Join(filepath.Dir(a.Dir), "lora-facts.json")
	job := map[string]any{
		"base_dir": base.Dir(), "base_label": inputLabel(t, "base", ""), "dataset": dataset, "dataset_label": inputLabel(t, "dataset", ""),
		"rank": rank, "alpha": alpha, "target_modules": modules, "params": params, "dtype": p.DType, "facts": facts,
	}
	b, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		return err
	}
	jobPath := filepath.Join(filepath.Dir(a.Dir), "lora.json")
	if err := os.WriteFile(jobPath, b, 0o644); err != nil {
		return err
	}
	if err := runPython(ctx, a, []string{filepath.Join(a.PythonPath, "cogumi_lora.py")}, "COGUMI_LORA_CONFIG="+jobPath); err != nil {
		return err
	}
	reportFacts(a, facts)

	// The script's output comes from outside Go: read it back as any
	// adapter, check it against the base, and write the llama.cpp file.
	ad, err := lora.Open(a.Out)
	if err != nil {
		return err
	}
	defer ad.Close()
	if err := ad.CheckBase(base); err != nil {
		return err
	}
	ggufPath := filepath.Join(a.Out, lora.GGUFFile)
	baseRef := lora.Base{Label: inputLabel(t, "base", ""), Digest: a.InputDigests["base"]}
	if err := lora.WriteGGUF(ad, cfg, ggufPath, t.Label.Name, baseRef); err != nil {
		return fmt.Errorf("writing %s: %w", lora.GGUFFile, err)
	}
	var sizes []string
	for _, f := range []string{lora.WeightsFile, lora.GGUFFile} {
		fi, err := os.Stat(filepath.Join(a.Out, f))
		if err != nil {
			return err
		}
		sizes = append(sizes, fmt.Sprintf("%s %d bytes", f, fi.Size()))
	}
	fmt.Fprintf(a.Log, "lora %s: rank %d, alpha %s, %d adapted linears (%s); %s\n", t.Label, rank,
		big.NewFloat(alpha).Text('g', -1), len(ad.Pairs()), strings.Join(modules, ", "), strings.Join(sizes, ", "))
	return nil
}
