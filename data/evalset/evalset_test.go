package evalset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadJSONLAndText(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.jsonl", "{\"text\":\"hello\",\"domain\":\"x\"}\r\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"domain\":7}\n")
	write(t, dir, "b/c.txt", "para one\nline two\n\n\npara two\n")
	exs, err := Read(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 4 {
		t.Fatalf("got %d examples, want 4: %+v", len(exs), exs)
	}
	sum := sha256.Sum256([]byte(`{"text":"hello","domain":"x"}`))
	if exs[0].RowSHA256 != hex.EncodeToString(sum[:]) || exs[0].Line != 1 || exs[0].File != "a.jsonl" {
		t.Errorf("first example %+v: the digest must be of the line without \\r\\n", exs[0])
	}
	if exs[1].Text != "user: hi\n" || exs[1].Line != 3 {
		t.Errorf("chat example %+v", exs[1])
	}
	if exs[2].File != "b/c.txt" || exs[2].Line != 1 || exs[2].Text != "para one\nline two" || exs[3].Line != 5 {
		t.Errorf("paragraphs %+v %+v", exs[2], exs[3])
	}
	if exs, err := Read(filepath.Join(dir, "a.jsonl"), Options{By: "domain", Max: 1}); err != nil || len(exs) != 1 || exs[0].Group != "x" {
		t.Errorf("max/by: %+v %v", exs, err)
	}
	if exs, _ := Read(filepath.Join(dir, "a.jsonl"), Options{By: "domain"}); len(exs) != 2 || exs[1].Group != "7" {
		t.Errorf("a number groups as its text: %+v", exs)
	}
}

func TestReadErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"{\"text\":\"a\"}\n{\"txt\":\"b\"}\n": `v.jsonl:2: the row has neither "text" nor "messages"`,
		"{\"text\":\"a\"}\nnot json\n":        "v.jsonl:2: not a JSON object",
		"{\"text\":\"\"}\n":                   `v.jsonl:1: "text" is empty`,
	} {
		p := write(t, dir, "v.jsonl", body)
		if _, err := Read(p, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
	p := write(t, dir, "v.jsonl", "{\"text\":\"a\"}\n")
	if _, err := Read(p, Options{By: "domain"}); err == nil || !strings.Contains(err.Error(), `v.jsonl:1: the row has no field "domain"`) {
		t.Errorf("by: %v", err)
	}
}

func TestSummarizeAndWrite(t *testing.T) {
	exs := []Example{{Index: 0, File: "v.jsonl", Line: 1, Group: "a"}, {Index: 1, File: "v.jsonl", Line: 2, Group: "b"}, {Index: 2, File: "v.jsonl", Line: 3, Group: "a"}}
	scores := []Score{{Tokens: 10, NLL: 20}, {Tokens: 5, NLL: 5}, {Tokens: 30, NLL: 30}}
	m, err := Summarize(Info{Model: "//m:x", Dataset: "//d:v", Runtime: "r", By: "domain"}, exs, scores, map[string]float64{"acc": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// Token-weighted: exp(55/45), and group a exp(50/40), not a mean of examples.
	if got := m.Metrics["perplexity"]; math.Abs(got-math.Exp(55.0/45)) > 1e-12 || m.Tokens != 45 || m.Metrics["acc"] != 0.5 {
		t.Errorf("metrics %+v", m)
	}
	if g := m.Groups["a"]; math.Abs(g.Metrics["perplexity"]-math.Exp(50.0/40)) > 1e-12 || g.Examples != 2 || g.Tokens != 40 {
		t.Errorf("group a %+v", g)
	}
	if _, err := Summarize(Info{}, exs, scores, map[string]float64{"perplexity": 1}); err == nil {
		t.Error("a script metric named like cogumi's must be refused")
	}
	dir := t.TempDir()
	if err := Write(dir, m, exs, scores); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "scores.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `{"index":1,"file":"v.jsonl","line":2,"row_sha256":"","group":"b","tokens":5,"nll":5,"perplexity":2.718`) {
		t.Errorf("scores.jsonl:\n%s", b)
	}
	var back Metrics
	b, _ = os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err := json.Unmarshal(b, &back); err != nil || back.Version != 1 || back.By != "domain" {
		t.Errorf("metrics.json %s: %v", b, err)
	}
}

func TestReadScriptMetrics(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		`{"metrics": {"acc": 0.9}}`:  "",
		`{"score": 1}`:               `no "metrics" object`,
		`{"metrics": {"acc": "hi"}}`: `metric "acc" is "hi", not a number`,
		`[1]`:                        "not a JSON object",
	} {
		p := write(t, dir, "metrics.json", body)
		m, err := ReadScriptMetrics(p)
		if want == "" {
			if err != nil || m["acc"] != 0.9 {
				t.Errorf("%s: %v %v", body, m, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}

func TestPercentileAsLlamaPerplexity(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3} // sorted: 1 2 3 4 5
	for _, c := range []struct{ f, want float64 }{{0, 1}, {1, 5}, {0.5, 3}, {0.99, 4.96}, {0.1, 1.4}} {
		if got := Percentile(v, c.f); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Percentile(%v) = %v, want %v", c.f, got, c.want)
		}
	}
	if v[0] != 5 {
		t.Error("Percentile sorted its argument")
	}
}

func TestSummarizeReference(t *testing.T) {
	exs := []Example{{Group: "a"}, {Group: "b"}}
	scores := []Score{
		{Tokens: 2, NLL: 2, Reference: &Divergence{NLL: 1, KLD: []float64{0.1, 0.3}, SameTop: 2}},
		{Tokens: 2, NLL: 4, Reference: &Divergence{NLL: 3, KLD: []float64{0.0, 0.2}, SameTop: 1}},
	}
	m, err := Summarize(Info{By: "g", Reference: "//m:f16"}, exs, scores, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"perplexity": math.Exp(6.0 / 4), "reference_perplexity": math.Exp(4.0 / 4),
		"delta_perplexity": math.Exp(6.0/4) - math.Exp(1), "kld_mean": 0.15, "kld_p99": 0.3 - 0.01*0.1*3,
		"top1_agreement": 0.75,
	}
	for k, w := range want {
		if got := m.Metrics[k]; math.Abs(got-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
	if g := m.Groups["b"].Metrics; math.Abs(g["kld_mean"]-0.1) > 1e-12 || g["top1_agreement"] != 0.5 {
		t.Errorf("group b = %v", g)
	}
	if m.Reference != "//m:f16" {
		t.Errorf("reference = %q", m.Reference)
	}
	// A score without its comparison is an error, not a mean over fewer tokens.
	scores[1].Reference = nil
	if _, err := Summarize(Info{Reference: "//m:f16"}, exs, scores, nil); err == nil {
		t.Error("a missing comparison was accepted")
	}
}
