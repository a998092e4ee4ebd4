package dag

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// build returns a graph of n nodes with the given edges, each {from, to}:
// from depends on to.
func build(n int, edges ...[2]int) *Graph {
	g := New(n)
	for _, e := range edges {
		g.AddEdge(e[0], e[1])
	}
	return g
}

// checkOrder fails unless order holds every node of g once, each after all
// its dependencies.
func checkOrder(t *testing.T, g *Graph, order []int) {
	t.Helper()
	if len(order) != g.Len() {
		t.Fatalf("order has %d nodes, want %d", len(order), g.Len())
	}
	pos := make([]int, g.Len())
	for i := range pos {
		pos[i] = -1
	}
	for i, n := range order {
		if pos[n] >= 0 {
			t.Fatalf("node %d appears twice in the order", n)
		}
		pos[n] = i
	}
	for n := range g.Len() {
		for _, d := range g.Deps(n) {
			if pos[d] > pos[n] {
				t.Fatalf("node %d comes before its dependency %d", n, d)
			}
		}
	}
}

// checkCycle fails unless cycle is a closed path of real edges of g.
func checkCycle(t *testing.T, g *Graph, cycle []int) {
	t.Helper()
	if len(cycle) < 2 {
		t.Fatalf("cycle %v is too short", cycle)
	}
	if cycle[0] != cycle[len(cycle)-1] {
		t.Fatalf("cycle %v does not end where it starts", cycle)
	}
	for i := 0; i+1 < len(cycle); i++ {
		if !slices.Contains(g.Deps(cycle[i]), int32(cycle[i+1])) {
			t.Fatalf("cycle %v: %d -> %d is not an edge", cycle, cycle[i], cycle[i+1])
		}
	}
	inner := slices.Clone(cycle[:len(cycle)-1])
	slices.Sort(inner)
	if len(slices.Compact(inner)) != len(cycle)-1 {
		t.Fatalf("cycle %v passes through a node twice", cycle)
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		edges [][2]int
	}{
		{"empty", 0, nil},
		{"one node", 1, nil},
		{"no edges", 4, nil},
		{"chain", 5, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}}},
		{"reverse chain", 5, [][2]int{{4, 3}, {3, 2}, {2, 1}, {1, 0}}},
		{"diamond", 4, [][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 3}}},
		{"fan-in", 6, [][2]int{{5, 0}, {5, 1}, {5, 2}, {5, 3}, {5, 4}}},
		{"fan-out", 6, [][2]int{{0, 5}, {1, 5}, {2, 5}, {3, 5}, {4, 5}}},
		{"duplicate edge", 2, [][2]int{{0, 1}, {0, 1}}},
		{"two components", 6, [][2]int{{0, 1}, {1, 2}, {5, 4}, {4, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := build(tt.n, tt.edges...)
			order, cycle := g.Order()
			if cycle != nil {
				t.Fatalf("Order found cycle %v in a DAG", cycle)
			}
			checkOrder(t, g, order)
		})
	}
}

func TestOrderRandomDAG(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		n := 1 + r.IntN(200)
		perm := r.Perm(n) // a hidden topological order, so edges never close a cycle
		g := New(n)
		for range r.IntN(4 * n) {
			a, b := r.IntN(n), r.IntN(n)
			if a == b {
				continue
			}
			if a < b {
				a, b = b, a
			}
			g.AddEdge(perm[a], perm[b])
		}
		order, cycle := g.Order()
		if cycle != nil {
			t.Fatalf("Order found cycle %v in a DAG", cycle)
		}
		checkOrder(t, g, order)
	}
}

func TestOrderCycle(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		edges [][2]int
		nodes []int // the nodes of the only cycle
	}{
		{"self-loop", 3, [][2]int{{0, 1}, {1, 1}}, []int{1}},
		{"self-loop of a root", 1, [][2]int{{0, 0}}, []int{0}},
		{"2-cycle", 2, [][2]int{{0, 1}, {1, 0}}, []int{0, 1}},
		{"2-cycle after a DAG part", 5, [][2]int{{0, 1}, {1, 2}, {3, 4}, {4, 3}}, []int{3, 4}},
		{
			// 0 is not on the cycle but reaches it; 1..6 loop back to 2.
			"long cycle reachable from a non-cycle node", 8,
			[][2]int{{0, 7}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 2}},
			[]int{2, 3, 4, 5, 6},
		},
		{
			"cycle behind a diamond", 6,
			[][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4}, {4, 5}, {5, 3}},
			[]int{3, 4, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := build(tt.n, tt.edges...)
			order, cycle := g.Order()
			if order != nil {
				t.Errorf("Order returned order %v with a cycle", order)
			}
			checkCycle(t, g, cycle)
			got := slices.Clone(cycle[:len(cycle)-1])
			slices.Sort(got)
			if !slices.Equal(got, tt.nodes) {
				t.Errorf("cycle %v, want one through %v", cycle, tt.nodes)
			}
		})
	}
}

func TestOrderLongCycle(t *testing.T) {
	// A 100,000-node ring reached from a tail: the search must not recurse.
	const n = 100_000
	g := New(n + 1)
	g.AddEdge(n, 0)
	for i := range n {
		g.AddEdge(i, (i+1)%n)
	}
	order, cycle := g.Order()
	if order != nil {
		t.Fatal("Order returned an order with a cycle")
	}
	checkCycle(t, g, cycle)
	if len(cycle) != n+1 {
		t.Errorf("cycle has %d nodes, want %d", len(cycle), n+1)
	}
}

func TestReachable(t *testing.T) {
	// 0 -> 1 -> 2, 0 -> 3, 4 -> 2, 5 alone, 6 <-> 7.
	g := build(8, [2]int{0, 1}, [2]int{1, 2}, [2]int{0, 3}, [2]int{4, 2}, [2]int{6, 7}, [2]int{7, 6})
	tests := []struct {
		roots []int
		want  []int
	}{
		{nil, nil},
		{[]int{0}, []int{0, 1, 2, 3}},
		{[]int{1}, []int{1, 2}},
		{[]int{2}, []int{2}},
		{[]int{4, 1}, []int{1, 2, 4}},
		{[]int{5}, []int{5}},
		{[]int{6}, []int{6, 7}}, // a cycle terminates
		{[]int{0, 0, 1}, []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		seen := g.Reachable(tt.roots)
		if len(seen) != g.Len() {
			t.Fatalf("Reachable(%v) has %d entries, want %d", tt.roots, len(seen), g.Len())
		}
		var got []int
		for n, ok := range seen {
			if ok {
				got = append(got, n)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Reachable(%v) = %v, want %v", tt.roots, got, tt.want)
		}
	}
}

func TestReverse(t *testing.T) {
	g := build(5, [2]int{0, 1}, [2]int{0, 2}, [2]int{1, 2}, [2]int{3, 2}, [2]int{4, 4})
	r := g.Reverse()
	want := [][]int32{
		0: nil,
		1: {0},
		2: {0, 1, 3},
		3: nil,
		4: {4},
	}
	if r.Len() != g.Len() {
		t.Fatalf("Reverse has %d nodes, want %d", r.Len(), g.Len())
	}
	for n := range r.Len() {
		if !slices.Equal(r.Deps(n), want[n]) {
			t.Errorf("Reverse().Deps(%d) = %v, want %v", n, r.Deps(n), want[n])
		}
	}
	// Reversing twice gives back every edge (order within a node may differ).
	rr := r.Reverse()
	for n := range g.Len() {
		a, b := slices.Clone(g.Deps(n)), slices.Clone(rr.Deps(n))
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Errorf("Reverse().Reverse().Deps(%d) = %v, want %v", n, b, a)
		}
	}
	// Reverse does not change g.
	if !slices.Equal(g.Deps(0), []int32{1, 2}) {
		t.Errorf("Reverse changed g: Deps(0) = %v", g.Deps(0))
	}
}

// synthetic returns a graph shaped like a large workspace: chains of 10 to
// 50 targets, each also depending on a few earlier targets, and every
// twentieth target a fan-in of 5 to 20 dependencies. Dependencies are drawn
// among earlier targets. With shuffle, node numbers are a random
// permutation of that declaration order, so that Order cannot rely on the
// numbering (and memory access is random: a worst case for caches).
func synthetic(n int, shuffle bool) *Graph {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	perm := r.Perm(n)
	if !shuffle {
		for i := range perm {
			perm[i] = i
		}
	}
	g := New(n)
	chainStart := 0
	chainLen := 10 + r.IntN(41)
	for i := 1; i < n; i++ {
		if i-chainStart >= chainLen {
			chainStart, chainLen = i, 10+r.IntN(41)
		} else {
			g.AddEdge(perm[i], perm[i-1])
		}
		deps := r.IntN(3)
		if i%20 == 0 {
			deps = 5 + r.IntN(16)
		}
		for range deps {
			g.AddEdge(perm[i], perm[r.IntN(i)])
		}
	}
	return g
}

// BenchmarkOrder100K orders synthetic graphs of 1,000 to 100,000 nodes,
// numbered in declaration order (as the engine numbers targets) and
// shuffled. ns/(node+edge) staying flat shows that Order is linear; the
// shuffled numbering pays for cache misses once the graph outgrows the
// caches.
func BenchmarkOrder100K(b *testing.B) {
	for _, shuffle := range []bool{false, true} {
		for _, n := range []int{1_000, 10_000, 100_000} {
			g := synthetic(n, shuffle)
			edges := 0
			for i := range n {
				edges += len(g.Deps(i))
			}
			numbering := "declared"
			if shuffle {
				numbering = "shuffled"
			}
			b.Run(fmt.Sprintf("%s/n=%d", numbering, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, cycle := g.Order(); cycle != nil {
						b.Fatalf("cycle %v", cycle)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+edges), "ns/(node+edge)")
			})
		}
	}
}

func BenchmarkReachable(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		g := synthetic(n, false)
		var roots []int // the nodes nothing depends on
		r := g.Reverse()
		for i := range n {
			if len(r.Deps(i)) == 0 {
				roots = append(roots, i)
			}
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				g.Reachable(roots)
			}
		})
	}
}

func BenchmarkReverse(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		g := synthetic(n, false)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Reverse()
			}
		})
	}
}
