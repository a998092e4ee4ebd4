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
//     the output tensor in Q6_K, the Q4_K_M and Q4_K_S mixes, the fallbacks
//     for rows that are not a multiple of the block size): llama-quantize
//     (src/llama-quant.cpp, llama_tensor_get_type) run on an F32 GGUF;
//   - the quantised blocks, byte for byte: ggml's reference quantisers, as
//     ported by package quant;
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
// quant.QuantizeRows; the chunk is then written, and the checkpoint pages it
// came from are handed back to the kernel so that they do not accumulate
// in the process's resident set.
package ggufconv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	// llama-quantize's K-quant mixes, Q6_K to Q2_K_S (case-insensitive;
	// see Types). Q2_K_S needs Imatrix.
	Type string
	// Pure stores every 2-D tensor in the file type's base type (Q4_K for
	// Q4_K_M), as llama-quantize --pure does; 1-D tensors stay F32, and a
	// tensor whose rows do not fit the type's blocks still falls back.
	Pure bool
	// Threads is the number of quantising goroutines; 0 or less means
	// GOMAXPROCS. The output does not depend on it.
	Threads int
	// Name is general.name and the first part of the file name; empty means
	// the checkpoint directory's name, as llama.cpp's converter does.
	Name string
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
	File      string // file name inside the destination directory (see FileName)
	Type      string // canonical file type ("Q4_K_M")
	FileType  uint32 // general.file_type (llama_ftype)
	Name      string // general.name
	SizeLabel string // general.size_label ("3.2M")
	Params    int64  // weights in the file
	Size      int64  // bytes of the file
	Tensors   []TensorReport
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
	name := strings.TrimSpace(opts.Name)
	if name == "" {
		name = filepath.Base(m.Dir())
	}
	cfg := m.Config()
	vocab, err := m.Vocab(checkpoint.VocabOptions{Pre: opts.TokenizerPre})
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: reading the tokenizer: %w", err)
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

	rep := Report{Type: ft.name, FileType: ft.ftype, Name: name, Warnings: warnings, Tokenizer: describeVocab(vocab)}
	for _, p := range plans {
		rep.Params += p.elements()
	}
	rep.SizeLabel = SizeLabel(rep.Params)
	rep.File = FileName(name, rep.SizeLabel, ft.name)

	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	path := filepath.Join(dst, rep.File)
	w, err := gguf.NewWriter(path, Alignment)
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	defer w.Abort()
	meta := metadata{cfg: &cfg, vocab: vocab, ft: ft, name: rep.Name, sizeLabel: rep.SizeLabel, source: opts.SourceDigest, quantize: imeta}
	if err := meta.write(w); err != nil {
		return Report{}, fmt.Errorf("ggufconv: %s: %w", rep.File, err)
	}
	for _, p := range plans {
		if err := w.AddTensor(p.name, p.typ, p.shape); err != nil {
			return Report{}, fmt.Errorf("ggufconv: %s: %w", rep.File, err)
		}
	}
	s := newStreamer(m, threads)
	for _, p := range plans {
		n, err := s.writeTensor(ctx, w, p)
		if err != nil {
			return Report{}, fmt.Errorf("ggufconv: %s: tensor %s: %w", rep.File, p.name, err)
		}
		rep.Tensors = append(rep.Tensors, TensorReport{Name: p.name, Source: p.src, Type: p.typ, Shape: p.shape, Bytes: n})
	}
	if err := w.Close(); err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Report{}, fmt.Errorf("ggufconv: %w", err)
	}
	rep.Size = fi.Size()
	return rep, nil
}
