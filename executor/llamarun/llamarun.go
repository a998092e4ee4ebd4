// Package llamarun runs llama.cpp through node-llama-cpp. It scores texts: the
// negative log-likelihood of each text under a GGUF model, optionally with
// a LoRA adapter applied; and it checks chat templates with the Jinja
// implementation node-llama-cpp renders them with. It drives runner.mjs
// and chattemplate.mjs, embedded here, with the node and node-llama-cpp of
// a toolchain.FindNodeLlama toolchain.
package llamarun

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/executor/toolchain"
)

//go:embed runner.mjs
var runnerJS []byte

//go:embed speculate.mjs
var speculateJS []byte

// Script is one of the node programs this package runs over node-llama-cpp.
type Script struct {
	file string // its name where it is written
	what string // what it is, for messages
	body []byte
}

// Runner is the scoring runner (runner.mjs): eval's llama.cpp runtime.
func Runner() Script {
	return Script{file: "cogumi_llama_runner.mjs", what: "the llama.cpp runner", body: runnerJS}
}

// Speculate is the speculative-decoding bench (speculate.mjs).
func Speculate() Script {
	return Script{file: "cogumi_llama_speculate.mjs", what: "the llama.cpp speculative bench", body: speculateJS}
}

// Digest is the script's SHA-256 (hex): rules put it in their version, so
// a changed script changes their action keys.
func (s Script) Digest() string {
	sum := sha256.Sum256(s.body)
	return hex.EncodeToString(sum[:])
}

// Write writes the script into dir and returns its path.
func (s Script) Write(dir string) (string, error) {
	p := filepath.Join(dir, s.file)
	if err := os.WriteFile(p, s.body, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", s.what, err)
	}
	return p, nil
}

// Text is one text to score.
type Text struct {
	Text    string `json:"text"`
	Adapter string `json:"adapter,omitempty"` // a key of Job.Adapters; "" for the base model
}

// Job is one run of the runner.
type Job struct {
	Model    string            // the GGUF file
	Adapters map[string]string // LoRA adapter GGUF files by name
	Input    string            // the JSONL file of Texts (see WriteTexts)
	Output   string            // where the runner writes its Result
	Threads  int               // 0: as many as this machine has CPUs
	// Reference, when set, is a GGUF of the same vocabulary (the float
	// model): every text is scored by it too, and each Score gets its
	// Comparison.
	Reference string
}

// Command is the argv and the extra environment that run job with tc.
func Command(tc toolchain.NodeLlama, scriptPath string, job Job) (argv, env []string) {
	threads := job.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	argv = []string{tc.Node, scriptPath, "--model", job.Model, "--input", job.Input, "--output", job.Output,
		"--threads", strconv.Itoa(threads)}
	names := make([]string, 0, len(job.Adapters))
	for n := range job.Adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		argv = append(argv, "--lora", n+"="+job.Adapters[n])
	}
	if job.Reference != "" {
		argv = append(argv, "--reference", job.Reference)
	}
	return argv, []string{"COGUMI_NODE_LLAMA=" + tc.Root}
}

// WriteTexts writes texts as the runner's JSONL input.
func WriteTexts(path string, texts []Text) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, t := range texts {
		if err := enc.Encode(t); err != nil {
			return err
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Score is one text's result: Tokens predicted tokens (all but the first,
// BOS), their summed negative log-likelihood, and the time scoring took.
type Score struct {
	Tokens    int         `json:"tokens"`
	NLL       float64     `json:"nll"`
	MS        float64     `json:"ms"`
	Reference *Comparison `json:"reference,omitempty"`
}

// Comparison is a text scored by the reference model too: the reference's
// NLL of the same tokens, the KL divergence KL(P_ref || P_model) of the
// next-token distributions at each predicted position, and how many
// positions have the same most likely token in both.
type Comparison struct {
	NLL     float64   `json:"nll"`
	KLD     []float64 `json:"kld"`
	SameTop int       `json:"same_top"`
}

// Result is what the runner writes.
type Result struct {
	Runtime string  `json:"runtime"` // "llama.cpp (node-llama-cpp 3.21.1)"
	LoadMS  float64 `json:"load_ms"` // loading the model and creating its contexts
	Results []Score `json:"results"`
}

// ReadResult reads a runner's (or cogumi_eval.py's) result file and checks
// it has n scores.
func ReadResult(path string, n int) (Result, error) {
	var r Result
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("reading the scores: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Results) != n {
		return r, fmt.Errorf("%s: %d scores for %d texts", path, len(r.Results), n)
	}
	for i, s := range r.Results {
		// An NLL of exactly 0 over predicted tokens means every probability
		// was 1, which does not happen: it is a null (an infinite NLL the
		// runner could not write), never a perfect score.
		if s.Tokens < 0 || s.NLL < 0 || s.NLL != s.NLL || (s.Tokens > 0 && s.NLL == 0) {
			return r, fmt.Errorf("%s: score %d is not valid (tokens %d, nll %v)", path, i, s.Tokens, s.NLL)
		}
		if c := s.Reference; c != nil && (len(c.KLD) != s.Tokens || c.SameTop < 0 || c.SameTop > s.Tokens || c.NLL < 0 || c.NLL != c.NLL) {
			return r, fmt.Errorf("%s: score %d's comparison with the reference is not valid (%d divergences and %d same tops for %d tokens)", path, i, len(c.KLD), c.SameTop, s.Tokens)
		}
	}
	return r, nil
}

// Run runs job on this machine with tc, writing the runner into dir.
func Run(ctx context.Context, tc toolchain.NodeLlama, dir string, job Job) (Result, error) {
	sp, err := Runner().Write(dir)
	if err != nil {
		return Result{}, err
	}
	argv, env := Command(tc, sp, job)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("llama.cpp (node-llama-cpp %s): %w\n%s", tc.Version, err, strings.TrimSpace(stderr.String()))
	}
	n, err := countLines(job.Input)
	if err != nil {
		return Result{}, err
	}
	return ReadResult(job.Output, n)
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			n++
		}
	}
	return n, nil
}
