package rules

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/internal/teacher"
)

type mapMemo struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *mapMemo) Get(_ context.Context, k string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok, nil
}

func (m *mapMemo) Put(_ context.Context, k string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[k] = v
	return nil
}

func genTarget(t *testing.T, kind, name string, attrs map[string]cty.Value) *target.Target {
	t.Helper()
	l, err := label.Parse("//data:"+name, "")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target.Target{Label: l, Kind: kind, Attrs: attrs, AttrPos: map[string]target.Pos{}}
	for k := range attrs {
		tg.AttrPos[k] = target.Pos{File: "data/BUILD.hcl", Line: 3, Col: 3}
	}
	return tg
}

// runGen checks and executes a target and returns its rows and log.
func runGen(t *testing.T, rule Rule, tg *target.Target, memo Memo, inputs map[string]string) ([]map[string]any, string, error) {
	t.Helper()
	if errs := rule.Check(tg); len(errs) > 0 {
		t.Fatalf("check: %v", errs)
	}
	var log bytes.Buffer
	a := &Action{Target: tg, Dir: t.TempDir(), Out: t.TempDir(), Log: &log, Memo: memo, InputDirs: inputs}
	err := rule.Execute(context.Background(), a)
	if err != nil {
		return nil, log.String(), err
	}
	f, err := os.Open(filepath.Join(a.Out, tg.Label.Name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
	if _, err := os.Stat(filepath.Join(a.Out, "report.json")); err != nil {
		t.Fatal(err)
	}
	return rows, log.String(), nil
}

func strs(xs ...string) cty.Value {
	vs := make([]cty.Value, len(xs))
	for i, x := range xs {
		vs[i] = cty.StringVal(x)
	}
	return cty.TupleVal(vs)
}

func questionAttrs(url, prompt string, easy int) map[string]cty.Value {
	return map[string]cty.Value{
		"endpoint": cty.StringVal(url),
		"model":    cty.StringVal("teacher-large"),
		"prompt":   cty.StringVal(prompt),
		"for_each": cty.ObjectVal(map[string]cty.Value{"domain": strs("coding", "math", "tool_use"), "difficulty": strs("easy", "hard")}),
		"count":    cty.ObjectVal(map[string]cty.Value{"easy": cty.NumberIntVal(int64(easy)), "hard": cty.NumberIntVal(3)}),
		"params":   cty.ObjectVal(map[string]cty.Value{"temperature": cty.NumberFloatVal(0.9), "max_tokens": cty.NumberIntVal(256)}),
		"price":    cty.ObjectVal(map[string]cty.Value{"input_per_mtok": cty.NumberFloatVal(0.27), "output_per_mtok": cty.NumberFloatVal(1.1)}),
		"field":    cty.StringVal("question"),
	}
}

func TestGenerateReusesAnswers(t *testing.T) {
	srv := teacher.New(teacher.Options{})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	memo := &mapMemo{m: map[string][]byte{}}
	const tmpl = "Write one ${row.difficulty} ${row.domain} question."
	rows, log, err := runGen(t, Generate{}, genTarget(t, "generate", "questions", questionAttrs(hs.URL+"/v1", tmpl, 2)), memo, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if len(rows) != 15 || srv.Stats().Requests != 15 {
		t.Fatalf("%d rows, %d requests", len(rows), srv.Stats().Requests)
	}
	r := rows[0]
	if r["prompt_id"] != "questions/easy/coding/0" || r["domain"] != "coding" || r["difficulty"] != "easy" || r["index"] != 0.0 || r["model"] != "teacher-large" {
		t.Fatalf("first row %v", r)
	}
	if q, _ := r["question"].(string); !strings.Contains(q, "function") {
		t.Fatalf("an easy coding question: %q", q)
	}
	if !strings.Contains(log, "wrote 15 rows to questions.jsonl: 15 requests sent, 0 reused") {
		t.Fatalf("log:\n%s", log)
	}
	// Two more easy rows per domain: only those 6 are sent.
	rows2, log, err := runGen(t, Generate{}, genTarget(t, "generate", "questions", questionAttrs(hs.URL+"/v1", tmpl, 4)), memo, nil)
	if err != nil || len(rows2) != 21 || srv.Stats().Requests != 21 {
		t.Fatalf("%d rows, %d requests, %v\n%s", len(rows2), srv.Stats().Requests, err, log)
	}
	if rows2[0]["question"] != rows[0]["question"] {
		t.Fatal("a reused answer changed")
	}
	// Another template: everything is asked again.
	_, _, err = runGen(t, Generate{}, genTarget(t, "generate", "questions", questionAttrs(hs.URL+"/v1", "Please "+tmpl, 4)), memo, nil)
	if err != nil || srv.Stats().Requests != 42 || srv.Stats().Duplicates != 0 {
		t.Fatalf("%+v, %v", srv.Stats(), err)
	}
}

func TestJudgeFromRows(t *testing.T) {
	srv := teacher.New(teacher.Options{APIKey: "sk-test-judge"})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	dir := t.TempDir()
	in := `{"prompt_id":"q/coding/hard/0","difficulty":"hard","question":"Implement a trie."}
{"prompt_id":"q/coding/easy/0","difficulty":"easy","question":"Reverse a string."}
{"prompt_id":"q/math/hard/0","difficulty":"hard","question":"Prove it."}
`
	if err := os.WriteFile(filepath.Join(dir, "questions.jsonl"), []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]cty.Value{
		"endpoint":    cty.StringVal(hs.URL + "/v1"),
		"model":       cty.StringVal("judge-1"),
		"api_key_env": cty.StringVal("COGUMI_TEST_JUDGE_KEY"),
		"from":        cty.StringVal(":questions"),
		"where":       rowexpr.Encode(`row.difficulty == "hard"`, nil, nil),
		"prompt":      cty.StringVal("Score this question from 1 to 10: ${row.question}"),
	}
	tg := genTarget(t, "judge", "scored", attrs)
	memo := &mapMemo{m: map[string][]byte{}}
	if _, _, err := runGen(t, Judge{}, tg, memo, map[string]string{"from": dir}); err == nil || !strings.Contains(err.Error(), "COGUMI_TEST_JUDGE_KEY is not set") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("COGUMI_TEST_JUDGE_KEY", "sk-test-judge")
	rows, log, err := runGen(t, Judge{}, tg, memo, map[string]string{"from": dir})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if len(rows) != 2 || rows[0]["prompt_id"] != "q/coding/hard/0" || rows[1]["prompt_id"] != "q/math/hard/0" {
		t.Fatalf("rows %v", rows)
	}
	for _, r := range rows {
		if s, ok := r["score"].(float64); !ok || s < 1 || s > 10 {
			t.Fatalf("row %v", r)
		}
	}
	for k, v := range memo.m {
		if strings.Contains(k, "sk-test") || bytes.Contains(v, []byte("sk-test")) || strings.Contains(log, "sk-test") {
			t.Fatal("the API key was stored or logged")
		}
	}
}

func TestGenerateCheck(t *testing.T) {
	base := func() map[string]cty.Value { return questionAttrs("http://127.0.0.1:1/v1", "q ${row.domain}", 1) }
	for name, tc := range map[string]struct {
		edit func(map[string]cty.Value)
		want string
	}{
		"both": {func(m map[string]cty.Value) { m["from"] = cty.StringVal(":x") }, "give either from"},
		"count key": {func(m map[string]cty.Value) {
			m["count"] = cty.ObjectVal(map[string]cty.Value{"easy": cty.NumberIntVal(1)})
		}, `give exactly its values ["easy" "hard"]`},
		"stray key": {func(m map[string]cty.Value) {
			m["count"] = cty.ObjectVal(map[string]cty.Value{"medium": cty.NumberIntVal(1)})
		}, "not the values of any for_each dimension"},
		"seed": {func(m map[string]cty.Value) {
			m["params"] = cty.ObjectVal(map[string]cty.Value{"seed": cty.NumberIntVal(1)})
		}, "params.seed cannot be set"},
		"budget":   {func(m map[string]cty.Value) { m["max_cost"] = cty.NumberIntVal(5); delete(m, "params") }, "max_cost needs params.max_tokens"},
		"rate":     {func(m map[string]cty.Value) { m["rate_limit"] = cty.StringVal("600") }, "write requests per period"},
		"key":      {func(m map[string]cty.Value) { m["api_key_env"] = cty.StringVal("sk-abc-123") }, "not the key itself"},
		"endpoint": {func(m map[string]cty.Value) { m["endpoint"] = cty.StringVal("api.example.com") }, "give the API's base URL"},
		"field":    {func(m map[string]cty.Value) { m["field"] = cty.StringVal("domain") }, `field "domain" is also a for_each dimension`},
		"clear text": {func(m map[string]cty.Value) {
			m["endpoint"] = cty.StringVal("http://api.example.com/v1")
			m["api_key_env"] = cty.StringVal("API_KEY")
		}, "the API key would cross the network in clear text"},
	} {
		m := base()
		tc.edit(m)
		errs := Generate{}.Check(genTarget(t, "generate", "q", m))
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Msg)
		}
		if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
			t.Errorf("%s: errors %q, want %q", name, msgs, tc.want)
		}
	}
	if errs := (Generate{}).Check(genTarget(t, "generate", "q", base())); len(errs) > 0 {
		t.Errorf("a good target: %v", errs)
	}
}

func TestParseScore(t *testing.T) {
	for in, want := range map[string]float64{
		"Clear.\nScore: 8": 8, "score 7.5": 7.5, "I give it 9/10.": 9, "6 out of 10": 6, "7": 7,
		"Step 1 ... Step 2 ...\nFinal score: 4": 4, "Score: 3\n...\nRevised score: 5": 5,
	} {
		if got, ok := ParseScore(in); !ok || got != want {
			t.Errorf("ParseScore(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "Excellent question.", "Steps 1 and 2 are fine"} {
		if got, ok := ParseScore(in); ok {
			t.Errorf("ParseScore(%q) = %v, want none", in, got)
		}
	}
}
