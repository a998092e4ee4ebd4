package hcl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/data/rowexpr"
	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// evalExpr evaluates expr. A reference to an undeclared var.x or local.x
// gets a message naming what is declared, rather than HCL's "Unsupported
// attribute" on an object the user never wrote.
func evalExpr(expr hhcl.Expression, ctx *hhcl.EvalContext) (cty.Value, Diagnostics) {
	if v, ok := literalValue(expr); ok {
		return v, nil
	}
	v, hds := expr.Value(ctx)
	if !hds.HasErrors() {
		return v, nil
	}
	if ds := unknownNames(expr, ctx); len(ds) > 0 {
		return cty.DynamicVal, ds
	}
	return cty.DynamicVal, fromHCL(hds)
}

// literalValue returns the value of a literal ("a.txt", 3, ["a", "b"])
// without HCL's general evaluation, which allocates for every template: most
// attributes of a large workspace are literals. It gives exactly what
// expr.Value would.
func literalValue(expr hhcl.Expression) (cty.Value, bool) {
	switch e := expr.(type) {
	case *hclsyntax.LiteralValueExpr:
		return e.Val, true
	case *hclsyntax.TemplateExpr:
		if len(e.Parts) != 1 {
			return cty.NilVal, false
		}
		lit, ok := e.Parts[0].(*hclsyntax.LiteralValueExpr)
		if !ok || lit.Val.Type() != cty.String || lit.Val.IsNull() {
			return cty.NilVal, false
		}
		return lit.Val, true
	case *hclsyntax.TupleConsExpr:
		if len(e.Exprs) == 0 {
			return cty.EmptyTupleVal, true
		}
		vals := make([]cty.Value, len(e.Exprs))
		for i, x := range e.Exprs {
			v, ok := literalValue(x)
			if !ok {
				return cty.NilVal, false
			}
			vals[i] = v
		}
		return cty.TupleVal(vals), true
	}
	return cty.NilVal, false
}

// convertTo converts v to ty. A tuple of strings to a list of strings, the
// shape of every srcs and outs, skips the general conversion machinery.
func convertTo(v cty.Value, ty cty.Type) (cty.Value, error) {
	if v.Type().Equals(ty) {
		return v, nil
	}
	if ty.Equals(cty.List(cty.String)) && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
		return cty.ListVal([]cty.Value{v}), nil // from = "raw.jsonl": a list of one
	}
	if ty.Equals(cty.List(cty.String)) && v.Type().IsTupleType() && v.IsKnown() && !v.IsNull() {
		n := v.LengthInt()
		if n == 0 {
			return cty.ListValEmpty(cty.String), nil
		}
		elems := make([]cty.Value, 0, n)
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.Type() != cty.String || e.IsNull() || !e.IsKnown() || e.IsMarked() {
				return convert.Convert(v, ty)
			}
			elems = append(elems, e)
		}
		return cty.ListVal(elems), nil
	}
	return convert.Convert(v, ty)
}

// unknownNames reports references to var.x or local.x that ctx lacks.
func unknownNames(expr hhcl.Expression, ctx *hhcl.EvalContext) Diagnostics {
	var ds Diagnostics
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		what := map[string]string{"var": "variable", "local": "local"}[root]
		if what == "" || len(tr) < 2 {
			continue
		}
		name, ok := rowexpr.TraverseName(tr[1])
		if !ok {
			continue
		}
		obj := lookupVar(ctx, root)
		if !obj.IsKnown() || !obj.Type().IsObjectType() || obj.Type().HasAttribute(name) {
			continue // unknown: an earlier error, already reported
		}
		declared := make([]string, 0, len(obj.Type().AttributeTypes()))
		for n := range obj.Type().AttributeTypes() {
			declared = append(declared, n)
		}
		sort.Strings(declared)
		d := diagAt(tr.SourceRange(), "unknown %s %q", what, name)
		switch {
		case len(declared) == 0 && root == "var":
			d.Msg += " (cogumi.hcl declares no variables)"
		case len(declared) == 0:
			d.Msg += " (no locals are defined)"
		case root == "var":
			d.Msg += fmt.Sprintf(" (cogumi.hcl declares %s)", strings.Join(declared, ", "))
		default:
			d.Msg += fmt.Sprintf(" (defined: %s)", strings.Join(declared, ", "))
		}
		d.Msg += suggest(name, declared)
		ds = append(ds, d)
	}
	return ds
}

// lookupVar finds a variable of the context chain, as HCL does.
func lookupVar(ctx *hhcl.EvalContext, name string) cty.Value {
	for c := ctx; c != nil; c = c.Parent() {
		if v, ok := c.Variables[name]; ok {
			return v
		}
	}
	return cty.DynamicVal
}

// suggest returns `; did you mean "x"?` for the closest of names, when
// it is close enough to be a typo, or "".
func suggest(name string, names []string) string {
	best, bestDist := "", max(1, len(name)/3)+1
	for _, n := range names {
		if d := editDistance(name, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of adjacent bytes that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}

// checkAttrs reports attributes of body not in allowed, and any nested
// block, naming where they were found ("resources", "the workspace block").
func checkAttrs(body *hclsyntax.Body, where string, allowed ...string) Diagnostics {
	var ds Diagnostics
	for name, a := range body.Attributes {
		if !contains(allowed, name) {
			d := diagAt(a.NameRange, "unknown attribute %q in %s (accepted: %s)", name, where, strings.Join(allowed, ", "))
			d.Msg += suggest(name, allowed)
			ds = append(ds, d)
		}
	}
	for _, b := range body.Blocks {
		ds = append(ds, diagAt(b.TypeRange, "unexpected block %q in %s", b.Type, where))
	}
	return ds
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortedAttrs returns the attributes of body in source order: map order
// would make inputs and messages change from run to run.
func sortedAttrs(body *hclsyntax.Body) []*hclsyntax.Attribute {
	out := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SrcRange.Start.Byte < out[j].SrcRange.Start.Byte })
	return out
}

// evalString evaluates an attribute that must be a string.
func evalString(a *hclsyntax.Attribute, ctx *hhcl.EvalContext) (string, bool, Diagnostics) {
	v, ds := evalExpr(a.Expr, ctx)
	if len(ds) > 0 || !v.IsWhollyKnown() {
		return "", false, ds
	}
	if v.IsNull() || v.Type() != cty.String {
		return "", false, Diagnostics{diagAt(a.Expr.Range(), "attribute %q: expected string, got %s", a.Name, typeName(v))}
	}
	return v.AsString(), true, nil
}

// typeName names the type of v for "expected X, got Y" messages.
func typeName(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	return v.Type().FriendlyName()
}

// objectOf builds an object value from a map, keeping the empty case cheap.
func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}
