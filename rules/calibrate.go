package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/executor/python"
	"github.com/cogumi/cogumi/model/imatrix"
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
//
// With an imatrix attribute the artifact also holds imatrix.gguf, the
// importance matrix of the same model and dataset computed in the same
// action on the model loaded once, byte for byte the file an imatrix target
// with these settings and the calibrate target's dtype writes (its chunking
// is llama-imatrix's, not calibrate's sequences); a gguf imatrix attribute
// takes either target (imatrix.Find):
//
//	calibrate "calib" {
//	  model   = ":sparse"
//	  dataset = "//data:calib"
//	  imatrix = { chunk_size = 512, chunks = 0, process_output = false }   # {} for these defaults
//	}
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
	// Imatrix is an object of imatrixSettings' keys; unset (null), the
	// action and its key are calibrate's alone.
	Imatrix cty.Value `cogumi:"imatrix,key" doc:"also the importance matrix (imatrix.gguf), in the same action: { chunk_size = 512, chunks = 0, process_output = false }, the imatrix rule's attributes and defaults"`
}

// calibrateImatrixScript runs calibrate and the importance matrix over one
// loaded model (executor/python).
const calibrateImatrixScript = "script_calibrate_imatrix.py"

// imatrix returns the importance matrix's settings, nil when the target
// asks for none. Its errors name the key of the object at fault.
func (p *calibrateParams) imatrix() (*imatrixSettings, []AttrError) {
	v := p.Imatrix
	if v.IsNull() {
		return nil, nil
	}
	fail := func(format string, args ...any) (*imatrixSettings, []AttrError) {
		return nil, []AttrError{{Attr: "imatrix", Msg: fmt.Sprintf(format, args...)}}
	}
	const example = "{ chunk_size = 512, chunks = 0, process_output = false }"
	if !v.IsWhollyKnown() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		return fail("expected an object such as %s", example)
	}
	var known []string
	for _, a := range attrsOf[imatrixSettings]() {
		known = append(known, a.Name)
	}
	attrs := v.AsValueMap()
	for _, k := range sortedKeysOf(attrs) {
		if !slices.Contains(known, k) {
			return fail("unknown key %q (accepted: %s)", k, strings.Join(known, ", "))
		}
	}
	s, errs := decode[imatrixSettings](&target.Target{Attrs: attrs})
	if len(errs) == 0 {
		errs = s.check()
	}
	for i := range errs {
		errs[i] = AttrError{Attr: "imatrix", Msg: errs[i].Attr + ": " + errs[i].Msg}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
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
	_, imErrs := p.imatrix()
	return append(errs, imErrs...)
}

func (Calibrate) Outs(t *target.Target) []string {
	outs := []string{"calibration.safetensors", "calibration.json"}
	if v, ok := t.Attrs["imatrix"]; ok && !v.IsNull() {
		outs = append(outs, imatrix.File)
	}
	return outs
}

// KeyRecords puts the digest of the script a target with an imatrix
// attribute runs into its key; other targets' keys are calibrate's as they
// were before the attribute existed.
func (Calibrate) KeyRecords(t *target.Target) []KeyRecord {
	if v, ok := t.Attrs["imatrix"]; !ok || v.IsNull() {
		return nil
	}
	b, err := python.Script(calibrateImatrixScript)
	if err != nil {
		b = []byte(err.Error()) // not in this build: Execute fails with the error
	}
	return []KeyRecord{{Name: fmt.Sprintf("python-script %q", calibrateImatrixScript), Value: cache.DigestBytes(b).String()}}
}

func (Calibrate) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[calibrateParams](a)
	if err != nil {
		return err
	}
	ims, errs := p.imatrix()
	if len(errs) > 0 {
		return fmt.Errorf("%s: attribute \"imatrix\": %s", a.Target.AttrPos["imatrix"], errs[0].Msg)
	}
	model, ok := a.InputDirs["model"]
	if !ok {
		return fmt.Errorf("model: no input staged")
	}
	exs, err := datasetTexts(a)
	if err != nil {
		return err
	}
	work := filepath.Dir(a.Dir)
	texts := make([]llamarun.Text, len(exs))
	for i, ex := range exs {
		texts[i] = llamarun.Text{Text: ex}
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
	if ims == nil {
		if err := runPython(ctx, a, []string{filepath.Join(a.PythonPath, "cogumi_calibrate.py"), model, input, a.Out, paramsPath}); err != nil {
			return err
		}
		reportFacts(a, facts)
		return nil
	}
	run, err := prepareImatrix(work, exs, *ims, p.DType)
	if err != nil {
		return err
	}
	script, err := python.Script(calibrateImatrixScript)
	if err != nil {
		return err
	}
	scriptPath := filepath.Join(work, calibrateImatrixScript)
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		return err
	}
	both := filepath.Join(work, "calibrate-imatrix-facts.json")
	if err := runPython(ctx, a, []string{scriptPath, model, input, a.Out, paramsPath, run.text, run.sums, run.params, both}); err != nil {
		return err
	}
	reportFacts(a, both)
	return writeImatrix(a, run, *ims)
}
