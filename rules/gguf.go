package rules

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/imatrix"
)

// GGUF converts a checkpoint to one GGUF file for llama.cpp:
//
//	gguf "final" {
//	  model = ":sparse"
//	  type  = "Q4_K_M"   # F32, F16, BF16, Q8_0, Q4_0, Q6_K ... Q2_K_S, IQ4_XS ... IQ2_XXS (ggufconv.Types)
//	  pure  = false      # true: one type for every 2-D tensor
//	  imatrix = ":im"    # an imatrix target: quantise with its importance weights
//	  tensor_types = [["attn_v", "Q8_0"], ["ffn_down", "Q6_K"]]  # first match wins
//	  token_embedding_type = "Q8_0"
//	  output_tensor_type   = "Q8_0"
//	  name  = "tiny"     # general.name; default: README.md, config.json, else the model target's name
//	  tokenizer_pre = "llama-bpe"  # only for a BPE pre-tokenizer llama.cpp's table lacks
//	  metadata = { license = "apache-2.0", quantized_by = "me" }  # general.* overrides
//	  base_models = ["TinyLlama/TinyLlama-1.1B-Chat-v1.0"]        # general.base_model.*
//	  split_max_size = "2G"  # shards as llama-gguf-split --split-max-size 2G
//	}
//
// Its artifact is the single file <name>-<size>-<type>.gguf (llama.cpp's
// naming convention: tiny-1.4M-Q4_K_M.gguf, or
// TinyLlama-1.1B-Chat-v1.0-Q4_K_M.gguf with a basename, finetune and version),
// whose tensor types are those llama-quantize would choose; with
// split_max_size or split_max_tensors, its shards
// <stem>-00001-of-0000N.gguf. The general.* keys are derived as
// llama.cpp's converter derives them (README.md's front matter, then
// config.json's _name_or_path, then the model target's name), then
// overridden by the attributes. A chat template the file would hold is
// rendered first with a two-turn conversation by node-llama-cpp's Jinja
// (the llama toolchain); one that does not render fails the build.
type GGUF struct{}

func (GGUF) Kind() string { return "gguf" }

// Version includes the chat template check's digest.
// 2: pre-tokenizers by digest, SentencePiece-style tokenizer.json; 3: the
// source's digest; 4: general.* metadata, list-form chat templates, splits;
// 5: the K-quant mixes, importance matrices and overrides join the golden
// (the earlier cases' bytes unchanged); 6: the i-quant mixes join it
// (likewise).
func (GGUF) Version() string { return "6-" + llamarun.ChatTemplateCheck().Digest()[:12] }

// ggufParams are the attributes of a gguf target. Pointers are unset
// when nil: what they set is then derived (see their docs).
type ggufParams struct {
	Model           string            `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face checkpoint directory"`
	Type            string            `cogumi:"type,key,required"`
	Pure            bool              `cogumi:"pure,key" default:"false" doc:"store every 2-D tensor in the type's base type, as llama-quantize --pure"`
	Name            *string           `cogumi:"name,key" doc:"general.name, and the start of the file name when no basename is derived; when unset, README.md's model_name or config.json's _name_or_path as llama.cpp's converter reads them, else the name of the model target"`
	TokenizerPre    *string           `cogumi:"tokenizer_pre,key" doc:"tokenizer.ggml.pre for a byte-level BPE tokenizer whose pre-tokenizer llama.cpp's converter does not recognise by its digest, but which splits text as the named llama.cpp pre-tokenizer does; when unset, identified as the converter does"`
	Metadata        map[string]string `cogumi:"metadata,key" doc:"general.* keys that replace what README.md and config.json say, named without general. (license, quantized_by, author, organization, basename, finetune, version, size_label, description, url, repo_url, \"source.url\", \"license.link\", ...), as llama.cpp's converter's --metadata file"`
	BaseModels      *[]string         `cogumi:"base_models,key" doc:"the models this one derives from, as README.md's base_model names them (Hugging Face ids or URLs): general.base_model.count and general.base_model.N.name, .organization, .version, .repo_url; replaces README.md's; [] writes a count of 0"`
	SplitMaxSize    *string           `cogumi:"split_max_size,key" doc:"write shards of at most this much tensor data, \"500M\" or \"2G\" (10^6 and 10^9 bytes), as llama-gguf-split --split-max-size: <stem>-00001-of-0000N.gguf, which llama.cpp loads from the first"`
	SplitMaxTensors *int              `cogumi:"split_max_tensors,key" doc:"write shards of at most this many tensors, as llama-gguf-split --split-max-tensors"`
	// Quantisation options, llama-quantize's --imatrix, --tensor-type,
	// --token-embedding-type and --output-tensor-type.
	Imatrix          string     `cogumi:"imatrix,key,input=label" doc:"an imatrix target, or a calibrate target with an imatrix (its artifact's imatrix.gguf): every tensor is quantised with its importance weights, as llama-quantize --imatrix does, and the file records quantize.imatrix.file (the file's path in that artifact), .dataset, .entries_count and .chunks_count; Q2_K_S, IQ3_XS, IQ3_XXS and the IQ2 types need one"`
	TensorTypes      [][]string `cogumi:"tensor_types,key" doc:"per-tensor types, llama-quantize's --tensor-type, as an ordered list of [pattern, type] pairs ([[\"attn_v\", \"Q8_0\"], [\"blk\\\\.[0-9]+\\\\.ffn_down\", \"Q6_K\"]]): the first pattern (a regular expression, lower-cased as llama-quantize does) found in a tensor's llama.cpp name gives its type instead of the mix; quantised file types only"`
	TokenEmbedding   string     `cogumi:"token_embedding_type,key" doc:"the type of token_embd.weight whatever the mix (llama-quantize --token-embedding-type; Q8_0 for the community's _L files)"`
	OutputTensorType string     `cogumi:"output_tensor_type,key" doc:"the type of output.weight, and of the embeddings when they double as it (llama-quantize --output-tensor-type)"`
}

func (GGUF) Schema() Schema {
	// The list of types comes from ggufconv, so that doc is not a tag.
	attrs := withDoc(attrsOf[ggufParams](), "type",
		"the GGUF file type: "+strings.Join(ggufconv.Types(), ", ")+" (llama-quantize's mixes for the K and IQ types)")
	return Schema{Summary: "one GGUF file (or its split shards) for llama.cpp from a checkpoint", Attrs: attrs, Traits: Traits{AllCPUs: true, Toolchains: []string{"llama"}}}
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
	for _, k := range slices.Sorted(maps.Keys(p.Metadata)) {
		if !slices.Contains(ggufconv.OverrideKeys(), k) {
			msg := fmt.Sprintf("%q is not a general.* key the gguf rule sets; use one of %s", k, strings.Join(ggufconv.OverrideKeys(), ", "))
			if k == "name" {
				msg = "general.name is the name attribute"
			}
			errs = append(errs, AttrError{Attr: "metadata", Msg: msg})
		}
	}
	if p.SplitMaxSize != nil {
		if _, err := gguf.ParseSplitSize(*p.SplitMaxSize); err != nil {
			errs = append(errs, AttrError{Attr: "split_max_size", Msg: err.Error()})
		}
		if p.SplitMaxTensors != nil {
			errs = append(errs, AttrError{Attr: "split_max_tensors", Msg: "split by size or by tensor count, not both (as llama-gguf-split)"})
		}
	}
	if p.SplitMaxTensors != nil && *p.SplitMaxTensors < 1 {
		errs = append(errs, AttrError{Attr: "split_max_tensors", Msg: fmt.Sprintf("%d: want at least 1 tensor per shard", *p.SplitMaxTensors)})
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
	path, rel, err := imatrix.Find(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", inputLabel(a.Target, "imatrix", ""), err)
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

// modelTargetName is the name of the model target, which stands for the
// checkpoint directory's name in the converter's metadata heuristics. It is
// in the action key (the input record names the model's label), so the
// file name never changes without the key.
func modelTargetName(t *target.Target, p *ggufParams) string {
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
	opts, err := ggufOptions(a, p)
	if err != nil {
		return err
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
	logMetadata(a.Log, &rep.Metadata)
	if len(rep.Files) > 1 || p.SplitMaxSize != nil || p.SplitMaxTensors != nil {
		fmt.Fprintf(a.Log, "split into %d files: %s\n", len(rep.Files), strings.Join(rep.Files, ", "))
	}
	fmt.Fprintf(a.Log, "wrote %s: %s, %d weights, %d bytes; %s\n", rep.File, rep.Type, rep.Params, rep.Size, rep.Summary())
	return nil
}

// ggufOptions are the converter's options for the target.
func ggufOptions(a *Action, p *ggufParams) (ggufconv.Options, error) {
	// The source's digest lets serving match adapters trained on it.
	opts := ggufconv.Options{Type: p.Type, Pure: p.Pure, FallbackName: modelTargetName(a.Target, p), SourceDigest: a.InputDigests["model"]}
	if p.Name != nil {
		opts.Name = strings.TrimSpace(*p.Name)
	}
	if p.TokenizerPre != nil {
		opts.TokenizerPre = *p.TokenizerPre
	}
	for k, v := range p.Metadata {
		if !opts.Metadata.Set(k, v) {
			return opts, fmt.Errorf("attribute \"metadata\": %q is not a general.* key the gguf rule sets", k)
		}
	}
	if p.BaseModels != nil {
		opts.Metadata.BaseModels = ggufconv.LineageOf(*p.BaseModels)
	}
	switch {
	case p.SplitMaxSize != nil:
		n, err := gguf.ParseSplitSize(*p.SplitMaxSize)
		if err != nil {
			return opts, fmt.Errorf("attribute \"split_max_size\": %w", err)
		}
		opts.Split = &gguf.SplitLimit{MaxBytes: n}
	case p.SplitMaxTensors != nil:
		opts.Split = &gguf.SplitLimit{MaxTensors: *p.SplitMaxTensors}
	}
	opts.CheckChatTemplates = func(ctx context.Context, ct ggufconv.ChatTemplates) error {
		return checkChatTemplates(ctx, a, ct)
	}
	return opts, nil
}

// checkChatTemplates renders the file's chat templates with the llama
// toolchain's @huggingface/jinja. Without a llama toolchain the templates
// are written unchecked, and the log says so.
func checkChatTemplates(ctx context.Context, a *Action, ct ggufconv.ChatTemplates) error {
	var job llamarun.TemplateJob
	if ct.Default != "" {
		job.Templates = append(job.Templates, llamarun.NamedTemplate{Name: "default", Template: ct.Default})
	}
	for _, t := range ct.Named {
		job.Templates = append(job.Templates, llamarun.NamedTemplate{Name: t.Name, Template: t.Template})
	}
	job.BOS, job.EOS = ct.BOS, ct.EOS
	if a.Toolchains["llama"] == "" {
		fmt.Fprintf(a.Log, "warning: %d chat template(s) written without a check: declare toolchain \"llama\" (node-llama-cpp) in cogumi.hcl to render them at build time\n", len(job.Templates))
		return nil
	}
	tc, err := llamaToolchain(a)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cogumi-chat-template-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	res, err := llamarun.RenderChatTemplates(ctx, tc, dir, job)
	if err != nil {
		return err
	}
	for _, r := range res {
		fmt.Fprintf(a.Log, "chat template %q renders a two-turn conversation (%d bytes)\n", r.Name, len(r.Rendered))
	}
	return nil
}

// logMetadata writes the general.* keys of the model's origin to the log.
func logMetadata(w io.Writer, m *ggufconv.Authorship) {
	for _, f := range []struct{ key, v string }{
		{"name", m.Name}, {"basename", m.Basename}, {"size_label", m.SizeLabel}, {"finetune", m.Finetune},
		{"version", m.Version}, {"organization", m.Organization}, {"license", m.License}, {"quantized_by", m.QuantizedBy},
	} {
		if f.v != "" {
			fmt.Fprintf(w, "general.%s: %s\n", f.key, f.v)
		}
	}
	for i, b := range m.BaseModels {
		fmt.Fprintf(w, "general.base_model.%d: %s (%s)\n", i, b.Name, b.RepoURL)
	}
}
