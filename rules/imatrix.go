package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/data/evalset"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/imatrix"
)

// Imatrix computes the importance matrix of a checkpoint on calibration
// text, as llama.cpp's llama-imatrix does, for llama-quantize --imatrix:
//
//	imatrix "im" {
//	  model          = ":base"          # a Hugging Face Llama checkpoint
//	  dataset        = "//data:calib"   # JSONL ("text" or chat "messages") or .txt, a file or a directory
//	  chunk_size     = 512              # llama-imatrix's -c (n_ctx)
//	  chunks         = 0                # at most this many chunks (--chunks); 0: every whole chunk
//	  process_output = false            # also output.weight (--process-output)
//	  dtype          = "float32"
//	  resources {
//	    gpus = 1                        # CUDA when given a GPU; the CPU otherwise
//	  }
//	}
//
// The texts, joined by blank lines, are tokenised as one text with BOS
// first, cut into chunks of chunk_size tokens (at least two, as
// llama-imatrix asks; the tail shorter than a chunk is dropped), and each
// chunk, its first token replaced by BOS, runs through the model from an
// empty context. Per linear weight (llama.cpp's names: blk.N.attn_q.weight,
// ...), the sum of the squared inputs of every token per input column and
// the token count go into imatrix.gguf, llama-imatrix's GGUF format. It runs
// cogumi's torch runtime with the python toolchain.
type Imatrix struct{}

func (Imatrix) Kind() string    { return "imatrix" }
func (Imatrix) Version() string { return "1" }

// imatrixParams are the attributes of an imatrix target; the defaults are
// llama-imatrix's.
type imatrixParams struct {
	Model   string `cogumi:"model,key,required,input=label" doc:"a target whose artifact holds one Hugging Face Llama checkpoint"`
	Dataset string `cogumi:"dataset,key,required,input=label" doc:"calibration text: JSONL rows (\"text\", or chat \"messages\") or .txt paragraphs, a file or a directory"`
	imatrixSettings
	DType string `cogumi:"dtype,key" default:"float32"`
}

// imatrixSettings are how an importance matrix is collected: attributes of
// an imatrix target, and the keys of a calibrate target's imatrix object,
// with the same defaults and checks.
type imatrixSettings struct {
	ChunkSize     int  `cogumi:"chunk_size,key" default:"512" doc:"tokens per chunk, each run from an empty context (llama-imatrix's -c)"`
	Chunks        int  `cogumi:"chunks,key" default:"0" doc:"at most this many chunks (llama-imatrix's --chunks); 0 runs every whole chunk of the text"`
	ProcessOutput bool `cogumi:"process_output,key" default:"false" doc:"also collect output.weight (llama-imatrix's --process-output); a checkpoint with tied embeddings has none"`
}

func (s imatrixSettings) check() []AttrError {
	var errs []AttrError
	if s.ChunkSize < 1 {
		errs = append(errs, AttrError{Attr: "chunk_size", Msg: fmt.Sprintf("chunk_size %d must be at least 1", s.ChunkSize)})
	}
	if s.Chunks < 0 {
		errs = append(errs, AttrError{Attr: "chunks", Msg: fmt.Sprintf("chunks %d must be 0 (every chunk) or more", s.Chunks)})
	}
	return errs
}

func (Imatrix) Schema() Schema {
	return Schema{
		Summary: "the importance matrix of a checkpoint on calibration text, as llama-imatrix computes it",
		Attrs:   withDoc(attrsOf[imatrixParams](), "dtype", dtypeDoc("the model")),
		Traits:  Traits{Resources: true, Toolchains: []string{"python"}},
	}
}

func (Imatrix) Check(t *target.Target) []AttrError {
	p, errs := decode[imatrixParams](t)
	if len(errs) > 0 {
		return errs
	}
	return append(checkDType(p.DType), p.check()...)
}

func (Imatrix) Outs(*target.Target) []string { return []string{imatrix.File} }

func (Imatrix) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[imatrixParams](a)
	if err != nil {
		return err
	}
	model, ok := a.InputDirs["model"]
	if !ok {
		return fmt.Errorf("model: no input staged")
	}
	texts, err := datasetTexts(a)
	if err != nil {
		return err
	}
	run, err := prepareImatrix(filepath.Dir(a.Dir), texts, p.imatrixSettings, p.DType)
	if err != nil {
		return err
	}
	if err := runPython(ctx, a, []string{filepath.Join(a.PythonPath, "cogumi_imatrix.py"), model, run.text, run.sums, run.params}); err != nil {
		return err
	}
	reportFacts(a, run.facts)
	return writeImatrix(a, run, p.imatrixSettings)
}

// datasetTexts are the texts of the dataset input, in order.
func datasetTexts(a *Action) ([]string, error) {
	dataset, ok := a.InputDirs["dataset"]
	if !ok {
		return nil, fmt.Errorf("dataset: no input staged")
	}
	exs, err := evalset.Read(dataset, evalset.Options{})
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", a.Target.String("dataset"), err)
	}
	texts := make([]string, len(exs))
	for i, ex := range exs {
		texts[i] = ex.Text
	}
	return texts, nil
}

// imatrixRun is the files of one run of cogumi_imatrix.py (TEXT.txt,
// OUT.safetensors, PARAMS.json) and the facts file PARAMS names.
type imatrixRun struct {
	text, sums, params, facts string
}

// prepareImatrix writes what cogumi_imatrix.py reads into work: the texts
// joined by blank lines as the one text llama-imatrix reads, and the
// settings.
func prepareImatrix(work string, texts []string, s imatrixSettings, dtype string) (imatrixRun, error) {
	r := imatrixRun{
		text:   filepath.Join(work, "imatrix-text.txt"),
		sums:   filepath.Join(work, "imatrix-sums.safetensors"),
		params: filepath.Join(work, "imatrix.json"),
		facts:  filepath.Join(work, "imatrix-facts.json"),
	}
	if err := os.WriteFile(r.text, []byte(strings.Join(texts, "\n\n")), 0o644); err != nil {
		return r, err
	}
	params := map[string]any{"chunk_size": s.ChunkSize, "chunks": s.Chunks, "process_output": s.ProcessOutput,
		"dtype": dtype, "facts": r.facts}
	b, _ := json.Marshal(params)
	return r, os.WriteFile(r.params, b, 0o644)
}

// writeImatrix writes the sums cogumi_imatrix.py left as imatrix.gguf under
// a.Out, naming the dataset input as the matrix's dataset.
func writeImatrix(a *Action, r imatrixRun, s imatrixSettings) error {
	m, err := imatrix.FromSafetensors(r.sums)
	if err != nil {
		return err
	}
	m.Datasets = []string{inputLabel(a.Target, "dataset", "")}
	m.ChunkSize = uint32(s.ChunkSize)
	if err := imatrix.Write(filepath.Join(a.Out, imatrix.File), m); err != nil {
		return err
	}
	if a.Log != nil {
		fmt.Fprintf(a.Log, "wrote %s: %d entries, %d chunks of %d tokens\n", imatrix.File, len(m.Entries), m.ChunkCount, m.ChunkSize)
	}
	return nil
}
