package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Comparison operators of where_metric, by their attribute suffix.
var ops = map[string]func(a, b float64) bool{
	"gt": func(a, b float64) bool { return a > b },
	"lt": func(a, b float64) bool { return a < b },
	"ge": func(a, b float64) bool { return a >= b },
	"le": func(a, b float64) bool { return a <= b },
}

// Cond is one threshold of where_metric: perplexity_gt = 12.4 is
// {Metric: "perplexity", Op: "gt", Value: 12.4}.
type Cond struct {
	Metric string
	Op     string // gt, lt, ge, le
	Value  float64
}

func (c Cond) String() string { return fmt.Sprintf("%s_%s = %g", c.Metric, c.Op, c.Value) }

// ParseCond reads an attribute name such as "perplexity_gt".
func ParseCond(name string, value float64) (Cond, error) {
	i := strings.LastIndexByte(name, '_')
	if i <= 0 {
		return Cond{}, fmt.Errorf("%q is not <metric>_gt, _lt, _ge or _le", name)
	}
	op := name[i+1:]
	if _, ok := ops[op]; !ok {
		return Cond{}, fmt.Errorf("%q is not <metric>_gt, _lt, _ge or _le", name)
	}
	return Cond{Metric: name[:i], Op: op, Value: value}, nil
}

// Pass reports whether value passes the condition.
func (c Cond) Pass(value float64) bool { return ops[c.Op](value, c.Value) }

// Scores are an eval's per-example scores (scores.jsonl, contracts.md),
// found by the sha256 of the raw row they scored.
type Scores struct {
	Name    string   // for messages: "//models:train_scores"
	Metrics []string // the metrics kept, in the order of each entry's values
	index   map[[32]byte]int32
	values  []float64 // len(Metrics) per entry
}

// Lookup returns the values of the metrics for the row whose raw bytes
// (without the line ending) hash to sum.
func (s *Scores) Lookup(sum [32]byte) ([]float64, bool) {
	i, ok := s.index[sum]
	if !ok {
		return nil, false
	}
	n := len(s.Metrics)
	return s.values[int(i)*n : int(i)*n+n], true
}

// Len is the number of distinct rows scored.
func (s *Scores) Len() int { return len(s.index) }

// LoadScores reads scores.jsonl at path (named display in messages),
// keeping the given metrics, which every line must hold as numbers.
func LoadScores(ctx context.Context, path, display string, metrics []string) (*Scores, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the scores of %s: %w", display, err)
	}
	defer f.Close()
	s := &Scores{Name: display, Metrics: metrics, index: make(map[[32]byte]int32)}
	lr := newLineReader(f, DefaultMaxRowBytes)
	var p parser
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, named(err, display, lr.line)
		}
		if lr.line%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pr, err := p.parse(line)
		if errors.Is(err, errBlank) {
			continue
		}
		if err != nil {
			return nil, &RowError{File: display, Line: lr.line, Err: err}
		}
		row := pr.row
		sum, err := rowSHA(row)
		if err != nil {
			return nil, &RowError{File: display, Line: lr.line, Err: err}
		}
		if _, dup := s.index[sum]; dup {
			continue // the same row scored twice: the same content has the same score
		}
		for _, m := range metrics {
			v, ok := row[m].(float64)
			if !ok {
				return nil, &RowError{File: display, Line: lr.line, Err: fmt.Errorf("no number %q (the score has: %s)", m, strings.Join(numericKeys(row), ", "))}
			}
			s.values = append(s.values, v)
		}
		s.index[sum] = int32(len(s.index))
	}
	return s, nil
}

func rowSHA(row map[string]any) ([32]byte, error) {
	var sum [32]byte
	h, ok := row["row_sha256"].(string)
	if !ok {
		return sum, errors.New(`no "row_sha256" string: is this an eval's scores.jsonl?`)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(sum) {
		return sum, fmt.Errorf("row_sha256 %q is not a hex sha256", h)
	}
	copy(sum[:], b)
	return sum, nil
}

func numericKeys(row map[string]any) []string {
	var ks []string
	for k, v := range row {
		if _, ok := v.(float64); ok {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// named gives a line reader's error its file name.
func named(err error, file string, line int) error {
	var re *RowError
	if errors.As(err, &re) {
		re.File = file
		return re
	}
	return fmt.Errorf("reading %s: %w", file, err)
}

// MetricFilter keeps the rows whose score passes every condition.
type MetricFilter struct {
	Scores *Scores
	Conds  []Cond // one per metric of Scores.Metrics, in any order
}

// pass looks up the row by the sha256 of its raw line.
func (m *MetricFilter) pass(raw []byte) (bool, error) {
	sum := sha256.Sum256(raw)
	vals, ok := m.Scores.Lookup(sum)
	if !ok {
		return false, fmt.Errorf("where_metric: %s has no score for this row (row_sha256 %x); evaluate the rows this dataset reads", m.Scores.Name, sum)
	}
	for _, c := range m.Conds {
		for i, name := range m.Scores.Metrics {
			if name == c.Metric && !c.Pass(vals[i]) {
				return false, nil
			}
		}
	}
	return true, nil
}
