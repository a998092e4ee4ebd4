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

func (Train) Kind() string    { return "train" }
func (Train) Version() string { return "1" }

// trainParams are the attributes of a train target.
type trainParams struct {
	Script  string            `cogumi:"script,key,required,input=file" doc:"the Python script to run, a file of the package (or a label)"`
	Srcs    []string          `cogumi:"srcs,key,input=sources" doc:"helper files the script imports, and other inputs"`
	Base    string            `cogumi:"base,key,input=label" doc:"the checkpoint to start from: $COGUMI_INPUT_BASE"`
	Dataset string            `cogumi:"dataset,key,input=label" doc:"the training data: $COGUMI_INPUT_DATASET"`
	Params  cty.Value         `cogumi:"params,key" doc:"any value, written as JSON to the file $COGUMI_PARAMS names"`
	Env     map[string]string `cogumi:"env,key" doc:"environment variables for the script; their values are part of the key"`
}

func (Train) Schema() Schema {
	return Schema{Summary: "a Python training script, run with the python toolchain", Attrs: attrsOf[trainParams](), Traits: Traits{Resources: true, Toolchains: []string{"python"}}}
}

func (Train) Check(t *target.Target) []AttrError {
	p, errs := decode[trainParams](t)
	if len(errs) > 0 {
		return errs
	}
	for k := range p.Env {
		if isReservedEnv(k) {
			errs = append(errs, AttrError{Attr: "env", Msg: fmt.Sprintf("%s is set by cogumi and cannot be overridden", k)})
		}
	}
	return errs
}

// Outs are not declared: the script decides what it writes.
func (Train) Outs(*target.Target) []string { return nil }

func (Train) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[trainParams](a)
	if err != nil {
		return err
	}
	script, err := scriptPath(a)
	if err != nil {
		return err
	}
	params := filepath.Join(filepath.Dir(a.Dir), "params.json")
	if err := writeParamsValue(params, p.Params); err != nil {
		return err
	}
	env := append([]string{"COGUMI_PARAMS=" + params}, declaredEnv(p.Env)...)
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

// writeParamsValue writes a params value as JSON (null when absent: the
// zero cty.Value, or null).
func writeParamsValue(path string, v cty.Value) error {
	b := []byte("null")
	if !v.IsNull() {
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
