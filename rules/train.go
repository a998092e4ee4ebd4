package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cogumi/cogumi/engine/target"
)

// Train runs a training script with the python toolchain:
//
//	train "base" {
//	  script  = "train.py"
//	  srcs    = ["model_lib.py"]
//	  base    = "//checkpoints:llama"
//	  dataset = "//data:episodes"
//	  params  = { lr = 2e-5, epochs = 3 }
//	}
//
// The script reads the environment contract (ContractEnv) plus
// COGUMI_PARAMS, and writes its checkpoint (and metrics.json) into $OUT.
type Train struct{}

func (Train) Kind() string         { return "train" }
func (Train) Version() string      { return "1" }
func (Train) Toolchains() []string { return []string{"python"} }

func (Train) Schema() Schema {
	return Schema{
		Resources: true,
		Attrs: []Attr{
			{Name: "script", Type: cty.String, Required: true, Input: FileInput, Key: InKey,
				Doc: "the Python script to run, a file of the package (or a label)"},
			{Name: "srcs", Type: cty.List(cty.String), Input: SourcesInput, Key: InKey,
				Doc: "helper files the script imports, and other inputs"},
			{Name: "base", Type: cty.String, Input: LabelInput, Key: InKey,
				Doc: "the checkpoint to start from: $COGUMI_INPUT_BASE"},
			{Name: "dataset", Type: cty.String, Input: LabelInput, Key: InKey,
				Doc: "the training data: $COGUMI_INPUT_DATASET"},
			{Name: "params", Type: cty.DynamicPseudoType, Key: InKey,
				Doc: "any value, written as JSON to the file $COGUMI_PARAMS names"},
			{Name: "env", Type: cty.Map(cty.String), Key: InKey,
				Doc: "environment variables for the script; their values are part of the key"},
		},
	}
}

func (Train) Check(t *target.Target) []AttrError {
	var errs []AttrError
	for k := range t.StringMap("env") {
		if isReservedEnv(k) {
			errs = append(errs, AttrError{Attr: "env", Msg: fmt.Sprintf("%s is set by cogumi and cannot be overridden", k)})
		}
	}
	return errs
}

func (Train) Outs(*target.Target) []string { return nil }

func (Train) Execute(ctx context.Context, a *Action) error {
	script, err := scriptPath(a)
	if err != nil {
		return err
	}
	params := filepath.Join(filepath.Dir(a.Dir), "params.json")
	if err := writeParams(params, a.Target); err != nil {
		return err
	}
	env := append([]string{"COGUMI_PARAMS=" + params}, declaredEnv(a.Target.StringMap("env"))...)
	return runPython(ctx, a, []string{script}, env...)
}

// scriptPath is where the script is staged, relative to the scratch directory.
func scriptPath(a *Action) (string, error) {
	for _, in := range a.Target.Inputs {
		if in.Attr != "script" {
			continue
		}
		if in.IsFile() {
			return in.File, nil
		}
		if dir, ok := a.InputDirs["script"]; ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("the script input was not staged")
}

// writeParams writes the params attribute as JSON (null when absent).
func writeParams(path string, t *target.Target) error {
	b := []byte("null")
	if v, ok := t.Attrs["params"]; ok && !v.IsNull() {
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return fmt.Errorf("encoding params: %w", err)
		}
		var x any
		if err := json.Unmarshal(js, &x); err != nil {
			return err
		}
		if b, err = json.MarshalIndent(x, "", "  "); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b, 0o644)
}
