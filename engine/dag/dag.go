// Package dag holds the graph algorithms on the engine's hot path: ordering
// and cycle detection in time linear in nodes plus edges. (dominikbraun/graph
// is kept for export and small graphs; its TopologicalSort is quadratic.)
package dag

// Graph is a directed graph over the nodes 0..n-1. An edge from a to b means
// a depends on b: b comes first in Order.
type Graph struct {
	deps [][]int32
}

// New returns a graph of n nodes and no edges.
func New(n int) *Graph { return &Graph{deps: make([][]int32, n)} }

// Len is the number of nodes.
func (g *Graph) Len() int { return len(g.deps) }

// AddEdge records that from depends on to.
func (g *Graph) AddEdge(from, to int) { g.deps[from] = append(g.deps[from], int32(to)) }

// Deps returns the nodes that n depends on, in the order they were added.
func (g *Graph) Deps(n int) []int32 { return g.deps[n] }

// Order returns every node, each after all its dependencies. When the graph
// has a cycle, Order returns nil and one cycle as a path whose first and last
// node are the same.
func (g *Graph) Order() (order []int, cycle []int) {
	const (
		unseen = iota
		onStack
		done
	)
	state := make([]uint8, len(g.deps))
	order = make([]int, 0, len(g.deps))
	var stack []frame
	for root := range g.deps {
		if state[root] != unseen {
			continue
		}
		stack = append(stack[:0], frame{node: root})
		state[root] = onStack
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(g.deps[top.node]) {
				state[top.node] = done
				order = append(order, top.node)
				stack = stack[:len(stack)-1]
				continue
			}
			d := int(g.deps[top.node][top.next])
			top.next++
			switch state[d] {
			case unseen:
				state[d] = onStack
				stack = append(stack, frame{node: d})
			case onStack:
				return nil, cyclePath(stack, d)
			}
		}
	}
	return order, nil
}

// frame is one node on the depth-first search stack of Order.
type frame struct {
	node int
	next int // index of the next dependency to visit
}

func cyclePath(stack []frame, back int) []int {
	start := 0
	for i, f := range stack {
		if f.node == back {
			start = i
		}
	}
	path := make([]int, 0, len(stack)-start+1)
	for _, f := range stack[start:] {
		path = append(path, f.node)
	}
	return append(path, back)
}

// Reachable marks every node reachable from roots through dependency edges,
// roots included.
func (g *Graph) Reachable(roots []int) []bool {
	seen := make([]bool, len(g.deps))
	work := make([]int, 0, len(roots))
	for _, r := range roots {
		if !seen[r] {
			seen[r] = true
			work = append(work, r)
		}
	}
	for len(work) > 0 {
		n := work[len(work)-1]
		work = work[:len(work)-1]
		for _, d := range g.deps[n] {
			if !seen[d] {
				seen[d] = true
				work = append(work, int(d))
			}
		}
	}
	return seen
}

// Reverse returns the graph with every edge turned around: an edge from a
// to b in the result means b depends on a.
func (g *Graph) Reverse() *Graph {
	r := New(len(g.deps))
	for from, ds := range g.deps {
		for _, to := range ds {
			r.deps[to] = append(r.deps[to], int32(from))
		}
	}
	return r
}
