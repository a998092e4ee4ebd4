package hcl

import (
	"sort"
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/target"
)

// localDefs are the local values of one scope (cogumi.hcl or one BUILD.hcl).
type localDefs struct {
	attrs map[string]*hclsyntax.Attribute
	pos   map[string]target.Pos
}

// collectLocals gathers the attributes of every locals block in blocks. A
// name may be defined once per scope, and a package may not redefine a
// workspace local (outerPos): one name, one meaning, wherever it is read.
func collectLocals(blocks []*hclsyntax.Block, outerPos map[string]target.Pos) (localDefs, Diagnostics) {
	defs := localDefs{attrs: make(map[string]*hclsyntax.Attribute), pos: make(map[string]target.Pos)}
	var ds Diagnostics
	for _, b := range blocks {
		if len(b.Labels) > 0 {
			ds = append(ds, diagAt(b.LabelRanges[0], "a locals block takes no label"))
		}
		for _, blk := range b.Body.Blocks {
			ds = append(ds, diagAt(blk.TypeRange, "unexpected block %q in locals (write name = value)", blk.Type))
		}
		for _, a := range sortedAttrs(b.Body) {
			pos := posOf(a.NameRange)
			if first, dup := defs.pos[a.Name]; dup {
				ds = append(ds, diagAt(a.NameRange, "local %q already defined at %s", a.Name, first))
				continue
			}
			if first, dup := outerPos[a.Name]; dup {
				ds = append(ds, diagAt(a.NameRange, "local %q already defined at %s (workspace locals are visible in every package)", a.Name, first))
				continue
			}
			defs.attrs[a.Name] = a
			defs.pos[a.Name] = pos
		}
	}
	return defs, ds
}

// localsEval evaluates one scope's locals, each after the locals it reads.
type localsEval struct {
	defs   localDefs
	outer  map[string]cty.Value // locals of the enclosing scope
	parent *hhcl.EvalContext    // functions and var
	// outerKnown is false when the enclosing scope failed to load: a name
	// missing from outer is then an echo of that failure, not a new error.
	outerKnown bool
	state      map[string]uint8
	values     map[string]cty.Value
	failed     map[string]bool
	stack      []string
	diags      Diagnostics
}

const (
	unvisited uint8 = iota
	visiting
	visited
)

// evalLocals returns the values of defs. A local that cannot be evaluated
// (an error, a cycle, a failed dependency) gets an unknown value, so that
// what reads it fails quietly instead of repeating the first error.
func evalLocals(defs localDefs, outer map[string]cty.Value, outerKnown bool, parent *hhcl.EvalContext) (map[string]cty.Value, bool, Diagnostics) {
	e := &localsEval{
		defs: defs, outer: outer, parent: parent, outerKnown: outerKnown,
		state:  make(map[string]uint8, len(defs.attrs)),
		values: make(map[string]cty.Value, len(defs.attrs)),
		failed: make(map[string]bool),
	}
	names := make([]string, 0, len(defs.attrs))
	for n := range defs.attrs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return defs.attrs[names[i]].SrcRange.Start.Byte < defs.attrs[names[j]].SrcRange.Start.Byte
	})
	for _, n := range names {
		if e.state[n] == unvisited {
			e.visit(n)
		}
	}
	return e.values, len(e.failed) > 0, e.diags
}

func (e *localsEval) visit(name string) {
	e.state[name] = visiting
	e.stack = append(e.stack, name)
	a := e.defs.attrs[name]
	ok, unknownRef := true, false
	scope := make(map[string]cty.Value, len(e.outer))
	for k, v := range e.outer {
		scope[k] = v
	}
	for _, tr := range a.Expr.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			continue
		}
		dep, named := rowexpr.TraverseName(tr[1])
		if !named {
			continue
		}
		if _, local := e.defs.attrs[dep]; !local {
			if _, found := e.outer[dep]; !found {
				ok, unknownRef = false, true
			}
			continue
		}
		switch e.state[dep] {
		case unvisited:
			e.visit(dep)
		case visiting:
			e.reportCycle(dep)
			ok = false
			scope[dep] = cty.DynamicVal
			continue
		}
		if e.failed[dep] {
			ok = false
		}
		scope[dep] = e.values[dep]
	}
	ctx := e.parent.NewChild()
	ctx.Variables = map[string]cty.Value{"local": objectOf(scope)}
	v := cty.DynamicVal
	if ok {
		var ds Diagnostics
		v, ds = evalExpr(a.Expr, ctx)
		e.diags = append(e.diags, ds...)
		ok = len(ds) == 0
	} else if unknownRef && e.outerKnown {
		e.diags = append(e.diags, unknownNames(a.Expr, ctx)...)
	}
	if !ok {
		e.failed[name] = true
		v = cty.DynamicVal
	}
	e.values[name] = v
	e.state[name] = visited
	e.stack = e.stack[:len(e.stack)-1]
}

// reportCycle reports the cycle that closes at dep, which is on the stack,
// at the first local of the cycle.
func (e *localsEval) reportCycle(dep string) {
	start := 0
	for i, n := range e.stack {
		if n == dep {
			start = i
		}
	}
	path := make([]string, 0, len(e.stack)-start+1)
	for _, n := range e.stack[start:] {
		path = append(path, "local."+n)
		e.failed[n] = true
	}
	path = append(path, "local."+dep)
	d := diagAt(e.defs.attrs[dep].NameRange, "local value cycle: %s", strings.Join(path, " -> "))
	e.diags = append(e.diags, d)
}
