package rules

import (
	"context"
	"fmt"
	"strings"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/imatrix"
)

// GGUF converts a checkpoint to one GGUF file for llama.cpp:
//
//	gguf "final" {
//	  model = ":sparse"
//	  type  = "Q4_K_M"   # F32, F16, BF16, Q8_0, Q4_0, Q6_K ... Q2_K_S (ggufconv.Types)
//	  pure  = false      # true: one type for every 2-D tensor
//	  imatrix = ":im"    # an imatrix target: quantise with its importance weights
//	  tensor_types = [["attn_v", "Q8_0"], ["ffn_down", "Q6_K"]]  # first match wins
//	  token_embedding_type = "Q8_0"
//	  output_tensor_type   = "Q8_0"
//	  name  = "tiny"     # general.name; default: the model target's name
//	  tokenizer_pre = "llama-bpe"  # only for a BPE pre-tokenizer llama.cpp's table lacks
//	}
//
// Its artifact is the single file <name>-<size>-<type>.gguf (llama.cpp's
// naming convention: tiny-1.4M-Q4_K_M.gguf), whose tensor types are those
// llama-quantize would choose.
type GGUF struct{}

func (GGUF) Kind() string    { return "gguf" }
func (GGUF) Version() string { return "4" } // 2: pre-tokenizers by digest, SentencePiece-style tokenizer.json; 3: the source's digest; 4: the K-quant mixes, imatrix and overrides join the golden (earlier types' bytes unchanged)

// ggufParams are the attributes of a gguf target. Name and TokenizerPre
// are pointers: when unset, they are derived (see their docs).
type ggufParams struct {
	Model        string  `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face checkpoint directory"`
	Type         string  `cogumi:"type,key,required"`
	Pure         bool    `cogumi:"pure,key" default:"false" doc:"store every 2-D tensor in the type's base type, as llama-quantize --pure"`
	Name         *string `cogumi:"name,key" doc:"general.name and the start of the file name; when unset, the name of the model target"`
	TokenizerPre *string `cogumi:"tokenizer_pre,key" doc:"tokenizer.ggml.pre for a byte-level BPE tokenizer whose pre-tokenizer llama.cpp's converter does not recognise by its digest, but which splits text as the named llama.cpp pre-tokenizer does; when unset, identified as the converter does"`
	// Quantisation options, llama-quantize's --imatrix, --tensor-type,
	// --token-embedding-type and --output-tensor-type.
	Imatrix          string     `cogumi:"imatrix,key,input=label" doc:"an imatrix target (its artifact's imatrix.gguf): every tensor is quantised with its importance weights, as llama-quantize --imatrix does, and the file records quantize.imatrix.file (the file's path in that artifact), .dataset, .entries_count and .chunks_count; Q2_K_S needs one"`
	TensorTypes      [][]string `cogumi:"tensor_types,key" doc:"per-tensor types, llama-quantize's --tensor-type, as an ordered list of [pattern, type] pairs ([[\"attn_v\", \"Q8_0\"], [\"blk\\\\.[0-9]+\\\\.ffn_down\", \"Q6_K\"]]): the first pattern (a regular expression, lower-cased as llama-quantize does) found in a tensor's llama.cpp name gives its type instead of the mix; quantised file types only"`
	TokenEmbedding   string     `cogumi:"token_embedding_type,key" doc:"the type of token_embd.weight whatever the mix (llama-quantize --token-embedding-type; Q8_0 for the community's _L files)"`
	OutputTensorType string     `cogumi:"output_tensor_type,key" doc:"the type of output.weight, and of the embeddings when they double as it (llama-quantize --output-tensor-type)"`
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
	errs = append(errs, checkQuantOptions(p)...)
	if ft, err := ggufconv.ParseType(p.Type); err == nil && len(p.TensorTypes) > 0 && (ft == "F32" || ft == "F16" || ft == "BF16") {
		// llama-quantize ignores them there; a user would not expect that.
		errs = append(errs, AttrError{Attr: "tensor_types", Msg: fmt.Sprintf("tensor_types apply to quantised file types only (llama-quantize ignores --tensor-type for %s); use token_embedding_type and output_tensor_type, or a quantised type", ft)})
	}
	return errs
}

// checkQuantOptions checks the overrides and the embedding and output
// types, each problem with its attribute.
func checkQuantOptions(p *ggufParams) []AttrError {
	var errs []AttrError
	for i, pair := range p.TensorTypes {
		if len(pair) != 2 {
			errs = append(errs, AttrError{Attr: "tensor_types", Msg: fmt.Sprintf("entry %d has %d values; each entry is a [pattern, type] pair such as [\"attn_v\", \"Q8_0\"]", i+1, len(pair))})
			continue
		}
		if _, err := ggufconv.CompilePattern(pair[0]); err != nil {
			errs = append(errs, AttrError{Attr: "tensor_types", Msg: fmt.Sprintf("entry %d: %v", i+1, err)})
		}
		if _, err := ggufconv.ParseTensorType(pair[1]); err != nil {
			errs = append(errs, AttrError{Attr: "tensor_types", Msg: fmt.Sprintf("entry %d (%q): %v", i+1, pair[0], err)})
		}
	}
	for _, x := range []struct{ attr, val string }{{"token_embedding_type", p.TokenEmbedding}, {"output_tensor_type", p.OutputTensorType}} {
		if x.val == "" {
			continue
		}
		if _, err := ggufconv.ParseTensorType(x.val); err != nil {
			errs = append(errs, AttrError{Attr: x.attr, Msg: err.Error()})
		}
	}
	return errs
}

// quantOptions sets the quantisation options of opts from p, reading the
// importance matrix of the imatrix input.
func quantOptions(a *Action, p *ggufParams, opts *ggufconv.Options) error {
	for _, pair := range p.TensorTypes {
		opts.TensorTypes = append(opts.TensorTypes, ggufconv.TensorType{Pattern: pair[0], Type: pair[1]})
	}
	opts.TokenEmbeddingType, opts.OutputTensorType = p.TokenEmbedding, p.OutputTensorType
	if p.Imatrix == "" {
		return nil
	}
	dir, ok := a.InputDirs["imatrix"]
	if !ok {
		return fmt.Errorf("imatrix: no input staged")
	}
	path, rel, err := ggufIn(dir)
	if err != nil {
		return fmt.Errorf("imatrix %s: %w", inputLabel(a.Target, "imatrix", ""), err)
	}
	m, err := imatrix.Read(path)
	if err != nil {
		return fmt.Errorf("imatrix %s: %w", inputLabel(a.Target, "imatrix", ""), err)
	}
	// quantize.imatrix.file is the file's path inside its artifact, as if
	// llama-quantize ran there: the bytes must not depend on the scratch
	// directory it was staged in, and should not change when the imatrix
	// target is renamed (its dataset label is already in the matrix).
	opts.Imatrix, opts.ImatrixFile = &m, rel
	return nil
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
	if err := quantOptions(a, p, &opts); err != nil {
		return err
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
