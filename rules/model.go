package rules

import (
	"context"
	"errors"
	"fmt"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/checkpoint"
)

// Model is a Hugging Face Llama-family checkpoint directory of the
// workspace (model "base" { path = "checkpoints/tiny-llama" }). It runs
// nothing: its artifact is the directory's files, hashed where they lie
// (a 16 GB base is hashed once), and validated whenever they change.
type Model struct{}

func (Model) Kind() string    { return "model" }
func (Model) Version() string { return "1" }

// modelParams are the attributes of a model target.
type modelParams struct {
	Path string `cogumi:"path,key,required" doc:"the checkpoint directory (config.json, *.safetensors, tokenizer), relative to the package"`
}

func (Model) Schema() Schema {
	return Schema{Summary: "a Hugging Face Llama-family checkpoint directory, hashed where it lies, validated when it changes", Attrs: attrsOf[modelParams](), Traits: Traits{Source: true}}
}

func (Model) Check(t *target.Target) []AttrError {
	p, errs := decode[modelParams](t)
	if len(errs) > 0 {
		return errs
	}
	if err := CheckOutPath(p.Path); err != nil {
		return []AttrError{{Attr: "path", Msg: "path must be a clean directory path inside the package"}}
	}
	return nil
}

// Outs: a source group has no action, so no outputs.
func (Model) Outs(*target.Target) []string { return nil }

// SourceDir returns the path attribute; a bad one was reported by Check.
func (Model) SourceDir(t *target.Target) (string, string) {
	p, _ := decode[modelParams](t)
	return p.Path, "path"
}

// CheckSource opens the checkpoint, which validates its configuration,
// every shard's header against its size, and the tokenizer.
func (Model) CheckSource(_ context.Context, t *target.Target, dir string) error {
	m, err := checkpoint.Open(dir)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", t.AttrPos["path"], t.Label, err)
	}
	return m.Close()
}

func (Model) Execute(context.Context, *Action) error {
	return errors.New("model targets are source directories and have no action")
}

// openModelInput opens the single checkpoint directory inside the artifact
// staged for attr: a model target's artifact, or a train target's output.
func openModelInput(a *Action, attr string) (*checkpoint.Model, error) {
	dir, ok := a.InputDirs[attr]
	if !ok {
		return nil, fmt.Errorf("%s: no input staged", attr)
	}
	cdir, err := checkpoint.Find(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attr, err)
	}
	m, err := checkpoint.Open(cdir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attr, err)
	}
	return m, nil
}
