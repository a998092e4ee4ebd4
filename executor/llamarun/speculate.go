package llamarun

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/cogumi/cogumi/executor/toolchain"
)

// SpecJob is one run of the speculative bench: Model continues each text
// of Input greedily, alone and with Draft drafting, as llama-server's
// --spec-draft-n-max (DraftMax), -n-min (DraftMin) and -p-min (PMin) do.
type SpecJob struct {
	Model, Draft string // GGUF files
	Input        string // the JSONL file of Texts (see WriteTexts)
	Output       string // where the bench writes its SpecResult
	MaxTokens    int    // tokens to generate per text
	DraftMax     int
	DraftMin     int
	PMin         float64
	Threads      int    // 0: llama.cpp's default
	Backend      string // cpu, cuda, vulkan or metal
}

// SpecCommand is the argv and the extra environment that run job with tc.
func SpecCommand(tc toolchain.NodeLlama, scriptPath string, job SpecJob) (argv, env []string) {
	argv = []string{tc.Node, scriptPath, "--model", job.Model, "--draft", job.Draft, "--input", job.Input, "--output", job.Output,
		"--max-tokens", strconv.Itoa(job.MaxTokens), "--draft-max", strconv.Itoa(job.DraftMax), "--draft-min", strconv.Itoa(job.DraftMin),
		"--p-min", strconv.FormatFloat(job.PMin, 'g', -1, 64), "--threads", strconv.Itoa(job.Threads),
		"--backend", job.Backend, "--version", tc.Version}
	return argv, []string{"COGUMI_NODE_LLAMA=" + tc.Root}
}

// SpecRun is one text's result: the tokens generated, those the draft
// proposed and those the base kept, in Steps speculative steps; whether the
// speculative output was the base's own; and each run's time.
type SpecRun struct {
	PromptTokens int     `json:"prompt_tokens"`
	Generated    int     `json:"generated"`
	Drafted      int     `json:"drafted"`
	Accepted     int     `json:"accepted"`
	Steps        int     `json:"steps"`
	Same         bool    `json:"same"`
	BaseMS       float64 `json:"base_ms"`
	DraftMS      float64 `json:"draft_ms"`
}

// SpecResult is what the speculative bench writes.
type SpecResult struct {
	Runtime string    `json:"runtime"`
	Backend string    `json:"backend"`
	LoadMS  float64   `json:"load_ms"`
	Results []SpecRun `json:"results"`
}

// ReadSpecResult reads a speculative bench's result and checks it has n
// runs whose counts hold together.
func ReadSpecResult(path string, n int) (SpecResult, error) {
	var r SpecResult
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("reading the speculative bench's result: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Results) != n {
		return r, fmt.Errorf("%s: %d results for %d prompts", path, len(r.Results), n)
	}
	for i, s := range r.Results {
		if s.Generated < 0 || s.Drafted < 0 || s.Accepted < 0 || s.Accepted > s.Drafted || s.Steps < 0 {
			return r, fmt.Errorf("%s: result %d is not valid (generated %d, drafted %d, accepted %d, steps %d)", path, i, s.Generated, s.Drafted, s.Accepted, s.Steps)
		}
	}
	return r, nil
}
