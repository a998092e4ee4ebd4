package hcl

import (
	"sort"
	"strings"

	"github.com/cogumi/cogumi/engine/dag"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

// link sorts the targets of every package into ws, resolves every label
// input and orders the targets, dependencies first.
func link(ws *Workspace, results []pkgResult) Diagnostics {
	byPkg := make(map[string]*pkgResult, len(results))
	n := 0
	for i := range results {
		r := &results[i]
		byPkg[r.pkg] = r
		sort.Strings(r.names)
		n += len(r.targets)
	}
	targets := make([]*target.Target, 0, n)
	keys := make([]string, 0, n)
	for i := range results {
		for _, t := range results[i].targets {
			targets = append(targets, t)
			keys = append(keys, t.Label.String())
		}
	}
	sort.Sort(byKey{targets, keys})
	index := make(map[label.Label]int, len(targets))
	for i, t := range targets {
		index[t.Label] = i
	}

	var diags Diagnostics
	g := dag.New(len(targets))
	for i, t := range targets {
		for _, in := range t.Inputs {
			if in.IsFile() {
				continue
			}
			l := in.Label.Target()
			if _, ok := index[l]; ok {
				continue
			}
			r := byPkg[l.Pkg]
			if r != nil && (r.broken || contains(r.names, l.Name)) {
				continue // the package or target has errors of its own
			}
			diags = append(diags, Diagnostic{Pos: in.Pos, Msg: missingTarget(l, r)})
		}
		for _, d := range t.Deps() {
			if j, ok := index[d]; ok {
				g.AddEdge(i, j)
			}
		}
	}
	order, cycle := g.Order()
	if cycle != nil {
		diags = append(diags, cycleDiag(targets, cycle))
	}
	ws.Targets, ws.Index, ws.Order, ws.Graph = targets, index, order, g
	return diags
}

// cycleDiag reports a dependency cycle as its whole path, starting (and
// positioned) at its first target in label order, so the message does not
// depend on where the search happened to start.
func cycleDiag(targets []*target.Target, cycle []int) Diagnostic {
	nodes := cycle[:len(cycle)-1]
	first := 0
	for i, n := range nodes {
		if n < nodes[first] {
			first = i
		}
	}
	parts := make([]string, 0, len(cycle))
	for i := range nodes {
		parts = append(parts, targets[nodes[(first+i)%len(nodes)]].Label.String())
	}
	parts = append(parts, parts[0])
	t := targets[nodes[first]]
	return Diagnostic{Pos: t.Pos, Msg: "dependency cycle: " + strings.Join(parts, " -> ")}
}

// byKey sorts targets by their label strings.
type byKey struct {
	targets []*target.Target
	keys    []string
}

func (b byKey) Len() int           { return len(b.targets) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.targets[i], b.targets[j] = b.targets[j], b.targets[i]
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
}
