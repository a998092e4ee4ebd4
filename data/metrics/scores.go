package metrics

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// ScoresName is the name of an evaluation's per-example scores file.
const ScoresName = "scores.jsonl"

// Score is one line of scores.jsonl: an example's score, in dataset order.
type Score struct {
	Index      int64   `json:"index"`
	File       string  `json:"file"`
	Line       int64   `json:"line"`
	RowSHA256  string  `json:"row_sha256"`
	Group      string  `json:"group,omitempty"`
	Tokens     int64   `json:"tokens"`
	NLL        float64 `json:"nll"`
	Perplexity float64 `json:"perplexity"`
}

// ReadScores reads a scores.jsonl. Each line must be a JSON object with a
// finite perplexity; a bad line is an error naming it.
func ReadScores(path string) ([]Score, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	var out []Score
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var s Score
		if err := json.Unmarshal(line, &s); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if s.Tokens == 0 && s.Perplexity == 0 {
			// Too short to score (one token or none): eval writes no
			// perplexity. It stays on the base model (0 is below any threshold).
			out = append(out, s)
			continue
		}
		if math.IsNaN(s.Perplexity) || math.IsInf(s.Perplexity, 0) || s.Perplexity <= 0 {
			return nil, fmt.Errorf("%s:%d: perplexity %v is not a positive number", path, n, s.Perplexity)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// Routing is how a validation set splits under perplexity routing.
type Routing struct {
	Examples int64 // every scored example
	// Routed counts the examples a modifier would serve: base perplexity
	// above the threshold and a group with a modifier.
	Routed int64
	// Counts and Shares are per modifier's group: how many examples of
	// ALL would go to it, and that number's fraction of all examples.
	Counts map[string]int64
	Shares map[string]float64
}

// Route applies the routing rule to the base model's scores: an example
// whose perplexity is above threshold goes to its group's modifier (when
// the group has one); every other example stays on the base model.
func Route(scores []Score, threshold float64, groups []string) Routing {
	r := Routing{Examples: int64(len(scores)), Counts: make(map[string]int64, len(groups)), Shares: make(map[string]float64, len(groups))}
	for _, g := range groups {
		r.Counts[g] = 0
	}
	for _, s := range scores {
		if s.Perplexity <= threshold {
			continue
		}
		if _, ok := r.Counts[s.Group]; ok {
			r.Counts[s.Group]++
			r.Routed++
		}
	}
	for g, n := range r.Counts {
		if r.Examples > 0 {
			r.Shares[g] = float64(n) / float64(r.Examples)
		}
	}
	return r
}

// GroupsOf lists the distinct groups of scores, sorted.
func GroupsOf(scores []Score) []string {
	seen := make(map[string]bool)
	for _, s := range scores {
		seen[s.Group] = true
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
