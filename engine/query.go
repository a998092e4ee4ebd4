package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/engine/label"
)

// Query evaluates a query expression over the target graph:
//
//	//pkg:name, //pkg/..., //...   the targets a pattern matches
//	deps(EXPR)                     EXPR and everything it depends on
//	rdeps(UNIVERSE, EXPR)          targets in UNIVERSE that depend on EXPR, and EXPR
//
// Relative labels resolve in pkg. The result is sorted.
func (e *Engine) Query(expr, pkg string) ([]label.Label, error) {
	p := &queryParser{s: strings.TrimSpace(expr), pkg: pkg, e: e}
	set, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	if p.s != "" {
		return nil, fmt.Errorf("query %q: unexpected %q", expr, p.s)
	}
	var out []label.Label
	for n, in := range set {
		if in {
			out = append(out, e.nodes[n].t.Label)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

type queryParser struct {
	s   string
	pkg string
	e   *Engine
}

func (p *queryParser) expr() ([]bool, error) {
	switch {
	case strings.HasPrefix(p.s, "deps("):
		p.s = p.s[len("deps("):]
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return p.e.graph.Reachable(members(x)), nil
	case strings.HasPrefix(p.s, "rdeps("):
		p.s = p.s[len("rdeps("):]
		universe, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		r := p.e.rdeps.Reachable(members(x))
		for n := range r {
			r[n] = r[n] && universe[n]
		}
		return r, nil
	}
	end := strings.IndexAny(p.s, ",) ")
	if end < 0 {
		end = len(p.s)
	}
	word := p.s[:end]
	p.s = strings.TrimSpace(p.s[end:])
	if word == "" {
		return nil, fmt.Errorf("expected a label or pattern")
	}
	pat, err := label.ParsePattern(word, p.pkg)
	if err != nil {
		return nil, err
	}
	set := make([]bool, len(p.e.nodes))
	found := false
	for i, nd := range p.e.nodes {
		if pat.Matches(nd.t.Label) {
			set[i], found = true, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%s matches no target", pat)
	}
	return set, nil
}

func (p *queryParser) expect(tok string) error {
	p.s = strings.TrimSpace(p.s)
	if !strings.HasPrefix(p.s, tok) {
		return fmt.Errorf("expected %q at %q", tok, p.s)
	}
	p.s = strings.TrimSpace(p.s[len(tok):])
	return nil
}

func members(set []bool) []int {
	var out []int
	for i, in := range set {
		if in {
			out = append(out, i)
		}
	}
	return out
}

// Edge is one dependency: From depends on To.
type Edge struct{ From, To label.Label }

// Subgraph returns the targets in the closure of roots and their edges,
// for export.
func (e *Engine) Subgraph(roots []label.Label) ([]label.Label, []Edge, error) {
	ids, err := e.closure(roots)
	if err != nil {
		return nil, nil, err
	}
	var nodes []label.Label
	var edges []Edge
	for _, n := range ids {
		from := e.nodes[n].t.Label
		nodes = append(nodes, from)
		for _, d := range e.graph.Deps(n) {
			edges = append(edges, Edge{From: from, To: e.nodes[d].t.Label})
		}
	}
	return nodes, edges, nil
}

// Kind returns the rule kind of a target.
func (e *Engine) Kind(l label.Label) string { return e.nodes[e.index[l]].t.Kind }
