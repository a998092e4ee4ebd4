package rowexpr

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func deferred(t *testing.T, src string, vars map[string]cty.Value) *Expr {
	t.Helper()
	x, diags := hclsyntax.ParseExpression([]byte(src), "t", hhcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if !References(x) {
		t.Fatalf("%s does not reference row", src)
	}
	e, err := FromValue("where", Encode(src, vars, nil))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBool(t *testing.T) {
	e := deferred(t, `row.score >= var.min && length(row.tags) > 0 && row.meta.ok`, map[string]cty.Value{"min": cty.NumberIntVal(7)})
	for _, c := range []struct {
		row     string
		want    bool
		wantErr string
	}{
		{`{"score": 7, "tags": ["a"], "meta": {"ok": true}}`, true, ""},
		{`{"score": 6.99999999999999999, "tags": ["a"], "meta": {"ok": true}}`, false, ""},
		{`{"score": 9, "tags": [], "meta": {"ok": true}}`, false, ""},
		{`{"tags": ["a"], "meta": {"ok": true}}`, false, `"score"`},
		{`{"score": "high", "tags": ["a"], "meta": {"ok": true}}`, false, "number"},
	} {
		got, err := e.Bool(decode(t, c.row))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want %q", c.row, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %v, %v; want %v", c.row, got, err, c.want)
		}
	}
	// float64 rows (json.Unmarshal without UseNumber) work too.
	var m map[string]any
	_ = json.Unmarshal([]byte(`{"score": 8, "tags": ["x"], "meta": {"ok": true}}`), &m)
	if got, err := e.Bool(m); err != nil || !got {
		t.Errorf("float64 row: %v, %v", got, err)
	}
}

func TestNotABool(t *testing.T) {
	e := deferred(t, `row.domain`, nil)
	if _, err := e.Bool(map[string]any{"domain": "coding"}); err == nil || !strings.Contains(err.Error(), "want true or false") {
		t.Errorf("err = %v", err)
	}
	if _, err := e.Bool(map[string]any{"domain": nil}); err == nil || !strings.Contains(err.Error(), "null") {
		t.Errorf("null: err = %v", err)
	}
}

func TestTemplateConstant(t *testing.T) {
	e, err := FromValue("prompt", cty.StringVal("Q (%{ if row.difficulty == \"hard\" }step by step%{ else }briefly%{ endif }): ${row.q}"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.String(map[string]any{"difficulty": "hard", "q": "2+2?"})
	if err != nil || got != "Q (step by step): 2+2?" {
		t.Errorf("got %q, %v", got, err)
	}
	plain, _ := FromValue("prompt", cty.StringVal("no placeholders, 100% literal"))
	if got, err := plain.String(nil); err != nil || got != "no placeholders, 100% literal" {
		t.Errorf("plain: %q, %v", got, err)
	}
	if _, err := FromValue("prompt", cty.StringVal("broken ${row.")); err == nil {
		t.Error("a broken template was accepted")
	}
	// A constant bool is a constant condition.
	always, _ := FromValue("where", cty.True)
	if ok, err := always.Bool(nil); err != nil || !ok {
		t.Errorf("constant: %v %v", ok, err)
	}
}

func TestConcurrent(t *testing.T) {
	e := deferred(t, `format("%s-%d", row.d, row.i)`, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				want := strings.Repeat("x", i) + "-" + strconv.Itoa(j)
				got, err := e.String(map[string]any{"d": strings.Repeat("x", i), "i": float64(j)})
				if err != nil || got != want {
					t.Errorf("got %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Only the fields an expression reads are converted, but expressions that
// read the row as a whole still see all of it.
func TestFieldsRead(t *testing.T) {
	row := map[string]any{"a": 1.0, "b": "x", "big": []any{1.0, 2.0, 3.0}}
	for src, want := range map[string]bool{
		`row.a == 1 && row["b"] == "x"`: true,
		`length(keys(row)) == 3`:        true,
		`contains(keys(row), "big")`:    true,
		`row.a == 2`:                    false,
	} {
		e := deferred(t, src, nil)
		if got, err := e.Bool(row); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", src, got, err, want)
		}
	}
	if got := fieldsRead(deferred(t, `row.a + row.a > row["b"]`, nil).expr); len(got) != 2 {
		t.Errorf("fields of row.a, row.a, row[\"b\"] = %v", got)
	}
	if got := fieldsRead(deferred(t, `length(row) > 0`, nil).expr); got != nil {
		t.Errorf("fields of length(row) = %v, want nil (the whole row)", got)
	}
}
