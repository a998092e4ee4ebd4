// Package rowexpr evaluates HCL expressions over the rows of a JSONL
// dataset at build time: `where = row.score >= 7`, a prompt template
// "Write a ${row.difficulty} question about ${row.domain}".
//
// The loader cannot evaluate such an attribute (row is only known while an
// action runs), so it keeps the expression's source text together with the
// values of every var.x and local.y it references (Encode). That value is
// what the action key hashes: editing the expression, or a variable it
// reads, changes the key; moving it to another line does not. At execution
// a rule turns the attribute back into an Expr (FromTarget) and evaluates it
// per row with go-cty's standard functions (Functions).
package rowexpr

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cogumi/cogumi/engine/target"
)

// The attributes of a deferred expression's encoded value. The marker's
// name cannot be written in HCL as an object key by accident.
const (
	markerAttr = "__rowexpr"
	varAttr    = "var"
	localAttr  = "local"
)

// Encode returns the value the loader stores for an attribute whose
// expression src references row: src plus the var.x and local.y values it
// reads (objects holding only those).
func Encode(src string, vars, locals map[string]cty.Value) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		markerAttr: cty.StringVal(src),
		varAttr:    objectOf(vars),
		localAttr:  objectOf(locals),
	})
}

// IsDeferred reports whether v is an encoded row expression.
func IsDeferred(v cty.Value) bool {
	return v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() && v.Type().HasAttribute(markerAttr)
}

// References reports whether expr reads row, the name row expressions use.
func References(expr hhcl.Expression) bool {
	for _, tr := range expr.Variables() {
		if tr.RootName() == "row" {
			return true
		}
	}
	return false
}

// Expr is one attribute's expression over a row, ready to evaluate. It is
// safe for concurrent use.
type Expr struct {
	attr string
	src  string
	expr hhcl.Expression // nil: a constant
	// constant is the attribute's plain value; a string constant is
	// rendered as a template (tmpl), as a prompt read with file() is.
	constant cty.Value
	tmpl     hhcl.Expression
	vars     map[string]cty.Value
	funcs    map[string]function.Function // read-only after FromValue
	// fields are the row's fields the expression reads (row.x, row["x"]);
	// only they are converted for each row. nil: it reads the whole row.
	fields []string
}

// FromTarget returns the row expression of attribute attr of t, nil when
// the attribute is unset.
func FromTarget(t *target.Target, attr string) (*Expr, error) {
	v, ok := t.Attrs[attr]
	if !ok || v.IsNull() {
		return nil, nil
	}
	e, err := FromValue(attr, v)
	if err != nil {
		return nil, fmt.Errorf("%s: attribute %q: %w", t.AttrPos[attr], attr, err)
	}
	return e, nil
}

// FromValue returns the row expression of an attribute's stored value: an
// encoded expression, or a plain value (a string is a template).
func FromValue(attr string, v cty.Value) (*Expr, error) {
	e := &Expr{attr: attr, vars: map[string]cty.Value{}, funcs: Functions()}
	if !IsDeferred(v) {
		e.constant = v
		if v.Type() == cty.String && v.IsKnown() {
			s := v.AsString()
			e.src = s
			if strings.Contains(s, "${") || strings.Contains(s, "%{") {
				tmpl, diags := hclsyntax.ParseTemplate([]byte(s), attr, hhcl.InitialPos)
				if diags.HasErrors() {
					return nil, fmt.Errorf("template: %s (a literal ${ is written $${, a literal %%{ is written %%%%{)", diagText(diags))
				}
				for _, tr := range tmpl.Variables() {
					if tr.RootName() != "row" {
						r := tr.SourceRange()
						return nil, fmt.Errorf("template line %d: ${%s...} reads %q; a template over rows reads only row.<field> (a literal ${ is written $${)",
							r.Start.Line, tr.RootName(), tr.RootName())
					}
				}
				e.tmpl = tmpl
				e.fields = fieldsRead(tmpl)
			}
		}
		return e, nil
	}
	e.src = v.GetAttr(markerAttr).AsString()
	x, diags := hclsyntax.ParseExpression([]byte(e.src), attr, hhcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("expression %q: %s", e.src, diagText(diags))
	}
	e.expr = x
	e.fields = fieldsRead(x)
	e.vars[varAttr] = v.GetAttr(varAttr)
	e.vars[localAttr] = v.GetAttr(localAttr)
	return e, nil
}

// Source is the expression's text (or the template's), for messages.
func (e *Expr) Source() string { return e.src }

// Value evaluates the expression for row (a JSON object as decoded by
// encoding/json, numbers as float64 or json.Number).
func (e *Expr) Value(row map[string]any) (cty.Value, error) {
	x := e.expr
	if x == nil {
		x = e.tmpl
	}
	if x == nil {
		return e.constant, nil
	}
	rv, err := e.rowValue(row)
	if err != nil {
		return cty.NilVal, err
	}
	vars := map[string]cty.Value{"row": rv}
	for k, v := range e.vars {
		vars[k] = v
	}
	v, diags := x.Value(&hhcl.EvalContext{Variables: vars, Functions: e.funcs})
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s = %s: %s", e.attr, oneLine(e.src), diagText(diags))
	}
	return v, nil
}

// Bool evaluates a condition; null or a non-bool is an error.
func (e *Expr) Bool(row map[string]any) (bool, error) {
	v, err := e.Value(row)
	if err != nil {
		return false, err
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil || b.IsNull() || !b.IsKnown() {
		return false, fmt.Errorf("%s = %s: want true or false, got %s", e.attr, oneLine(e.src), describe(v))
	}
	return b.True(), nil
}

// String evaluates a string (a template renders with row).
func (e *Expr) String(row map[string]any) (string, error) {
	v, err := e.Value(row)
	if err != nil {
		return "", err
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		return "", fmt.Errorf("%s = %s: want a string, got %s", e.attr, oneLine(e.src), describe(v))
	}
	return s.AsString(), nil
}

// rowValue converts the fields of row the expression reads (a field the
// row lacks stays absent, so the expression's error names it).
func (e *Expr) rowValue(row map[string]any) (cty.Value, error) {
	if e.fields == nil {
		return RowValue(row)
	}
	attrs := make(map[string]cty.Value, len(e.fields))
	for _, f := range e.fields {
		x, ok := row[f]
		if !ok {
			continue
		}
		v, err := jsonValue(x)
		if err != nil {
			return cty.NilVal, err
		}
		attrs[f] = v
	}
	return cty.ObjectVal(attrs), nil
}

// fieldsRead returns the row fields x reads, or nil when it reads row as
// a whole (row itself, or row[expr]) and every field must be converted.
func fieldsRead(x hhcl.Expression) []string {
	seen := map[string]bool{}
	var fields []string
	for _, tr := range x.Variables() {
		if tr.RootName() != "row" {
			continue
		}
		if len(tr) < 2 {
			return nil
		}
		name, ok := TraverseName(tr[1])
		if !ok {
			return nil
		}
		if !seen[name] {
			seen[name] = true
			fields = append(fields, name)
		}
	}
	if fields == nil {
		return []string{} // reads no field: nothing to convert
	}
	return fields
}

// TraverseName returns the attribute name of a traversal step: .name or
// ["name"] (the loader uses it for var.x and local.y too).
func TraverseName(step hhcl.Traverser) (string, bool) {
	switch s := step.(type) {
	case hhcl.TraverseAttr:
		return s.Name, true
	case hhcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString(), true
		}
	}
	return "", false
}

// RowValue converts a decoded JSON object to the cty value row stands for.
func RowValue(row map[string]any) (cty.Value, error) {
	return jsonValue(row)
}

func jsonValue(x any) (cty.Value, error) {
	switch v := x.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType), nil
	case bool:
		return cty.BoolVal(v), nil
	case string:
		return cty.StringVal(v), nil
	case float64:
		return cty.NumberFloatVal(v), nil
	case json.Number:
		f, _, err := big.ParseFloat(string(v), 10, 512, big.ToNearestEven)
		if err != nil {
			return cty.NilVal, fmt.Errorf("number %s: %w", v, err)
		}
		return cty.NumberVal(f), nil
	case []any:
		if len(v) == 0 {
			return cty.EmptyTupleVal, nil
		}
		vals := make([]cty.Value, len(v))
		for i, e := range v {
			ev, err := jsonValue(e)
			if err != nil {
				return cty.NilVal, err
			}
			vals[i] = ev
		}
		return cty.TupleVal(vals), nil
	case map[string]any:
		attrs := make(map[string]cty.Value, len(v))
		for k, e := range v {
			ev, err := jsonValue(e)
			if err != nil {
				return cty.NilVal, err
			}
			attrs[k] = ev
		}
		return cty.ObjectVal(attrs), nil
	}
	return cty.NilVal, fmt.Errorf("unsupported JSON value of type %T", x)
}

// Check validates an expression the loader is about to defer: it may only
// read row, var.x and local.y, and call the standard functions (file() and
// glob() read the workspace, which an action does not see).
func Check(expr hhcl.Expression) hhcl.Diagnostics {
	var diags hhcl.Diagnostics
	for _, tr := range expr.Variables() {
		switch tr.RootName() {
		case "row", varAttr, localAttr:
		default:
			r := tr.SourceRange()
			diags = append(diags, &hhcl.Diagnostic{
				Severity: hhcl.DiagError, Subject: &r,
				Summary: fmt.Sprintf("unknown name %q: an expression over rows may read row, var and local", tr.RootName()),
			})
		}
	}
	fns := Functions()
	if syn, ok := expr.(hclsyntax.Expression); ok {
		_ = hclsyntax.VisitAll(syn, func(n hclsyntax.Node) hhcl.Diagnostics {
			call, ok := n.(*hclsyntax.FunctionCallExpr)
			if !ok {
				return nil
			}
			if _, known := fns[call.Name]; !known {
				r := call.NameRange
				msg := fmt.Sprintf("function %s() cannot be used in an expression over rows", call.Name)
				if call.Name == "file" || call.Name == "glob" {
					msg += " (it reads the workspace when the configuration loads; compute it in a local and use local.x)"
				}
				diags = append(diags, &hhcl.Diagnostic{Severity: hhcl.DiagError, Subject: &r, Summary: msg})
			}
			return nil
		})
	}
	return diags
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

func diagText(diags hhcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity != hhcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		parts = append(parts, msg)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func describe(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case !v.IsKnown():
		return "an unknown value"
	}
	return v.Type().FriendlyName()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
