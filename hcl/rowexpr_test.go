package hcl

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/data/rowexpr"
)

func TestRowExpressions(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		"cogumi.hcl": `workspace {
  name = "w"
}
variable "min" {
  default = 7
}
`,
		"BUILD.hcl": `locals {
  domains = ["coding", "math"]
}
typed "t" {
  where  = row.score >= var.min && contains(local.domains, row.domain)
  prompt = file("q.tmpl")
}
typed "inline" {
  prompt = "Write a ${row.difficulty} question"
}
`,
		"q.tmpl": "About ${row.domain}, ${upper(row.difficulty)}.",
	})
	for _, cached := range []bool{false, true, true} {
		opts := Options{Rules: registry(t)}
		if cached {
			opts.CacheFile = filepath.Join(root, "cogumi-out", "load-cache")
		}
		ws := mustLoad(t, root, opts)
		tg := find(t, ws, "//:t")
		if !rowexpr.IsDeferred(tg.Attrs["where"]) {
			t.Fatalf("where = %#v, want a deferred expression", tg.Attrs["where"])
		}
		where, err := rowexpr.FromTarget(tg, "where")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			row  map[string]any
			want bool
		}{
			{map[string]any{"score": 8.0, "domain": "coding"}, true},
			{map[string]any{"score": 6.0, "domain": "coding"}, false},
			{map[string]any{"score": 9.0, "domain": "poetry"}, false},
		} {
			if got, err := where.Bool(c.row); err != nil || got != c.want {
				t.Errorf("cached=%v: where(%v) = %v, %v; want %v", cached, c.row, got, err, c.want)
			}
		}
		if _, err := where.Bool(map[string]any{"domain": "coding"}); err == nil || !strings.Contains(err.Error(), "score") {
			t.Errorf("a row without score: err = %v, want one naming score", err)
		}
		prompt, err := rowexpr.FromTarget(tg, "prompt")
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]any{"domain": "math", "difficulty": "hard"}
		if got, err := prompt.String(row); err != nil || got != "About math, HARD." {
			t.Errorf("prompt = %q, %v", got, err)
		}
		inline, err := rowexpr.FromTarget(find(t, ws, "//:inline"), "prompt")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := inline.String(row); err != nil || got != "Write a hard question" {
			t.Errorf("inline prompt = %q, %v", got, err)
		}
	}
}

// The key sees the expression and the variables it reads: another var.min
// is another value.
func TestRowExpressionCapturesVariables(t *testing.T) {
	files := map[string]string{
		"cogumi.hcl": "workspace {\n  name = \"w\"\n}\nvariable \"min\" {\n  default = 7\n}\nvariable \"unused\" {\n  default = 1\n}\n",
		"BUILD.hcl":  "typed \"t\" {\n  where = row.score >= var.min\n}\n",
	}
	root := writeWorkspace(t, files)
	a := find(t, mustLoad(t, root, Options{Rules: registry(t)}), "//:t").Attrs["where"]
	b := find(t, mustLoad(t, root, Options{Rules: registry(t), Vars: map[string]string{"min": "8"}}), "//:t").Attrs["where"]
	c := find(t, mustLoad(t, root, Options{Rules: registry(t), Vars: map[string]string{"unused": "2"}}), "//:t").Attrs["where"]
	if a.RawEquals(b) {
		t.Error("changing var.min did not change the stored expression")
	}
	if !a.RawEquals(c) {
		t.Error("changing a variable the expression does not read changed it")
	}
}

func TestRowExpressionErrors(t *testing.T) {
	for name, c := range map[string]struct{ attr, want string }{
		"file":        {`where = file("x") == row.a`, "function file() cannot be used in an expression over rows"},
		"unknown var": {`where = row.a > var.nope`, `unknown variable "nope"`},
		"other name":  {`where = rows.a > 1 || row.b`, `unknown name "rows"`},
		"bad fn":      {`where = nosuch(row.a)`, "function nosuch() cannot be used"},
		"type":        {`where = [row.a]`, `attribute "where": expected bool, got tuple`},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeWorkspace(t, map[string]string{"BUILD.hcl": "typed \"t\" {\n  " + c.attr + "\n}\n"})
			_, err := Load(root, Options{Rules: registry(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "BUILD.hcl:2:") {
				t.Errorf("err = %v, want a position on line 2", err)
			}
		})
	}
}

// A template read from a file is checked when the configuration loads.
func TestRowTemplateErrors(t *testing.T) {
	for name, c := range map[string]struct{ tmpl, want string }{
		"js literal": {"const s = `${name}`;\nAnswer about ${row.domain}.", `template line 1: ${name...} reads "name"`},
		"broken":     {"Answer ${row.", "a literal ${ is written $${"},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeWorkspace(t, map[string]string{
				"BUILD.hcl": "typed \"t\" {\n  prompt = file(\"p.tmpl\")\n}\n",
				"p.tmpl":    c.tmpl,
			})
			_, err := Load(root, Options{Rules: registry(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "BUILD.hcl:2:") {
				t.Fatalf("err = %v, want %q at BUILD.hcl:2", err, c.want)
			}
		})
	}
	// $${ is a literal.
	root := writeWorkspace(t, map[string]string{
		"BUILD.hcl": "typed \"t\" {\n  prompt = file(\"p.tmpl\")\n}\n",
		"p.tmpl":    "const s = `$${name}`; about ${row.domain}",
	})
	e, err := rowexpr.FromTarget(find(t, mustLoad(t, root, Options{Rules: registry(t)}), "//:t"), "prompt")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.String(map[string]any{"domain": "coding"}); err != nil || got != "const s = `${name}`; about coding" {
		t.Errorf("got %q, %v", got, err)
	}
}
