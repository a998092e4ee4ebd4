package dataset

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/rowexpr"
)

// benchRows writes n generated rows (about 300 bytes each, like a
// question/answer pair from a teacher model).
func benchRows(b *testing.B, n int) Input {
	b.Helper()
	p := filepath.Join(b.TempDir(), "rows.jsonl")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	domains := []string{"coding", "math", "tool_use", "reasoning", "writing", "science", "history", "chat"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `{"domain":%q,"difficulty":%q,"prompt_id":"questions/%s/%d","index":%d,"question":"Question %d: explain the idea behind item %d in a few sentences.","answer":"The idea behind item %d is that every part follows from the previous one, step by step, until the result holds for all cases we care about.","score":%d}`+"\n",
			domains[i%8], []string{"easy", "hard"}[i%5%2], domains[i%8], i, i, i, i, i, i%10+1)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return Input{Name: "rows.jsonl", Path: p}
}

func benchBuild(b *testing.B, cfg *Config) {
	const n = 100_000
	in := benchRows(b, n)
	st, _ := os.Stat(in.Path)
	b.SetBytes(st.Size())
	b.ResetTimer()
	cpu0 := cpuSeconds(b)
	for i := 0; i < b.N; i++ {
		out := b.TempDir()
		if _, err := Build(context.Background(), cfg, []Input{in}, out, nil); err != nil {
			b.Fatal(err)
		}
	}
	// On a shared machine wall time says little: rows per CPU-second (the
	// process's user + system time, GC included) is the cost.
	cpu := cpuSeconds(b) - cpu0
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(n*b.N)/cpu, "rows/cpu-s")
}

func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func fullConfig() *Config {
	return &Config{
		Name:   "splits",
		Dedupe: DedupeNormalized,
		Sample: &Sample{By: []string{"domain", "difficulty"}, Quota: map[string]float64{"easy": 0.4, "hard": 0.6}, Seed: 7},
		Split:  []Share{{"test", 0.05}, {"train", 0.9}, {"val", 0.05}}, SplitSeed: 7,
		Episodes: &Episodes{By: "domain", Support: 5, Query: 15, Seed: 7},
	}
}

// BenchmarkBuild streams 100K rows through validation, a where filter and
// a text template (as Go functions), normalized dedupe, quota sampling,
// splits and episodes.
func BenchmarkBuild(b *testing.B) {
	cfg := fullConfig()
	cfg.Where = func(r map[string]any) (bool, error) { return r["score"].(float64) >= 3, nil }
	cfg.Text = func(r map[string]any) (string, error) {
		return r["question"].(string) + "\n\n" + r["answer"].(string), nil
	}
	benchBuild(b, cfg)
}

// BenchmarkBuildRowExpr is the same with where and text as HCL row
// expressions (package rowexpr), as a BUILD.hcl gives them.
func BenchmarkBuildRowExpr(b *testing.B) {
	where, err := rowexpr.FromValue("where", rowexpr.Encode("row.score >= 3", nil, nil))
	if err != nil {
		b.Fatal(err)
	}
	text, err := rowexpr.FromValue("text", cty.StringVal("${row.question}\n\n${row.answer}"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := fullConfig()
	cfg.Where, cfg.Text = where.Bool, text.String
	benchBuild(b, cfg)
}

// BenchmarkValidateOnly is the floor: reading, validating and copying rows.
func BenchmarkValidateOnly(b *testing.B) {
	benchBuild(b, &Config{Name: "copy"})
}
