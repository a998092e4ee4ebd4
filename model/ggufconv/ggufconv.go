// Package ggufconv converts a Hugging Face Llama-family checkpoint into one
// GGUF v3 file that llama.cpp loads: the architecture metadata of
// config.json, the tokenizer, and the weights renamed, Q/K-permuted and
// stored in the types llama.cpp itself would choose.
//
// What it reproduces, and from where in llama.cpp:
//
//   - metadata keys and their exact GGUF types, tensor names, the Q and K
//     row permutation (Llama and Mistral only: the Qwen models run with
//     NEOX RoPE) and the llama3 rope_freqs tensor: convert_hf_to_gguf.py
//     (conversion/base.py and conversion/llama.py);
//   - the per-tensor types of each file type (1-D tensors and norms in F32,
//     the output tensor in Q6_K, every K-quant mix from Q6_K to Q2_K_S and
//     every i-quant mix from IQ4_XS to IQ2_XXS, the
//     fallbacks for rows that are not a multiple of the block size) and of
//     llama-quantize's options (--tensor-type overrides, first match wins;
//     --token-embedding-type, --output-tensor-type, --pure): llama-quantize
//     (src/llama-quant.cpp, llama_tensor_get_type) run on an F32 GGUF;
//   - an importance matrix as llama-quantize --imatrix reads and applies it
//     (tools/quantize/quantize.cpp's load_imatrix: weights in_sum2 / count
//     per column, looked up by tensor name), and the quantize.imatrix.*
//     keys it adds;
//   - the quantised blocks, byte for byte: ggml's quantisers, as ported by
//     package quant (with importance weights, ggml_quantize_chunk's);
//   - the tensor order of llama-quantize's output (tensors outside the
//     blocks first, then block by block, each group sorted by name), so a
//     cogumi Q4_K_M file lists its tensors as llama-quantize's does.
//
// Conversion streams: one tensor at a time, a chunk of rows at a time (4 Mi
// values, whole attention heads for Q and K), so memory stays bounded by
// the chunk's output buffer and the workers' row blocks whatever the size of
// the model (about 27 MiB peak RSS for a 2.5 GiB checkpoint). Options.Threads
// goroutines take blocks of 16 rows of a chunk in turn: each reads its rows
// from the memory-mapped checkpoint (through the Q/K permutation, a row
// index mapping), converts them to float32 and quantises them with
// quant.QuantizeRowsWeighted; the chunk is then written, and the checkpoint pages it
// came from are handed back to the kernel so that they do not accumulate
// in the process's resident set.
package ggufconv

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/imatrix"
	"github.com/cogumi/cogumi/model/quant"
)

// Alignment is the data alignment of the files written (GGUF's default),
// also recorded as general.alignment.
const Alignment = 32

// QuantizationVersion is general.quantization_version (ggml's
// GGML_QNT_VERSION), written to every file as llama.cpp's converter and
// llama-quantize do.
const QuantizationVersion = 2

// Options choose the output.
type Options struct {
	// Type is the file type: F32, F16, BF16, Q8_0, Q4_0 or one of
	// llama-quantize's K-quant mixes, Q6_K to Q2_K_S, or its i-quant
	// mixes, IQ4_XS to IQ2_XXS (case-insensitive; see Types). Q2_K_S,
	// IQ3_XXS, IQ2_M, IQ2_S, IQ2_XS and IQ2_XXS need Imatrix.
	Type string
	// Pure stores every 2-D tensor in the file type's base type (Q4_K for
	// Q4_K_M), as llama-quantize --pure does; 1-D tensors stay F32, and a
	// tensor whose rows do not fit the type's blocks still falls back.
	Pure bool
	// Threads is the number of quantising goroutines; 0 or less means
	// GOMAXPROCS. The output does not depend on it.
	Threads int
	// Name is general.name, as llama.cpp's converter's --model-name: it
	// replaces what the model card or config.json say. Empty means derived
	// (see Metadata).
	Name string
	// FallbackName stands for the checkpoint directory's name, which
	// llama.cpp's converter reads last: the basename, finetune, version and
	// size label in it (gguf-py's get_model_id_components), and
	// general.name itself, kept as it is written, when nothing else names
	// the model. Empty means the directory's name.
	FallbackName string
	// Metadata overrides the general.* keys derived as gguf-py's
	// Metadata.load does (from README.md's front matter, then config.json's
	// _name_or_path, then FallbackName), as the converter's --metadata
	// file does: every field set replaces the derived value (BaseModels,
	// Datasets, Tags and Languages when not nil). Name is ignored (see
	// Name). An empty size label is computed from the weights.
	Metadata Authorship
	// Split, when set, writes the file as llama-gguf-split --split would
	// split it: shards <stem>-00001-of-0000N.gguf, the model's metadata in
	// the first, split.* keys in each.
	Split *gguf.SplitLimit
	// TokenizerPre names a byte-level BPE tokenizer's pre-tokenizer
	// (tokenizer.ggml.pre) instead of identifying it by the converter's
	// digest; see checkpoint.VocabOptions.
	TokenizerPre string
	// SourceDigest, when set, is written as SourceDigestKey: the digest
	// that identifies the checkpoint converted (cogumi's gguf rule records
	// the tree digest of its artifact), so that an adapter trained on that
	// checkpoint, which records the same digest (lora.BaseDigestKey), can
	// be matched to the file. llama.cpp ignores the key.
	SourceDigest string
	// CheckChatTemplates, when set, is given the chat templates the file
	// will hold before anything is written; an error stops the conversion
	// (cogumi's gguf rule renders each with node-llama-cpp's Jinja).
	CheckChatTemplates func(context.Context, ChatTemplates) error
	// Imatrix, when set, is the importance matrix each tensor is quantised
	// with, as llama-quantize --imatrix uses it: an entry's weights are its
	// sums of squared inputs divided by its token count, per column; the
	// entry named as the tensor is used, and a tensor without one is
	// quantised without (Report.Warnings names the linear weights). Its
	// presence also changes the Q4_0 mix, as in llama.cpp.
	Imatrix *imatrix.Matrix
	// ImatrixFile is written as quantize.imatrix.file, where llama-quantize
	// writes the path given to --imatrix. It should not depend on where
	// the file happens to be (cogumi's gguf rule writes its path inside
	// the imatrix artifact, "imatrix.gguf").
	ImatrixFile string
	// TensorTypes are per-tensor overrides, llama-quantize's --tensor-type,
	// tried in order. They apply to quantised file types only, as there.
	TensorTypes []TensorType
	// TokenEmbeddingType and OutputTensorType, ggml type names, store
	// token_embd.weight and output.weight in that type whatever the file
	// type (llama-quantize's --token-embedding-type and
	// --output-tensor-type); "" leaves them to the mix.
	TokenEmbeddingType string
	OutputTensorType   string
}

// SourceDigestKey is the metadata key of Options.SourceDigest.
const SourceDigestKey = "cogumi.source.digest"

// ChatTemplates are the chat templates of a file: tokenizer.chat_template
// (Default) and tokenizer.chat_template.<name>, with the text of the
// vocabulary's BOS and EOS tokens, which templates print.
type ChatTemplates struct {
	Default  string
	Named    []checkpoint.ChatTemplate
	BOS, EOS string
}

// TensorReport describes one tensor of the file written.
type TensorReport struct {
	Name   string     // GGUF name ("blk.0.attn_q.weight")
	Source string     // checkpoint name; "" for a generated tensor (rope_freqs.weight)
	Type   quant.Type // storage type
	Shape  []uint64   // ggml order: innermost dimension first
	Bytes  int64      // size of its data
}

// Report describes the file Convert wrote.
type Report struct {
	File      string   // file name inside the destination directory: the first shard of a split file
	Files     []string // every file written, File first
	Type      string   // canonical file type ("Q4_K_M")
	FileType  uint32   // general.file_type (llama_ftype)
	Name      string   // general.name
	SizeLabel string   // general.size_label ("3.2M")
	// Metadata holds every general.* key of the model's origin written.
	Metadata Authorship
	Params   int64 // weights in the file
	Size     int64 // bytes of the file
	Tensors  []TensorReport
	// Tokenizer says what the vocabulary became: "llama, 32000 tokens" or
	// "gpt2, pre-tokenizer llama-bpe, 128256 tokens".
	Tokenizer string
	// Warnings are things a user should know that did not stop the
	// conversion (a dropped tensor).
	Warnings []string
}

// Summary counts the tensors per storage type: "21 tensors: 5 F32, 11 Q4_K, 5 Q6_K".
func (r Report) Summary() string {
	count := make(map[quant.Type]int)
	for _, t := range r.Tensors {
		count[t.Type]++
	}
	var parts []string
	for _, t := range quant.Types() { // ggml id order
		if n := count[t]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, t))
		}
	}
	return fmt.Sprintf("%d tensors: %s", len(r.Tensors), strings.Join(parts, ", "))
}

// fileType is one of the file types Convert writes.
type fileType struct {
	name  string
	ftype uint32     // llama_ftype, general.file_type
	base  quant.Type // llama_ftype_get_default_type
}

// fileTypes lists the supported file types with llama.cpp's numbers
// (include/llama.h, enum llama_ftype).
func fileTypes() []fileType {
	return []fileType{
		{name: "F32", ftype: 0, base: quant.F32},
		{name: "F16", ftype: 1, base: quant.F16},
		{name: "BF16", ftype: 32, base: quant.BF16},
		{name: "Q8_0", ftype: 7, base: quant.Q8_0},
		{name: "Q4_0", ftype: 2, base: quant.Q4_0},
		{name: "Q6_K", ftype: 18, base: quant.Q6_K},
		{name: "Q5_K_M", ftype: 17, base: quant.Q5_K},
		{name: "Q5_K_S", ftype: 16, base: quant.Q5_K},
		{name: "Q4_K_M", ftype: 15, base: quant.Q4_K},
		{name: "Q4_K_S", ftype: 14, base: quant.Q4_K},
		{name: "Q3_K_L", ftype: 13, base: quant.Q3_K},
		{name: "Q3_K_M", ftype: 12, base: quant.Q3_K},
		{name: "Q3_K_S", ftype: 11, base: quant.Q3_K},
		{name: "Q2_K", ftype: 10, base: quant.Q2_K},
		{name: "Q2_K_S", ftype: 21, base: quant.Q2_K},
		{name: "IQ4_XS", ftype: 30, base: quant.IQ4_XS},
		{name: "IQ4_NL", ftype: 25, base: quant.IQ4_NL},
		{name: "IQ3_M", ftype: 27, base: quant.IQ3_S},
		{name: "IQ3_S", ftype: 26, base: quant.IQ3_S},
		{name: "IQ3_XS", ftype: 22, base: quant.IQ3_S},
		{name: "IQ3_XXS", ftype: 23, base: quant.IQ3_XXS},
		{name: "IQ2_M", ftype: 29, base: quant.IQ2_S},
		{name: "IQ2_S", ftype: 28, base: quant.IQ2_XS},
		{name: "IQ2_XS", ftype: 20, base: quant.IQ2_XS},
		{name: "IQ2_XXS", ftype: 19, base: quant.IQ2_XXS},
	}
}

// Types lists the file types Convert accepts, in canonical spelling.
func Types() []string {
	var out []string
	for _, f := range fileTypes() {
		out = append(out, f.name)
	}
	return out
}

// ParseType returns the canonical spelling of a file type name, accepted
// case-insensitively ("q4_k_m" -> "Q4_K_M").
func ParseType(s string) (string, error) {
	ft, err := lookupFileType(s)
	return ft.name, err
}

func lookupFileType(s string) (fileType, error) {
	for _, f := range fileTypes() {
		if strings.EqualFold(f.name, s) {
			return f, nil
		}
	}
	for _, alias := range []string{"Q3_K", "Q4_K", "Q5_K"} {
		if strings.EqualFold(s, alias) {
			return fileType{}, fmt.Errorf("gguf type %q is llama-quantize's alias of %s_M; write %s_M", s, alias, alias)
		}
	}
	return fileType{}, fmt.Errorf("gguf type %q is not supported; use one of %s", s, strings.Join(Types(), ", "))
}

// FileName is llama.cpp's file naming convention for what Convert writes:
// <Name>-<SizeLabel>-<Type>.gguf, with spaces and slashes in the name
// turned into dashes as gguf-py's naming_convention does.
func FileName(name, sizeLabel, typ string) string {
	return cleanName(name) + "-" + sizeLabel + "-" + strings.ToUpper(typ) + ".gguf"
}

// Stem is gguf-py's naming_convention without ".gguf":
// <Basename or Name>-<SizeLabel>-<Finetune>-<Version>-<Type>, each part
// present only when set ("TinyLlama-1.1B-Chat-v1.0-Q4_K_M").
func Stem(a *Authorship, typ string) string {
	name := a.Name
	if a.Basename != "" {
		name = a.Basename
	}
	out := cleanName(name)
	// Slashes too, unlike gguf-py: a README's finetune must not name a
	// directory.
	clean := strings.NewReplacer(" ", "-", "/", "-", "\\", "-", "\x00", "-")
	for _, part := range []string{a.SizeLabel, a.Finetune, a.Version} {
		if part = clean.Replace(strings.TrimSpace(part)); part != "" {
			out += "-" + part
		}
	}
	return out + "-" + strings.ToUpper(typ)
}

func cleanName(name string) string {
	name = strings.TrimSpace(name)
	name = strings.NewReplacer(" ", "-", "/", "-", "\\", "-", "\x00", "-").Replace(name)
	if name == "" || name == "." || name == ".." {
		name = "ggml-model"
	}
	return name
}

// SizeLabel is gguf-py's model_weight_count_rounded_notation with two
// significant digits at least: 3.2M, 6.7B, 0.50K.
func SizeLabel(params int64) string {
	p := float64(params)
	scaled, suffix := p*1e-3, "K"
	switch {
	case p > 1e12:
		scaled, suffix = p*1e-12, "T"
	case p > 1e9:
		scaled, suffix = p*1e-9, "B"
	case p > 1e6:
		scaled, suffix = p*1e-6, "M"
	}
	// Python: max(2 - len(str(round(x)).lstrip('0')), 0) decimals.
	// fmt rounds half to even on the exact binary value, as round does.
	intDigits := strings.TrimLeft(fmt.Sprintf("%.0f", scaled), "0")
	decimals := max(2-len(intDigits), 0)
	return fmt.Sprintf("%.*f%s", decimals, scaled, suffix)
}

// describeVocab summarises a vocabulary for the report.
func describeVocab(v *checkpoint.Vocab) string {
	if v.Model == "gpt2" {
		return fmt.Sprintf("%s, pre-tokenizer %s, %d tokens", v.Model, v.Pre, len(v.Tokens))
	}
	return fmt.Sprintf("%s, %d tokens", v.Model, len(v.Tokens))
}

// Convert writes the checkpoint m as one GGUF file into the directory dst
// (created if needed) and returns what it wrote. The file is named by
// FileName and appears only complete (the GGUF writer renames it into
// place). ctx cancels between chunks of rows.
func Convert(ctx context.Context, m *checkpoint.Model, dst string, opts Options) (Report, error) {
	ft, err := lookupFileType(opts.Type)
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	cfg := m.Config()
	vocab, err := m.Vocab(checkpoint.VocabOptions{Pre: opts.TokenizerPre})
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: reading the tokenizer: %w", err)
	}
	if opts.CheckChatTemplates != nil && (vocab.ChatTemplate != "" || len(vocab.NamedChatTemplates) > 0) {
		ct := ChatTemplates{Default: vocab.ChatTemplate, Named: vocab.NamedChatTemplates}
		if vocab.BOS >= 0 && vocab.BOS < len(vocab.Tokens) {
			ct.BOS = vocab.Tokens[vocab.BOS]
		}
		if vocab.EOS >= 0 && vocab.EOS < len(vocab.Tokens) {
			ct.EOS = vocab.Tokens[vocab.EOS]
		}
		if err := opts.CheckChatTemplates(ctx, ct); err != nil {
			return Report{}, fmt.Errorf("ggufconv: %w", err)
		}
	}
	plans, warnings, err := planTensors(m)
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	choice, err := opts.typeChoice()
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	assignTypes(plans, ft, choice, &cfg)
	for i, used := range choice.used {
		if !used {
			warnings = append(warnings, fmt.Sprintf("tensor type override %d (%q) gave no tensor its type", i+1, opts.TensorTypes[i].Pattern))
		}
	}
	var imeta []kv
	if opts.Imatrix != nil {
		im, err := newImportance(opts.Imatrix)
		if err != nil {
			return Report{}, fmt.Errorf("ggufconv: importance matrix: %w", err)
		}
		missing, err := im.assign(plans)
		if err != nil {
			return Report{}, fmt.Errorf("ggufconv: importance matrix: %w", err)
		}
		warnings = append(warnings, missing...)
		imeta = im.metadata(opts.ImatrixFile)
	}
	if err := checkImatrix(plans, ft, opts.Imatrix != nil); err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}

	rep := Report{Type: ft.name, FileType: ft.ftype, Warnings: warnings, Tokenizer: describeVocab(vocab)}
	for _, p := range plans {
		rep.Params += p.elements()
	}
	fallback := strings.TrimSpace(opts.FallbackName)
	if fallback == "" {
		fallback = filepath.Base(m.Dir())
	}
	a, err := deriveAuthorship(authorshipSources{dir: m.Dir(), fallbackID: fallback, totalParams: rep.Params})
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	a.merge(&opts.Metadata)
	if n := strings.TrimSpace(opts.Name); n != "" {
		a.Name = n
	}
	if a.SizeLabel == "" {
		a.SizeLabel = SizeLabel(rep.Params)
	}
	rep.Name, rep.SizeLabel, rep.Metadata = a.Name, a.SizeLabel, a
	stem := Stem(&a, ft.name)
	meta := metadata{cfg: &cfg, vocab: vocab, ft: ft, authorship: &a, sampling: samplingKeys(m.Dir()), source: opts.SourceDigest, quantize: imeta}
	entries, err := meta.entries()
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %s: %w", stem, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	shards, err := splitPlans(plans, opts.Split)
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	s := newStreamer(m, threads)
	for i, sh := range shards {
		file := stem + ".gguf"
		if opts.Split != nil {
			file = gguf.SplitPath(stem, i, len(shards))
		}
		kvs := entries
		if opts.Split != nil {
			if i > 0 {
				kvs = nil // the model's keys are in the first shard only
			}
			// In llama-gguf-split's order: it sets split.count last,
			// once the count is known, and ggml moves a key set again
			// to the end.
			kvs = append(slices.Clip(kvs),
				kv{gguf.KeySplitNo, uint16(i)},
				kv{gguf.KeySplitTensorsCount, int32(len(plans))},
				kv{gguf.KeySplitCount, uint16(len(shards))})
		}
		size, err := writeFile(ctx, s, filepath.Join(dst, file), kvs, sh, &rep)
		if err != nil {
			return Report{}, fmt.Errorf("ggufconv: %s: %w", file, err)
		}
		rep.Files = append(rep.Files, file)
		rep.Size += size
	}
	rep.File = rep.Files[0]
	return rep, nil
}

// splitPlans cuts the tensors into the shards of lim (one shard when nil).
func splitPlans(plans []*tensorPlan, lim *gguf.SplitLimit) ([][]*tensorPlan, error) {
	if lim == nil {
		return [][]*tensorPlan{plans}, nil
	}
	sizes := make([]uint64, len(plans))
	for i, p := range plans {
		sizes[i] = uint64(p.rows) * uint64(quant.RowSize(p.typ, p.rowLen))
	}
	starts, err := gguf.Split(sizes, *lim)
	if err != nil {
		return nil, err
	}
	if len(plans) > math.MaxInt32 {
		return nil, fmt.Errorf("%d tensors: split.tensors.count is an int32", len(plans))
	}
	var out [][]*tensorPlan
	for i, st := range starts {
		end := len(plans)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		out = append(out, plans[st:end])
	}
	return out, nil
}

// writeFile writes one GGUF file of the metadata kvs and the tensors
// plans, streamed through s, adds the tensors to rep and returns the
// file's size.
func writeFile(ctx context.Context, s *streamer, path string, kvs []kv, plans []*tensorPlan, rep *Report) (int64, error) {
	w, err := gguf.NewWriter(path, Alignment)
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	for _, e := range kvs {
		if err := w.SetKV(e.key, e.value); err != nil {
			return 0, err
		}
	}
	for _, p := range plans {
		if err := w.AddTensor(p.name, p.typ, p.shape); err != nil {
			return 0, err
		}
	}
	for _, p := range plans {
		n, err := s.writeTensor(ctx, w, p)
		if err != nil {
			return 0, fmt.Errorf("tensor %s: %w", p.name, err)
		}
		rep.Tensors = append(rep.Tensors, TensorReport{Name: p.name, Source: p.src, Type: p.typ, Shape: p.shape, Bytes: n})
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
