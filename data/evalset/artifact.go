package evalset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Score is one example's result: Tokens predicted tokens and their summed
// negative log-likelihood.
type Score struct {
	Tokens int
	NLL    float64
}

// Info describes an evaluation for metrics.json.
type Info struct {
	Model   string // the model's label
	Dataset string // the dataset's label
	Runtime string // "llama.cpp (node-llama-cpp 3.21.1)", "torch 1.13.1 cpu", "script"
	By      string // the grouping field, "" for none
}

// Group is one group's figures.
type Group struct {
	Metrics  map[string]float64 `json:"metrics"`
	Examples int                `json:"examples"`
	Tokens   int                `json:"tokens"`
}

// Metrics is metrics.json.
type Metrics struct {
	Version  int                `json:"version"`
	Model    string             `json:"model"`
	Dataset  string             `json:"dataset"`
	Runtime  string             `json:"runtime"`
	Metrics  map[string]float64 `json:"metrics"`
	Examples int                `json:"examples"`
	Tokens   int                `json:"tokens"`
	By       string             `json:"by,omitempty"`
	Groups   map[string]Group   `json:"groups,omitempty"`
}

// scoreLine is one line of scores.jsonl.
type scoreLine struct {
	Index      int      `json:"index"`
	File       string   `json:"file"`
	Line       int      `json:"line"`
	RowSHA256  string   `json:"row_sha256"`
	Group      string   `json:"group,omitempty"`
	Tokens     int      `json:"tokens"`
	NLL        float64  `json:"nll"`
	Perplexity *float64 `json:"perplexity,omitempty"` // absent when nothing was predicted
}

// Perplexity is exp(nll / tokens); ok is false when tokens is 0.
func Perplexity(nll float64, tokens int) (float64, bool) {
	if tokens <= 0 {
		return 0, false
	}
	return math.Exp(nll / float64(tokens)), true
}

// Summarize computes metrics.json from the examples and their scores
// (scores may be nil: a script-only evaluation), with extra metrics (a
// user script's) added to the top-level metrics.
func Summarize(info Info, exs []Example, scores []Score, extra map[string]float64) (Metrics, error) {
	m := Metrics{Version: 1, Model: info.Model, Dataset: info.Dataset, Runtime: info.Runtime,
		Metrics: map[string]float64{}, Examples: len(exs), By: info.By}
	if scores != nil && len(scores) != len(exs) {
		return m, fmt.Errorf("%d scores for %d examples", len(scores), len(exs))
	}
	if scores != nil {
		var nll float64
		groups := map[string]*struct {
			nll    float64
			tokens int
			n      int
		}{}
		for i, s := range scores {
			nll += s.NLL
			m.Tokens += s.Tokens
			if info.By != "" {
				g := groups[exs[i].Group]
				if g == nil {
					g = &struct {
						nll    float64
						tokens int
						n      int
					}{}
					groups[exs[i].Group] = g
				}
				g.nll, g.tokens, g.n = g.nll+s.NLL, g.tokens+s.Tokens, g.n+1
			}
		}
		if ppl, ok := Perplexity(nll, m.Tokens); ok {
			m.Metrics["perplexity"] = ppl
		}
		if info.By != "" {
			m.Groups = make(map[string]Group, len(groups))
			for name, g := range groups {
				gm := map[string]float64{}
				if ppl, ok := Perplexity(g.nll, g.tokens); ok {
					gm["perplexity"] = ppl
				}
				m.Groups[name] = Group{Metrics: gm, Examples: g.n, Tokens: g.tokens}
			}
		}
	}
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, dup := m.Metrics[k]; dup {
			return m, fmt.Errorf("the script's metric %q is also computed by cogumi; rename it", k)
		}
		m.Metrics[k] = extra[k]
	}
	return m, nil
}

// Write writes metrics.json and, with scores, scores.jsonl into dir.
func Write(dir string, m Metrics, exs []Example, scores []Score) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding metrics.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if scores == nil {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i, ex := range exs {
		l := scoreLine{Index: ex.Index, File: ex.File, Line: ex.Line, RowSHA256: ex.RowSHA256, Group: ex.Group,
			Tokens: scores[i].Tokens, NLL: scores[i].NLL}
		if ppl, ok := Perplexity(scores[i].NLL, scores[i].Tokens); ok {
			l.Perplexity = &ppl
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "scores.jsonl"), buf.Bytes(), 0o644)
}

// ReadScriptMetrics reads the metrics.json a user's script wrote: an object
// with a "metrics" object of numbers.
func ReadScriptMetrics(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("the script wrote no metrics.json: it must write {\"metrics\": {\"name\": number, ...}} to $COGUMI_OUT/metrics.json")
		}
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("the script's metrics.json is not a JSON object: %v", err)
	}
	raw, ok := doc["metrics"]
	if !ok {
		return nil, fmt.Errorf(`the script's metrics.json has no "metrics" object: write {"metrics": {"name": number, ...}}`)
	}
	var vals map[string]any
	if err := json.Unmarshal(raw, &vals); err != nil || vals == nil {
		return nil, fmt.Errorf(`the script's metrics.json: "metrics" is not an object of numbers`)
	}
	out := make(map[string]float64, len(vals))
	for k, v := range vals {
		f, ok := v.(float64)
		if !ok {
			return nil, fmt.Errorf(`the script's metrics.json: metric %q is %s, not a number`, k, string(mustJSON(v)))
		}
		out[k] = f
	}
	return out, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
