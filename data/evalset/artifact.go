package evalset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Score is one example's result: Tokens predicted tokens and their summed
// negative log-likelihood; with a reference model, how the model's
// distributions drift from the reference's on the same tokens.
type Score struct {
	Tokens    int
	NLL       float64
	Reference *Divergence // nil without a reference
}

// Divergence is one example scored by the reference model too: the
// reference's summed NLL of the same tokens, the KL divergence
// KL(P_ref || P_model) at each predicted position, and how many positions
// have the same most likely token in both.
type Divergence struct {
	NLL     float64
	KLD     []float64
	SameTop int
}

// The metrics a reference model adds (llama-perplexity --kl-divergence's
// figures): the mean and 99th percentile of the per-token KL divergence,
// the fraction of positions whose most likely token agrees, and the
// model's perplexity minus the reference's.
const (
	MetricKLDMean       = "kld_mean"
	MetricKLDP99        = "kld_p99"
	MetricTop1Agreement = "top1_agreement"
	MetricDeltaPPL      = "delta_perplexity"
	MetricReferencePPL  = "reference_perplexity"
)

// Info describes an evaluation for metrics.json.
type Info struct {
	Model     string // the model's label
	Dataset   string // the dataset's label
	Runtime   string // "llama.cpp (node-llama-cpp 3.21.1)", "torch 1.13.1 cpu", "script"
	By        string // the grouping field, "" for none
	Reference string // the reference model's label, "" for none
}

// Group is one group's figures.
type Group struct {
	Metrics  map[string]float64 `json:"metrics"`
	Examples int                `json:"examples"`
	Tokens   int                `json:"tokens"`
}

// Metrics is metrics.json.
type Metrics struct {
	Version int    `json:"version"`
	Model   string `json:"model"`
	Dataset string `json:"dataset"`
	Runtime string `json:"runtime"`
	// Reference is the model the KL divergence is measured against.
	Reference string             `json:"reference,omitempty"`
	Metrics   map[string]float64 `json:"metrics"`
	Examples  int                `json:"examples"`
	Tokens    int                `json:"tokens"`
	By        string             `json:"by,omitempty"`
	Groups    map[string]Group   `json:"groups,omitempty"`
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
	// With a reference model, over this example's predicted tokens.
	KLDMean       *float64 `json:"kld_mean,omitempty"`
	Top1Agreement *float64 `json:"top1_agreement,omitempty"`
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
		Reference: info.Reference, Metrics: map[string]float64{}, Examples: len(exs), By: info.By}
	if scores != nil && len(scores) != len(exs) {
		return m, fmt.Errorf("%d scores for %d examples", len(scores), len(exs))
	}
	if scores != nil {
		var all tally
		groups := map[string]*tally{}
		for i, s := range scores {
			if (s.Reference != nil) != (info.Reference != "") {
				return m, fmt.Errorf("example %d: a comparison with the reference model is missing or unexpected", i)
			}
			all.add(s)
			if info.By != "" {
				g := groups[exs[i].Group]
				if g == nil {
					g = &tally{}
					groups[exs[i].Group] = g
				}
				g.add(s)
			}
		}
		m.Metrics, m.Tokens = all.metrics(), all.tokens
		if info.By != "" {
			m.Groups = make(map[string]Group, len(groups))
			for name, g := range groups {
				m.Groups[name] = Group{Metrics: g.metrics(), Examples: g.n, Tokens: g.tokens}
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

// tally sums the scores of a set of examples.
type tally struct {
	n, tokens int
	nll       float64
	ref       bool
	refNLL    float64
	kld       []float64
	sameTop   int
}

func (t *tally) add(s Score) {
	t.n++
	t.tokens += s.Tokens
	t.nll += s.NLL
	if d := s.Reference; d != nil {
		t.ref = true
		t.refNLL += d.NLL
		t.kld = append(t.kld, d.KLD...)
		t.sameTop += d.SameTop
	}
}

func (t *tally) metrics() map[string]float64 {
	m := map[string]float64{}
	ppl, ok := Perplexity(t.nll, t.tokens)
	if !ok {
		return m
	}
	m["perplexity"] = ppl
	if !t.ref {
		return m
	}
	refPPL, _ := Perplexity(t.refNLL, t.tokens)
	var sum float64
	for _, v := range t.kld {
		sum += v
	}
	m[MetricReferencePPL] = refPPL
	m[MetricDeltaPPL] = ppl - refPPL
	m[MetricKLDMean] = sum / float64(len(t.kld))
	m[MetricKLDP99] = Percentile(t.kld, 0.99)
	m[MetricTop1Agreement] = float64(t.sameTop) / float64(t.tokens)
	return m
}

// Percentile is llama-perplexity's: the sorted values interpolated
// linearly at fraction·(n-1). values is not changed; it must not be empty.
func Percentile(values []float64, fraction float64) float64 {
	v := slices.Sorted(slices.Values(values))
	switch {
	case fraction <= 0:
		return v[0]
	case fraction >= 1:
		return v[len(v)-1]
	}
	p := fraction * float64(len(v)-1)
	i := int(p)
	p -= float64(i)
	return (1-p)*v[i] + p*v[min(i+1, len(v)-1)]
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
			if d := scores[i].Reference; d != nil {
				var sum float64
				for _, v := range d.KLD {
					sum += v
				}
				kld, same := sum/float64(scores[i].Tokens), float64(d.SameTop)/float64(scores[i].Tokens)
				l.KLDMean, l.Top1Agreement = &kld, &same
			}
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
