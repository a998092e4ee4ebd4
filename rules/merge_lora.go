package rules

import (
	"context"
	"fmt"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/lora"
)

// MergeLora merges a LoRA adapter into its base checkpoint:
//
//	merge_lora "code_merged" {
//	  base    = ":sparse"   # the checkpoint the adapter was trained on
//	  adapter = ":code"     # a lora target (or any PEFT LoRA adapter)
//	}
//
// Every adapted weight becomes W + (alpha/r)·B·A, computed in float64 and
// rounded once to the base's dtype; everything else is copied byte for
// byte. Its artifact is a checkpoint in the base's layout (shards, dtypes,
// tokenizer) plus merge_lora.json.
type MergeLora struct{}

func (MergeLora) Kind() string    { return "merge_lora" }
func (MergeLora) Version() string { return "1" }

// mergeLoraParams are the attributes of a merge_lora target. Execute
// reads only their staged artifacts.
type mergeLoraParams struct {
	Base    string `cogumi:"base,key,required,input=label" doc:"a target whose artifact holds one float Hugging Face Llama checkpoint"`
	Adapter string `cogumi:"adapter,key,required,input=label" doc:"a target whose artifact holds one PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors)"`
}

func (MergeLora) Schema() Schema {
	return Schema{Summary: "a LoRA adapter merged into its base checkpoint", Attrs: attrsOf[mergeLoraParams]()}
}

func (MergeLora) Check(t *target.Target) []AttrError {
	_, errs := decode[mergeLoraParams](t)
	return errs
}

// Outs are not declared: the merged checkpoint has the base's layout
// (its shard and tokenizer files), known only from the input.
func (MergeLora) Outs(*target.Target) []string { return nil }

func (MergeLora) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	base, err := openModelInput(a, "base")
	if err != nil {
		return err
	}
	defer base.Close()
	dir, ok := a.InputDirs["adapter"]
	if !ok {
		return fmt.Errorf("adapter: no input staged")
	}
	adDir, err := lora.Find(dir)
	if err != nil {
		return fmt.Errorf("adapter %s: %w", inputLabel(t, "adapter", ""), err)
	}
	ad, err := lora.Open(adDir)
	if err != nil {
		return fmt.Errorf("adapter %s: %w", inputLabel(t, "adapter", ""), err)
	}
	defer ad.Close()
	if trained, given := ad.Config().BaseModel, inputLabel(t, "base", ""); trained != "" && trained != given {
		// A label names a target, not its content: the adapter may well fit
		// (CheckBase verifies the shapes), but the user should know.
		fmt.Fprintf(a.Log, "warning: adapter %s was trained on %s, merged here into %s\n", inputLabel(t, "adapter", ""), trained, given)
	}
	rep, err := lora.Merge(ctx, base, ad, a.Out)
	if err != nil {
		return fmt.Errorf("adapter %s: %w", inputLabel(t, "adapter", ""), err)
	}
	fmt.Fprintf(a.Log, "merged %s into %s: %d weights + %g·B·A (rank %d), largest |change| %.3g\n",
		inputLabel(t, "adapter", ""), inputLabel(t, "base", ""), len(rep.Modules), rep.Scale, rep.Rank, rep.MaxAbsDelta)
	return nil
}
