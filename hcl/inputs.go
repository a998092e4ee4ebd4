package hcl

import (
	"fmt"
	"strings"
	"unicode"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

// sourceInputs records the inputs of a list of files and labels
// (srcs = ["a.txt", ":other", "//data:raw"]), in the order written.
func (p *pkgLoader) sourceInputs(t *target.Target, a *hclsyntax.Attribute, v cty.Value) {
	ranges := elemRanges(a, v.LengthInt())
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		r := ranges[i]
		if e.IsNull() {
			p.errorf(r, "attribute %q: element %d is null", a.Name, i)
			continue
		}
		s := e.AsString()
		if label.IsLabel(s) {
			l, err := label.Parse(s, p.pkg)
			if err != nil {
				p.errorf(r, "attribute %q: %v", a.Name, err)
				continue
			}
			t.Inputs = append(t.Inputs, target.Input{Attr: a.Name, Label: l, Pos: posOf(r)})
			continue
		}
		if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			p.errorf(r, "source file %q: $SRCS cannot hold paths with white space; rename the file", s)
			continue
		}
		ws, err := p.pkgPath(s)
		if err == nil {
			err = p.statSource(ws, s)
		}
		if err != nil {
			p.errorf(r, "%v", err)
			continue
		}
		t.Inputs = append(t.Inputs, target.Input{Attr: a.Name, File: ws, Pos: posOf(r)})
	}
}

// labelInput records the input of an attribute holding one label.
func (p *pkgLoader) labelInput(t *target.Target, a *hclsyntax.Attribute, v cty.Value) {
	if v.Type() != cty.String {
		return // the schema made it something else: not ours to read
	}
	if l, ok := p.parseLabel(a.Name, v.AsString(), a.Expr.Range()); ok {
		t.Inputs = append(t.Inputs, target.Input{Attr: a.Name, Label: l, Pos: posOf(a.Expr.Range())})
	}
}

// labelMapInputs records the inputs of a map of labels, in key order (a
// map has no other order once evaluated).
func (p *pkgLoader) labelMapInputs(t *target.Target, a *hclsyntax.Attribute, v cty.Value) {
	if !v.CanIterateElements() {
		return
	}
	ranges := keyRanges(a)
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if k.Type() != cty.String || e.Type() != cty.String {
			continue
		}
		key := k.AsString()
		r, ok := ranges[key]
		if !ok {
			r = a.Expr.Range()
		}
		if e.IsNull() {
			p.errorf(r, "attribute %q: %q is null", a.Name, key)
			continue
		}
		if l, ok := p.parseLabel(a.Name, e.AsString(), r); ok {
			t.Inputs = append(t.Inputs, target.Input{Attr: a.Name, Key: key, Label: l, Pos: posOf(r)})
		}
	}
}

func (p *pkgLoader) parseLabel(attr, s string, r hhcl.Range) (label.Label, bool) {
	if !label.IsLabel(s) {
		p.errorf(r, "attribute %q: %q is not a label (write \":name\" for a target of this package, \"//pkg:name\" for another)", attr, s)
		return label.Label{}, false
	}
	l, err := label.Parse(s, p.pkg)
	if err != nil {
		p.errorf(r, "attribute %q: %v", attr, err)
		return label.Label{}, false
	}
	return l, true
}

// elemRanges returns where each of the n elements was written when the
// attribute is a list literal, so a message can point at the bad element;
// otherwise (concat(), glob(), a local) every element is at the attribute.
func elemRanges(a *hclsyntax.Attribute, n int) []hhcl.Range {
	out := make([]hhcl.Range, n)
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && len(tup.Exprs) == n {
		for i, e := range tup.Exprs {
			out[i] = e.Range()
		}
		return out
	}
	for i := range out {
		out[i] = a.Expr.Range()
	}
	return out
}

// keyRanges maps each key of an object literal to where its value was
// written.
func keyRanges(a *hclsyntax.Attribute) map[string]hhcl.Range {
	obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil
	}
	out := make(map[string]hhcl.Range, len(obj.Items))
	for _, item := range obj.Items {
		k, ds := item.KeyExpr.Value(nil)
		if !ds.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
			out[k.AsString()] = item.ValueExpr.Range()
		}
	}
	return out
}

// missingTarget explains a label that names no target.
func missingTarget(l label.Label, r *pkgResult) string {
	if r == nil {
		if l.Pkg == "" {
			return fmt.Sprintf("no target %s: there is no root package (no %s at the workspace root)", l, BuildFile)
		}
		return fmt.Sprintf("no target %s: no package %s (no %s/%s in the workspace)", l, l.Pkg, l.Pkg, BuildFile)
	}
	if len(r.names) == 0 {
		return fmt.Sprintf("no target %s (%s has no targets)", l, pkgName(l.Pkg))
	}
	names := r.names
	more := ""
	if len(names) > 20 {
		names, more = names[:20], fmt.Sprintf(" and %d more", len(r.names)-20)
	}
	return fmt.Sprintf("no target %s (%s has targets: %s%s)%s", l, pkgName(l.Pkg), strings.Join(names, ", "), more, suggest(l.Name, r.names))
}

// labelKeyMapInputs records the inputs of a map whose keys are labels
// (max_bytes = { ":final" = "890MB" }), in key order. Each input keeps the
// key as written, so the rule finds its artifact under "attr.key".
func (p *pkgLoader) labelKeyMapInputs(t *target.Target, a *hclsyntax.Attribute, v cty.Value) {
	if !v.CanIterateElements() {
		return
	}
	ranges := make(map[string]hhcl.Range)
	if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			k, ds := item.KeyExpr.Value(nil)
			if !ds.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
				ranges[k.AsString()] = item.KeyExpr.Range()
			}
		}
	}
	for it := v.ElementIterator(); it.Next(); {
		k, _ := it.Element()
		if k.Type() != cty.String {
			continue
		}
		key := k.AsString()
		r, ok := ranges[key]
		if !ok {
			r = a.Expr.Range()
		}
		if l, ok := p.parseLabel(a.Name, key, r); ok {
			t.Inputs = append(t.Inputs, target.Input{Attr: a.Name, Key: key, Label: l, Pos: posOf(r)})
		}
	}
}
