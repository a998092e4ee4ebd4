package rules

import (
	"context"
	"fmt"
	"strings"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
)

// GGUF converts a checkpoint to one GGUF file for llama.cpp:
//
//	gguf "final" {
//	  model = ":sparse"
//	  type  = "Q4_K_M"   # F32, F16, BF16, Q8_0, Q4_0, Q4_K_S, Q4_K_M
//	  pure  = false      # true: one type for every 2-D tensor
//	  name  = "tiny"     # general.name; default: the model target's name
//	  tokenizer_pre = "llama-bpe"  # only for a BPE pre-tokenizer llama.cpp's table lacks
//	}
//
// Its artifact is the single file <name>-<size>-<type>.gguf (llama.cpp's
// naming convention: tiny-1.4M-Q4_K_M.gguf), whose tensor types are those
// llama-quantize would choose.
type GGUF struct{}

func (GGUF) Kind() string    { return "gguf" }
func (GGUF) Version() string { return "3" } // 2: pre-tokenizers by digest, SentencePiece-style tokenizer.json; 3: the source's digest

// ggufParams are the attributes of a gguf target. Name and TokenizerPre
// are pointers: when unset, they are derived (see their docs).
type ggufParams struct {
	Model        string  `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face checkpoint directory"`
	Type         string  `cogumi:"type,key,required"`
	Pure         bool    `cogumi:"pure,key" default:"false" doc:"store every 2-D tensor in the type's base type, as llama-quantize --pure"`
	Name         *string `cogumi:"name,key" doc:"general.name and the start of the file name; when unset, the name of the model target"`
	TokenizerPre *string `cogumi:"tokenizer_pre,key" doc:"tokenizer.ggml.pre for a byte-level BPE tokenizer whose pre-tokenizer llama.cpp's converter does not recognise by its digest, but which splits text as the named llama.cpp pre-tokenizer does; when unset, identified as the converter does"`
}

func (GGUF) Schema() Schema {
	// The list of types comes from ggufconv, so that doc is not a tag.
	attrs := withDoc(attrsOf[ggufParams](), "type",
		"the GGUF file type: "+strings.Join(ggufconv.Types(), ", ")+" (llama-quantize's mixes for the K types)")
	return Schema{Summary: "one GGUF file for llama.cpp from a checkpoint", Attrs: attrs, Traits: Traits{AllCPUs: true}}
}

func (GGUF) Check(t *target.Target) []AttrError {
	p, errs := decode[ggufParams](t)
	if len(errs) > 0 {
		return errs
	}
	if _, err := ggufconv.ParseType(p.Type); err != nil {
		errs = append(errs, AttrError{Attr: "type", Msg: err.Error()})
	}
	if p.Name != nil {
		if n := strings.TrimSpace(*p.Name); n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
			errs = append(errs, AttrError{Attr: "name", Msg: fmt.Sprintf("name %q must be a non-empty file name part without slashes", *p.Name)})
		}
	}
	if p.TokenizerPre != nil && !checkpoint.KnownLlamaCppPre(*p.TokenizerPre) {
		errs = append(errs, AttrError{Attr: "tokenizer_pre", Msg: fmt.Sprintf("%q is not a pre-tokenizer llama.cpp knows (llama-bpe, qwen2, gpt-2, ...; see src/llama-vocab.cpp)", *p.TokenizerPre)})
	}
	return errs
}

// Outs are not declared: the file's name holds the model's size
// (tiny-1.4M-Q4_K_M.gguf), counted from the input's tensors.
func (GGUF) Outs(*target.Target) []string { return nil }

// ggufName is the model's name in the file: the name attribute, else the
// name of the model target. Both are in the action key (the input record
// names the model's label), so the file name never changes without the key.
func ggufName(t *target.Target, p *ggufParams) string {
	if p.Name != nil {
		if n := strings.TrimSpace(*p.Name); n != "" {
			return n
		}
	}
	for _, in := range t.Inputs {
		if in.Attr == "model" && !in.IsFile() {
			return in.Label.Name
		}
	}
	if l, err := label.Parse(p.Model, t.Label.Pkg); err == nil {
		return l.Name
	}
	return "model"
}

func (GGUF) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[ggufParams](a)
	if err != nil {
		return err
	}
	m, err := openModelInput(a, "model")
	if err != nil {
		return err
	}
	defer m.Close()
	// The source's digest lets serving match adapters trained on it.
	opts := ggufconv.Options{Type: p.Type, Pure: p.Pure, Name: ggufName(a.Target, p), SourceDigest: a.InputDigests["model"]}
	if p.TokenizerPre != nil {
		opts.TokenizerPre = *p.TokenizerPre
	}
	rep, err := ggufconv.Convert(ctx, m, a.Out, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Log, "tokenizer: %s\n", rep.Tokenizer)
	for _, w := range rep.Warnings {
		fmt.Fprintf(a.Log, "warning: %s\n", w)
	}
	for _, tr := range rep.Tensors {
		fmt.Fprintf(a.Log, "%-32s %-6s %-14s %10d bytes\n", tr.Name, tr.Type, fmt.Sprint(tr.Shape), tr.Bytes)
	}
	fmt.Fprintf(a.Log, "wrote %s: %s, %d weights, %d bytes; %s\n", rep.File, rep.Type, rep.Params, rep.Size, rep.Summary())
	return nil
}
