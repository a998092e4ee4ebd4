package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/evalset"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/llamarun"
)

// Calibrate records a checkpoint's activation statistics on calibration
// text, for AWQ:
//
//	calibrate "calib" {
//	  model    = ":sparse"        # a Hugging Face Llama checkpoint
//	  dataset  = "//data:calib"   # JSONL ("text" or chat "messages") or .txt, a file or a directory
//	  samples  = 128              # sequences ...
//	  seq_len  = 512              # ... of this many tokens
//	  max_rows = 512              # token rows kept per input (a seeded uniform sample)
//	  seed     = 0
//	  dtype    = "float32"        # the compute dtype: float32, bfloat16, float16
//	  resources {
//	    gpus = 1                  # CUDA when given a GPU; the CPU otherwise
//	  }
//	}
//
// The texts are tokenised with the checkpoint's tokenizer (BOS first),
// concatenated in dataset order and cut into samples x seq_len tokens. The
// artifact is calibration.safetensors (per decoder layer and per input the
// linears read: the mean |x| per channel over every token, and the rows of
// up to max_rows sampled tokens) and calibration.json. It runs cogumi's
// torch runtime with the python toolchain. The device it ran on and the
// times go to the build log and events, not into the artifact.
type Calibrate struct{}

func (Calibrate) Kind() string         { return "calibrate" }
func (Calibrate) Version() string      { return "1" }
func (Calibrate) Toolchains() []string { return []string{"python"} }

func (Calibrate) Schema() Schema {
	return Schema{
		Resources: true,
		Attrs: []Attr{
			{Name: "model", Type: cty.String, Required: true, Input: LabelInput, Key: InKey,
				Doc: "a target whose artifact holds one Hugging Face Llama checkpoint"},
			{Name: "dataset", Type: cty.String, Required: true, Input: LabelInput, Key: InKey,
				Doc: `calibration text: JSONL rows ("text", or chat "messages") or .txt paragraphs, a file or a directory`},
			{Name: "samples", Type: cty.Number, Key: InKey,
				Doc: "how many sequences to run (default 128)"},
			{Name: "seq_len", Type: cty.Number, Key: InKey,
				Doc: "tokens per sequence (default 512)"},
			{Name: "max_rows", Type: cty.Number, Key: InKey,
				Doc: "token rows of each input kept in calibration.safetensors, a seeded uniform sample (default 512)"},
			{Name: "seed", Type: cty.Number, Key: InKey,
				Doc: "seed of the row sample (default 0)"},
			dtypeAttr("the model"),
		},
	}
}

// calibDefaults are the attributes' defaults, AWQ's usual 128 x 512.
var calibDefaults = map[string]int{"samples": 128, "seq_len": 512, "max_rows": 512, "seed": 0}

func calibParam(t *target.Target, name string) int {
	if n, ok := wholeNumber(t, name); ok {
		return n
	}
	return calibDefaults[name]
}

func (Calibrate) Check(t *target.Target) []AttrError {
	errs := checkDType(t)
	for _, name := range []string{"samples", "seq_len", "max_rows", "seed"} {
		v, ok := t.Attrs[name]
		if !ok || v.IsNull() {
			continue
		}
		if !v.AsBigFloat().IsInt() {
			errs = append(errs, AttrError{Attr: name, Msg: fmt.Sprintf("%s must be a whole number", name)})
			continue
		}
		min := 1
		if name == "seed" {
			min = 0
		}
		if n := calibParam(t, name); n < min {
			errs = append(errs, AttrError{Attr: name, Msg: fmt.Sprintf("%s %d must be at least %d", name, n, min)})
		}
	}
	return errs
}

func (Calibrate) Outs(*target.Target) []string {
	return []string{"calibration.safetensors", "calibration.json"}
}

func (Calibrate) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	model, ok := a.InputDirs["model"]
	if !ok {
		return fmt.Errorf("model: no input staged")
	}
	dataset, ok := a.InputDirs["dataset"]
	if !ok {
		return fmt.Errorf("dataset: no input staged")
	}
	exs, err := evalset.Read(dataset, evalset.Options{})
	if err != nil {
		return fmt.Errorf("dataset %s: %w", t.String("dataset"), err)
	}
	work := filepath.Dir(a.Dir)
	texts := make([]llamarun.Text, len(exs))
	for i, ex := range exs {
		texts[i] = llamarun.Text{Text: ex.Text}
	}
	input := filepath.Join(work, "texts.jsonl")
	if err := llamarun.WriteTexts(input, texts); err != nil {
		return err
	}
	facts := filepath.Join(work, "calibrate-facts.json")
	params := map[string]any{"dtype": torchDType(t), "facts": facts}
	for name := range calibDefaults {
		params[name] = calibParam(t, name)
	}
	b, _ := json.Marshal(params)
	paramsPath := filepath.Join(work, "calibrate.json")
	if err := os.WriteFile(paramsPath, b, 0o644); err != nil {
		return err
	}
	if err := runPython(ctx, a, []string{filepath.Join(a.PythonPath, "cogumi_calibrate.py"), model, input, a.Out, paramsPath}); err != nil {
		return err
	}
	reportFacts(a, facts)
	return nil
}
