package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeRows(t testing.TB, dir, name string, rows ...string) Input {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Input{Name: "data/" + name, Path: p}
}

// build runs Build and returns every output file's content.
func build(t testing.TB, cfg *Config, inputs ...Input) (map[string]string, *Stats) {
	t.Helper()
	out := t.TempDir()
	st, err := Build(context.Background(), cfg, inputs, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	if want := cfg.Outputs(); !reflect.DeepEqual(sortedKeys(files), want) {
		t.Fatalf("outputs %v, want %v", sortedKeys(files), want)
	}
	return files, st
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// fieldWhere is a where expression: row[field] == value, failing on rows
// without the field as an HCL expression does.
func fieldWhere(field, value string) Predicate {
	return func(row map[string]any) (bool, error) {
		v, ok := row[field]
		if !ok {
			return false, fmt.Errorf("the row has no field %q", field)
		}
		return v == value, nil
	}
}

func TestBuildValidationNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	good := writeRows(t, dir, "good.jsonl", `{"text":"a","domain":"x","answer":"y"}`)
	tests := []struct {
		name string
		cfg  Config
		rows []string
		err  string
	}{
		{"not an object", Config{}, []string{`{"text":"a"}`, ``, `[1]`}, "data/bad.jsonl:3: not a JSON object (a JSON array)"},
		{"not JSON", Config{}, []string{`{"text":"a"}`, `{"text":`}, "data/bad.jsonl:2: not JSON: unexpected end of JSON input"},
		{"duplicate key", Config{}, []string{`{"text":"a","text":"b"}`}, `data/bad.jsonl:1: duplicate key "text"`},
		{"invalid UTF-8", Config{}, []string{"{\"text\":\"\xc3\x28\"}"}, "data/bad.jsonl:1: invalid UTF-8 at byte 10"},
		{"too long", Config{MaxRowBytes: 48}, []string{`{"text":"a"}`, `{"text":"` + strings.Repeat("a", 40) + `"}`}, "data/bad.jsonl:2: line is longer than 48 bytes; is this a JSONL file?"},
		{"where fails", Config{Where: fieldWhere("domain", "x"), WherePos: "data/BUILD.hcl:4:3"}, []string{`{"domain":"x"}`, `{"text":"no domain"}`},
			`data/bad.jsonl:2: where (data/BUILD.hcl:4:3): the row has no field "domain"`},
		{"text fails", Config{TextPos: "data/BUILD.hcl:5:3", Text: func(r map[string]any) (string, error) {
			if _, ok := r["answer"]; !ok {
				return "", errors.New("no answer")
			}
			return "", nil
		}}, []string{`{"answer":1}`, `{"q":1}`},
			`data/bad.jsonl:2: text (data/BUILD.hcl:5:3): no answer`},
		{"sample.by field missing", Config{Sample: &Sample{By: []string{"domain"}}}, []string{`{"domain":"x"}`, `{"text":"b"}`},
			`data/bad.jsonl:2: no field "domain" (sample.by)`},
		{"dedupe without text", Config{Dedupe: DedupeExact}, []string{`{"q":"b"}`},
			`data/bad.jsonl:1: dedupe: the row has no "text" field (build it with text = "...", or name the fields to compare with dedupe_fields)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := writeRows(t, dir, "bad.jsonl", tt.rows...)
			cfg := tt.cfg
			cfg.Name = "d"
			_, err := Build(context.Background(), &cfg, []Input{good, bad}, t.TempDir(), nil)
			var re *RowError
			if err == nil || err.Error() != tt.err || !errors.As(err, &re) {
				t.Errorf("error = %v, want %s", err, tt.err)
			}
		})
	}
}

func TestBuildTextWhereDedupeStats(t *testing.T) {
	dir := t.TempDir()
	a := writeRows(t, dir, "a.jsonl",
		`{"domain":"coding","difficulty":"easy","question":"Sort a list?","answer":"sorted(x)","score":8}`,
		`{"domain":"coding","difficulty":"easy","question":"sort a list","answer":"sorted(x)","score":9}`, // a duplicate once normalised
		`{"domain":"math","difficulty":"hard","question":"2+2?","answer":"4","score":3}`,                  // filtered out
	)
	b := writeRows(t, dir, "b.jsonl",
		`{"domain":"math","difficulty":"hard","question":"3*3?","answer":"9","score":7,"text":"old"}`,
		``,
		`{"domain":"math","difficulty":"easy","question":"1+1?","answer":"2","score":10}`,
	)
	cfg := &Config{
		Name: "clean",
		Where: func(r map[string]any) (bool, error) {
			return r["score"].(float64) >= 7, nil
		},
		Text: func(r map[string]any) (string, error) {
			return r["question"].(string) + "\n\n" + r["answer"].(string), nil
		},
		Dedupe: DedupeNormalized,
	}
	files, st := build(t, cfg, a, b)
	want := []string{
		`{"domain":"coding","difficulty":"easy","question":"Sort a list?","answer":"sorted(x)","score":8,"text":"Sort a list?\n\nsorted(x)"}`,
		`{"domain":"math","difficulty":"hard","question":"3*3?","answer":"9","score":7,"text":"3*3?\n\n9"}`,
		`{"domain":"math","difficulty":"easy","question":"1+1?","answer":"2","score":10,"text":"1+1?\n\n2"}`,
	}
	if got := lines(files["clean.jsonl"]); !reflect.DeepEqual(got, want) {
		t.Errorf("clean.jsonl =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var stats Stats
	if err := json.Unmarshal([]byte(files["stats.json"]), &stats); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&stats, st) {
		t.Errorf("stats.json differs from the stats returned")
	}
	s := stats.Splits["clean"]
	textBytes := int64(len("Sort a list?\n\nsorted(x)") + len("3*3?\n\n9") + len("1+1?\n\n2"))
	wantBy := map[string]map[string]int{"domain": {"coding": 1, "math": 2}, "difficulty": {"easy": 2, "hard": 1}}
	if s.Rows != 3 || !reflect.DeepEqual(s.By, wantBy) || s.TextBytes != textBytes || s.TokensEstimate != (textBytes+3)/4 {
		t.Errorf("stats = %+v, want 3 rows, by %v, %d text bytes", s, wantBy, textBytes)
	}
	if in := stats.Input; in.Rows != 5 || in.Files != 2 || in.Removed["where"] != 1 || in.Removed["duplicates"] != 1 {
		t.Errorf("input stats = %+v", in)
	}
}

// splitRows gives each row's split.
func splitRows(files map[string]string, names ...string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		for _, l := range lines(files[n+".jsonl"]) {
			out[l] = n
		}
	}
	return out
}

func genRows(from, to int) []string {
	var rows []string
	for i := from; i < to; i++ {
		rows = append(rows, fmt.Sprintf(`{"domain":%q,"difficulty":%q,"text":"example %d"}`,
			[]string{"coding", "math", "tool_use", "reasoning"}[i%4], []string{"easy", "hard"}[i%7%2], i))
	}
	return rows
}

func TestSplitStableWhenRowsAreAdded(t *testing.T) {
	dir := t.TempDir()
	shares := []Share{{"test", 0.05}, {"train", 0.9}, {"val", 0.05}}
	cfg := &Config{Name: "splits", Split: shares, SplitSeed: 7}
	first, st1 := build(t, cfg, writeRows(t, dir, "a.jsonl", genRows(0, 4000)...))
	more, st2 := build(t, cfg, writeRows(t, dir, "a.jsonl", genRows(0, 4000)...), writeRows(t, dir, "b.jsonl", genRows(4000, 6000)...))
	before := splitRows(first, "train", "val", "test")
	after := splitRows(more, "train", "val", "test")
	if len(before) != 4000 || len(after) != 6000 {
		t.Fatalf("%d and %d rows, want 4000 and 6000", len(before), len(after))
	}
	for row, s := range before {
		if after[row] != s {
			t.Fatalf("row %s moved from %s to %s when rows were added", row, s, after[row])
		}
	}
	// The shares hold within a few standard deviations, in every stratum.
	for _, st := range []*Stats{st1, st2} {
		total := st.Splits["train"].Rows + st.Splits["val"].Rows + st.Splits["test"].Rows
		for _, d := range []string{"coding", "math", "tool_use", "reasoning"} {
			n := float64(total) / 4
			val := float64(st.Splits["val"].By["domain"][d])
			if val < n*0.05-4*sqrt(n*0.05) || val > n*0.05+4*sqrt(n*0.05) {
				t.Errorf("domain %s: %v val rows of %v", d, val, n)
			}
		}
	}
	// Another seed gives other splits; the same seed the same bytes.
	again, _ := build(t, cfg, writeRows(t, dir, "a.jsonl", genRows(0, 4000)...))
	if !reflect.DeepEqual(again, first) {
		t.Error("the same inputs gave different bytes")
	}
	other, _ := build(t, &Config{Name: "splits", Split: shares, SplitSeed: 8}, writeRows(t, dir, "a.jsonl", genRows(0, 4000)...))
	if other["val.jsonl"] == first["val.jsonl"] {
		t.Error("seeds 7 and 8 gave the same val split")
	}
	// Rows keep their input order in each split.
	if tr := lines(first["train.jsonl"]); !strings.Contains(tr[0], `"example 0"`) && !strings.Contains(tr[0], `"example 1"`) && !strings.Contains(tr[0], `"example 2"`) {
		t.Errorf("train starts with %s", tr[0])
	}
}

func sqrt(x float64) float64 {
	r := x
	for i := 0; i < 50; i++ {
		r = (r + x/r) / 2
	}
	return r
}

func TestEpisodes(t *testing.T) {
	dir := t.TempDir()
	in := writeRows(t, dir, "a.jsonl", genRows(0, 1000)...)
	cfg := &Config{Name: "eps", Split: []Share{{"train", 0.8}, {"val", 0.2}}, SplitSeed: 7,
		Episodes: &Episodes{By: "domain", Support: 5, Query: 15, Seed: 7}}
	files, st := build(t, cfg, in)
	train := map[string]bool{}
	for _, l := range lines(files["train.jsonl"]) {
		train[l] = true
	}
	type episode struct {
		Task    string            `json:"task"`
		Support []json.RawMessage `json:"support"`
		Query   []json.RawMessage `json:"query"`
	}
	used := map[string]bool{}
	perTask := map[string]int{}
	var order []string
	for _, l := range lines(files["episodes.jsonl"]) {
		var e episode
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("episode %s: %v", l, err)
		}
		if len(e.Support) != 5 || len(e.Query) != 15 {
			t.Fatalf("episode of %s has %d support and %d query rows, want 5 and 15", e.Task, len(e.Support), len(e.Query))
		}
		for _, r := range append(e.Support, e.Query...) {
			var row map[string]any
			json.Unmarshal(r, &row)
			if !train[string(r)] {
				t.Fatalf("episode row %s is not a train row", r)
			}
			if row["domain"] != e.Task {
				t.Fatalf("row %s in an episode of %s", r, e.Task)
			}
			if used[string(r)] {
				t.Fatalf("row %s in two episodes", r)
			}
			used[string(r)] = true
		}
		perTask[e.Task]++
		order = append(order, e.Task)
	}
	// About 200 train rows per domain: 10 episodes of 20 rows each.
	for _, d := range []string{"coding", "math", "reasoning", "tool_use"} {
		trainRows := st.Splits["train"].By["domain"][d]
		if perTask[d] != trainRows/20 || st.Episodes.Tasks[d] != perTask[d] {
			t.Errorf("task %s: %d episodes (stats %d), want %d from %d train rows", d, perTask[d], st.Episodes.Tasks[d], trainRows/20, trainRows)
		}
	}
	if order[0] != "coding" || order[1] != "math" || order[2] != "reasoning" || order[3] != "tool_use" {
		t.Errorf("tasks take turns: got %v first", order[:4])
	}
	again, _ := build(t, cfg, in)
	if again["episodes.jsonl"] != files["episodes.jsonl"] {
		t.Error("the same inputs gave other episodes")
	}
	cfg.Episodes.Seed = 8
	other, _ := build(t, cfg, in)
	if other["episodes.jsonl"] == files["episodes.jsonl"] {
		t.Error("seeds 7 and 8 gave the same episodes")
	}

	// Too few rows for one episode: a clear error.
	cfg.Episodes.Query = 500
	_, err := Build(context.Background(), cfg, []Input{in}, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "episodes: no task has the 505 rows (support 5 + query 500) an episode needs in train.jsonl (coding: ") {
		t.Errorf("error = %v", err)
	}
}

// scoresFor writes an eval's scores.jsonl for the raw rows, with a
// perplexity per row.
func scoresFor(t *testing.T, dir string, rows []string, ppl func(i int) float64) string {
	var b strings.Builder
	for i, r := range rows {
		sum := sha256.Sum256([]byte(r))
		fmt.Fprintf(&b, `{"index":%d,"file":"train.jsonl","line":%d,"row_sha256":%q,"group":"x","tokens":10,"nll":1.5,"perplexity":%g}`+"\n",
			i, i+1, hex.EncodeToString(sum[:]), ppl(i))
	}
	p := filepath.Join(dir, "scores.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWhereMetric(t *testing.T) {
	dir := t.TempDir()
	rows := genRows(0, 40)
	// The scores come in another order than the rows: they match by hash.
	rev := append([]string(nil), rows...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	sp := scoresFor(t, dir, rev, func(i int) float64 { return float64(39 - i) }) // row k has perplexity k
	tests := []struct {
		conds []Cond
		want  int
	}{
		{[]Cond{{"perplexity", "gt", 12.4}}, 27}, // 13..39
		{[]Cond{{"perplexity", "ge", 13}}, 27},
		{[]Cond{{"perplexity", "lt", 13}}, 13},
		{[]Cond{{"perplexity", "le", 13}, {"perplexity", "gt", 10}}, 3},
	}
	in := writeRows(t, dir, "train.jsonl", rows...)
	for _, tt := range tests {
		var metrics []string
		for _, c := range tt.conds {
			metrics = append(metrics, c.Metric)
		}
		sc, err := LoadScores(context.Background(), sp, "//models:train_scores/scores.jsonl", metrics[:1])
		if err != nil {
			t.Fatal(err)
		}
		files, st := build(t, &Config{Name: "failures", Metric: &MetricFilter{Scores: sc, Conds: tt.conds}}, in)
		got := lines(files["failures.jsonl"])
		if len(got) != tt.want || st.Input.Removed["where_metric"] != 40-tt.want {
			t.Errorf("%v: kept %d rows, want %d", tt.conds, len(got), tt.want)
		}
		if tt.want == 27 && !strings.Contains(got[0], `"example 13"`) {
			t.Errorf("%v: first row %s, want example 13", tt.conds, got[0])
		}
	}

	// A row without a score names its file and line.
	sc, err := LoadScores(context.Background(), sp, "//models:train_scores/scores.jsonl", []string{"perplexity"})
	if err != nil {
		t.Fatal(err)
	}
	extra := writeRows(t, dir, "more.jsonl", rows[0], `{"domain":"math","text":"never scored"}`)
	_, err = Build(context.Background(), &Config{Name: "f", Metric: &MetricFilter{Scores: sc, Conds: []Cond{{"perplexity", "gt", 1}}}}, []Input{in, extra}, t.TempDir(), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "data/more.jsonl:2: where_metric: //models:train_scores/scores.jsonl has no score for this row (row_sha256 ") {
		t.Errorf("error = %v", err)
	}

	// A score line without the metric, or without row_sha256, names its line.
	bad := filepath.Join(dir, "bad_scores.jsonl")
	os.WriteFile(bad, []byte(`{"row_sha256":"`+strings.Repeat("ab", 32)+`","perplexity":3}`+"\n"+`{"row_sha256":"`+strings.Repeat("cd", 32)+`","nll":3}`+"\n"), 0o644)
	_, err = LoadScores(context.Background(), bad, "//m:e/scores.jsonl", []string{"perplexity"})
	if err == nil || err.Error() != `//m:e/scores.jsonl:2: no number "perplexity" (the score has: nll)` {
		t.Errorf("error = %v", err)
	}
	os.WriteFile(bad, []byte(`{"perplexity":3}`+"\n"), 0o644)
	_, err = LoadScores(context.Background(), bad, "//m:e/scores.jsonl", []string{"perplexity"})
	if err == nil || err.Error() != `//m:e/scores.jsonl:1: no "row_sha256" string: is this an eval's scores.jsonl?` {
		t.Errorf("error = %v", err)
	}
}

func TestParseCond(t *testing.T) {
	tests := []struct {
		name string
		want Cond
		err  bool
	}{
		{"perplexity_gt", Cond{"perplexity", "gt", 1}, false},
		{"exact_match_le", Cond{"exact_match", "le", 1}, false},
		{"perplexity", Cond{}, true},
		{"perplexity_eq", Cond{}, true},
		{"_gt", Cond{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCond(tt.name, 1)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseCond(%q) = %v, %v", tt.name, got, err)
		}
	}
}

func TestBuildCancelled(t *testing.T) {
	dir := t.TempDir()
	in := writeRows(t, dir, "a.jsonl", genRows(0, 5000)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, &Config{Name: "x"}, []Input{in}, t.TempDir(), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}
