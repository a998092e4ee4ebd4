package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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

func (Calibrate) Kind() string    { return "calibrate" }
func (Calibrate) Version() string { return "1" }

// calibrateParams are the attributes of a calibrate target; the defaults
// are AWQ's usual 128 x 512.
type calibrateParams struct {
	Model   string `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face Llama checkpoint"`
	Dataset string `cogumi:"dataset,key,required,input=label" doc:"calibration text: JSONL rows (\"text\", or chat \"messages\") or .txt paragraphs, a file or a directory"`
	Samples int    `cogumi:"samples,key" default:"128" doc:"how many sequences to run"`
	SeqLen  int    `cogumi:"seq_len,key" default:"512" doc:"tokens per sequence"`
	MaxRows int    `cogumi:"max_rows,key" default:"512" doc:"token rows of each input kept in calibration.safetensors, a seeded uniform sample"`
	Seed    int    `cogumi:"seed,key" default:"0" doc:"seed of the row sample"`
	DType   string `cogumi:"dtype,key" default:"float32"`
}

func (Calibrate) Schema() Schema {
	return Schema{
		Summary: "activation statistics of a checkpoint on calibration text, for awq",
		Attrs:   withDoc(attrsOf[calibrateParams](), "dtype", dtypeDoc("the model")),
		Traits:  Traits{Resources: true, Toolchains: []string{"python"}},
	}
}

func (Calibrate) Check(t *target.Target) []AttrError {
	p, errs := decode[calibrateParams](t)
	if len(errs) > 0 {
		return errs
	}
	errs = checkDType(p.DType)
	for _, f := range []struct {
		name   string
		n, min int
	}{{"samples", p.Samples, 1}, {"seq_len", p.SeqLen, 1}, {"max_rows", p.MaxRows, 1}, {"seed", p.Seed, 0}} {
		if f.n < f.min {
			errs = append(errs, AttrError{Attr: f.name, Msg: fmt.Sprintf("%s %d must be at least %d", f.name, f.n, f.min)})
		}
	}
	return errs
}

func (Calibrate) Outs(*target.Target) []string {
	return []string{"calibration.safetensors", "calibration.json"}
}

func (Calibrate) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[calibrateParams](a)
	if err != nil {
		return err
	}
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
	params := map[string]any{"samples": p.Samples, "seq_len": p.SeqLen, "max_rows": p.MaxRows, "seed": p.Seed,
		"dtype": p.DType, "facts": facts}
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
