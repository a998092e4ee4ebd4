package hcl

import (
	"fmt"
	"math"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/internal/units"
	"github.com/cogumi/cogumi/rules"
)

// resourceAttrNames are the attributes of a resources block.
func resourceAttrNames() []string {
	return []string{"cpus", "memory", "gpus", "gpu_type", "gpu_memory", "time"}
}

// decodeTarget decodes one block kind "name" { ... } into a target.
func (p *pkgLoader) decodeTarget(b *hclsyntax.Block, seen map[string]target.Pos) {
	k, known := p.ws.kinds[b.Type]
	if !known {
		d := diagAt(b.TypeRange, "unknown target kind %q (known kinds: %s)", b.Type, strings.Join(p.ws.kindNames, ", "))
		d.Msg += suggest(b.Type, p.ws.kindNames)
		p.res.diags = append(p.res.diags, d)
		if len(b.Labels) == 1 {
			p.res.names = append(p.res.names, b.Labels[0]) // keep references to it quiet
		}
		return
	}
	if len(b.Labels) != 1 {
		p.errorf(b.TypeRange, "a target block takes one label, its name: %s \"name\" { ... }", b.Type)
		return
	}
	name := b.Labels[0]
	if err := label.CheckName(name); err != nil {
		p.errorf(b.LabelRanges[0], "%v", err)
		return
	}
	if first, dup := seen[name]; dup {
		p.errorf(b.LabelRanges[0], "target %q already defined at %s", name, first)
		return
	}
	seen[name] = posOf(b.TypeRange)
	p.res.names = append(p.res.names, name)
	t := &target.Target{
		Label:   label.Label{Pkg: p.pkg, Name: name},
		Kind:    b.Type,
		Attrs:   make(map[string]cty.Value, len(b.Body.Attributes)),
		Pos:     posOf(b.TypeRange),
		AttrPos: make(map[string]target.Pos, len(b.Body.Attributes)),
	}
	sound := true // every attribute evaluated to its type: Check may run
	for _, a := range sortedAttrs(b.Body) {
		if !p.decodeAttr(t, k, a) {
			sound = false
		}
	}
	resSeen := false
	for _, blk := range b.Body.Blocks {
		if _, isAttr := k.schema.Attr(blk.Type); isAttr && blk.Type != "resources" {
			if !p.decodeAttrBlock(t, k, b.Body, blk) {
				sound = false
			}
			continue
		}
		switch {
		case blk.Type != "resources" || !k.traits.Resources:
			p.errorf(blk.TypeRange, "unexpected block %q in a %s target", blk.Type, b.Type)
		case resSeen:
			p.errorf(blk.TypeRange, "duplicate resources block; the first is at %s", t.AttrPos["resources"])
		default:
			resSeen = true
			t.AttrPos["resources"] = posOf(blk.TypeRange)
			p.decodeResources(t, blk)
		}
	}
	for _, a := range k.schema.Attrs {
		if _, set := t.Attrs[a.Name]; a.Required && !set {
			if _, written := b.Body.Attributes[a.Name]; written && !sound {
				continue // written, but failed: already reported
			}
			p.errorf(b.TypeRange, "missing required attribute %q for a %s target", a.Name, b.Type)
			sound = false
		}
	}
	if sound {
		// Check may assume the schema holds, so it only sees targets whose
		// attributes all decoded (a missing source file does not matter).
		p.check(t, k.rule)
	}
	// A target with errors is still kept: its labels are resolved, so that
	// every error shows at once; Load returns no targets when any failed.
	p.res.targets = append(p.res.targets, t)
}

// decodeAttr evaluates one attribute, converts it to its declared type and
// records the inputs it names. It reports whether the value is sound (bad
// inputs aside).
func (p *pkgLoader) decodeAttr(t *target.Target, k kindInfo, a *hclsyntax.Attribute) bool {
	t.AttrPos[a.Name] = posOf(a.NameRange)
	if a.Name == "executor" && k.traits.Resources {
		s, ok, ds := evalString(a, p.ctx)
		p.res.diags = append(p.res.diags, ds...)
		t.Executor = s
		return ok
	}
	spec, ok := k.schema.Attr(a.Name)
	if !ok {
		accepted := k.attrs
		d := diagAt(a.NameRange, "unknown attribute %q for a %s target (accepted: %s)", a.Name, t.Kind, strings.Join(accepted, ", "))
		d.Msg += suggest(a.Name, accepted)
		p.res.diags = append(p.res.diags, d)
		return true // not part of the target: the others can still be checked
	}
	if spec.Row && rowexpr.References(a.Expr) {
		return p.decodeRowExpr(t, a, spec.Type)
	}
	v, ds := evalExpr(a.Expr, p.ctx)
	if len(ds) > 0 {
		p.res.diags = append(p.res.diags, ds...)
		return false
	}
	if !v.IsWhollyKnown() {
		if !p.tainted {
			p.errorf(a.Expr.Range(), "attribute %q: the value is not known", a.Name)
		}
		return false // else an echo of an error already reported
	}
	if v.IsNull() {
		return true // null means unset, as in Terraform
	}
	conv, err := convertTo(v, spec.Type)
	if err != nil {
		d := diagAt(a.Expr.Range(), "attribute %q: expected %s, got %s", a.Name, spec.Type.FriendlyName(), typeName(v))
		d.Detail = err.Error()
		p.res.diags = append(p.res.diags, d)
		return false
	}
	t.Attrs[a.Name] = conv
	if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok && spec.Ordered {
		var keys []cty.Value
		for _, item := range obj.Items {
			if k, ds := item.KeyExpr.Value(p.ctx); !ds.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			t.Attrs[rules.OrderOf(a.Name)] = cty.ListVal(keys)
		}
	}
	if spec.Row && conv.Type() == cty.String {
		// A template read with file() is checked now, not mid-build.
		if _, err := rowexpr.FromValue(a.Name, conv); err != nil {
			p.errorf(a.Expr.Range(), "attribute %q: %v", a.Name, err)
			return false
		}
	}
	switch spec.Input {
	case rules.SourcesInput:
		p.sourceInputs(t, a, conv)
	case rules.FileInput:
		if conv.Type() == cty.String {
			p.sourceInputs(t, a, cty.ListVal([]cty.Value{conv}))
		}
	case rules.LabelInput:
		p.labelInput(t, a, conv)
	case rules.LabelMapInput:
		p.labelMapInputs(t, a, conv)
	case rules.LabelKeyMapInput:
		p.labelKeyMapInputs(t, a, conv)
	}
	return true
}

// decodeAttrBlock decodes a block written for an object attribute,
//
//	where_metric {
//	  eval          = ":train_scores"
//	  perplexity_gt = 12.4
//	}
//
// exactly as the attribute where_metric = { eval = ..., perplexity_gt = ... }.
func (p *pkgLoader) decodeAttrBlock(t *target.Target, k kindInfo, body *hclsyntax.Body, blk *hclsyntax.Block) bool {
	if len(blk.Labels) > 0 {
		p.errorf(blk.LabelRanges[0], "a %s block takes no label", blk.Type)
		return false
	}
	if a, dup := body.Attributes[blk.Type]; dup {
		p.errorf(blk.TypeRange, "%s is set twice: as an attribute at %s and as a block", blk.Type, posOf(a.NameRange))
		return false
	}
	if first, dup := t.AttrPos[blk.Type]; dup {
		p.errorf(blk.TypeRange, "duplicate %s block; the first is at %s", blk.Type, first)
		return false
	}
	for _, inner := range blk.Body.Blocks {
		p.errorf(inner.TypeRange, "unexpected block %q in a %s block", inner.Type, blk.Type)
		return false
	}
	obj := &hclsyntax.ObjectConsExpr{SrcRange: blk.Body.SrcRange, OpenRange: blk.OpenBraceRange}
	for _, a := range sortedAttrs(blk.Body) {
		key := &hclsyntax.ScopeTraversalExpr{
			Traversal: hhcl.Traversal{hhcl.TraverseRoot{Name: a.Name, SrcRange: a.NameRange}},
			SrcRange:  a.NameRange,
		}
		obj.Items = append(obj.Items, hclsyntax.ObjectConsItem{
			KeyExpr:   &hclsyntax.ObjectConsKeyExpr{Wrapped: key},
			ValueExpr: a.Expr,
		})
	}
	attr := &hclsyntax.Attribute{Name: blk.Type, Expr: obj, SrcRange: blk.Range(), NameRange: blk.TypeRange}
	return p.decodeAttr(t, k, attr)
}

// decodeRowExpr keeps an expression over rows for build time: its source
// text and the var.x and local.y values it reads. It is evaluated once here
// with row unknown, so that typos and type errors show now, not mid-build.
func (p *pkgLoader) decodeRowExpr(t *target.Target, a *hclsyntax.Attribute, ty cty.Type) bool {
	if ds := fromHCL(rowexpr.Check(a.Expr)); len(ds) > 0 {
		p.res.diags = append(p.res.diags, ds...)
		return false
	}
	if ds := unknownNames(a.Expr, p.ctx); len(ds) > 0 {
		p.res.diags = append(p.res.diags, ds...)
		return false
	}
	child := p.ctx.NewChild()
	child.Variables = map[string]cty.Value{"row": cty.DynamicVal}
	v, hds := a.Expr.Value(child)
	if hds.HasErrors() {
		p.res.diags = append(p.res.diags, fromHCL(hds)...)
		return false
	}
	if v.Type() != cty.DynamicPseudoType && ty != cty.DynamicPseudoType {
		if _, err := convertTo(cty.UnknownVal(v.Type()), ty); err != nil {
			p.errorf(a.Expr.Range(), "attribute %q: expected %s, got %s", a.Name, ty.FriendlyName(), v.Type().FriendlyName())
			return false
		}
	}
	refs := map[string]map[string]cty.Value{"var": {}, "local": {}}
	for _, tr := range a.Expr.Variables() {
		root := tr.RootName()
		if refs[root] == nil || len(tr) < 2 {
			continue
		}
		if name, ok := rowexpr.TraverseName(tr[1]); ok {
			refs[root][name] = lookupVar(p.ctx, root).GetAttr(name)
		}
	}
	src := strings.TrimSpace(string(a.Expr.Range().SliceBytes(p.res.src)))
	t.Attrs[a.Name] = rowexpr.Encode(src, refs["var"], refs["local"])
	return true
}

// decodeResources reads resources { cpus, memory, gpus, gpu_type,
// gpu_memory, time }.
func (p *pkgLoader) decodeResources(t *target.Target, b *hclsyntax.Block) {
	names := resourceAttrNames()
	p.res.diags = append(p.res.diags, checkAttrs(b.Body, "resources", names...)...)
	r := &t.Resources
	for _, a := range sortedAttrs(b.Body) {
		if !contains(names, a.Name) {
			continue
		}
		t.AttrPos["resources."+a.Name] = posOf(a.NameRange)
		v, ds := evalExpr(a.Expr, p.ctx)
		if len(ds) > 0 {
			p.res.diags = append(p.res.diags, ds...)
			continue
		}
		if !v.IsWhollyKnown() || v.IsNull() {
			continue
		}
		if err := setResource(r, a.Name, v); err != nil {
			p.errorf(a.Expr.Range(), "resources: %s: %v", a.Name, err)
		}
	}
}

// setResource sets one field of r from v.
func setResource(r *target.Resources, name string, v cty.Value) error {
	switch name {
	case "cpus":
		f, err := number(v)
		if err != nil {
			return err
		}
		if f <= 0 {
			return fmt.Errorf("must be more than 0, got %g", f)
		}
		r.CPUs = f
	case "gpus":
		f, err := number(v)
		if err != nil {
			return err
		}
		if f < 0 || f != float64(int(f)) || f > 1<<16 {
			return fmt.Errorf("must be a whole number of devices, 0 or more, got %g", f)
		}
		r.GPUs = int(f)
	case "memory":
		if v.Type() == cty.Number {
			f, _ := v.AsBigFloat().Float64()
			if f < 0 || f >= 1<<62 {
				return fmt.Errorf("%g bytes is out of range", f)
			}
			r.Memory = int64(f)
			return nil
		}
		s, err := str(v)
		if err != nil {
			return err
		}
		if r.Memory, err = units.ParseBytes(s); err != nil {
			return err
		}
	case "gpu_memory":
		s, err := str(v)
		if err != nil {
			return err
		}
		if _, err := units.ParseBytes(s); err != nil {
			return err
		}
		r.GPUMemory = s
	case "gpu_type":
		s, err := str(v)
		if err != nil {
			return err
		}
		r.GPUType = s
	case "time":
		s, err := str(v)
		if err != nil {
			return err
		}
		if r.Time, err = units.ParseDuration(s); err != nil {
			return err
		}
	}
	return nil
}

func number(v cty.Value) (float64, error) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		return 0, fmt.Errorf("expected number, got %s", typeName(v))
	}
	f, _ := n.AsBigFloat().Float64()
	if math.IsInf(f, 0) {
		return 0, fmt.Errorf("number %s is out of range", n.AsBigFloat().String())
	}
	return f, nil
}

func str(v cty.Value) (string, error) {
	if v.Type() != cty.String {
		return "", fmt.Errorf("expected string, got %s", typeName(v))
	}
	return v.AsString(), nil
}
