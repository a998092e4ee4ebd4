// Package report writes one self-contained HTML page from a build record:
// the graph of the build, a timeline of what ran, artifact sizes and spend.
// Everything is inline (CSS, SVG, a little JS): the page opens without a
// network.
package report

import (
	"sort"

	"github.com/cogumi/cogumi/engine"
)

// layout places the actions of a build in layers, top to bottom by
// dependency: a target's layer is the length of the longest chain of
// dependencies below it (longest-path layering), and within a layer nodes
// are ordered by the mean position of their neighbours in the layer above,
// then below (barycentric ordering, a few sweeps), which removes most edge
// crossings of the graphs builds have. This is the core of Sugiyama's
// layered drawing without dummy nodes: long edges cross layers as straight
// lines.
type layout struct {
	layer []int     // of each action
	pos   []float64 // order within its layer
	rows  [][]int   // actions of each layer, in order
}

func layoutGraph(acts []engine.ActionRecord) layout {
	idx := make(map[string]int, len(acts))
	for i, a := range acts {
		idx[a.Label] = i
	}
	deps := make([][]int, len(acts))
	rdeps := make([][]int, len(acts))
	for i, a := range acts {
		for _, d := range a.Deps {
			if j, ok := idx[d]; ok {
				deps[i] = append(deps[i], j)
				rdeps[j] = append(rdeps[j], i)
			}
		}
	}
	l := layout{layer: make([]int, len(acts)), pos: make([]float64, len(acts))}
	// The record lists a target after its dependencies.
	for i := range acts {
		for _, j := range deps[i] {
			if j < i && l.layer[j]+1 > l.layer[i] {
				l.layer[i] = l.layer[j] + 1
			}
		}
		for len(l.rows) <= l.layer[i] {
			l.rows = append(l.rows, nil)
		}
		l.rows[l.layer[i]] = append(l.rows[l.layer[i]], i)
	}
	place := func(row []int) {
		for k, n := range row {
			l.pos[n] = float64(k)
		}
	}
	for _, row := range l.rows {
		place(row)
	}
	sweep := func(row []int, nb [][]int) {
		bary := make(map[int]float64, len(row))
		for _, n := range row {
			if len(nb[n]) == 0 {
				bary[n] = l.pos[n]
				continue
			}
			var s float64
			for _, m := range nb[n] {
				s += l.pos[m]
			}
			bary[n] = s / float64(len(nb[n]))
		}
		sort.SliceStable(row, func(a, b int) bool { return bary[row[a]] < bary[row[b]] })
		place(row)
	}
	for range 4 {
		for k := 1; k < len(l.rows); k++ {
			sweep(l.rows[k], deps)
		}
		for k := len(l.rows) - 2; k >= 0; k-- {
			sweep(l.rows[k], rdeps)
		}
	}
	return l
}

// criticalPath returns the chain of actions that decided when the build
// ended: from the action that ended last, back through the dependency that
// ended last, to a target with none.
func criticalPath(acts []engine.ActionRecord) map[int]bool {
	idx := make(map[string]int, len(acts))
	last := -1
	for i, a := range acts {
		idx[a.Label] = i
		if a.Ran() && (last < 0 || a.End.After(acts[last].End)) {
			last = i
		}
	}
	on := make(map[int]bool)
	for n := last; n >= 0; {
		on[n] = true
		next := -1
		for _, d := range acts[n].Deps {
			j, ok := idx[d]
			if ok && acts[j].Ran() && (next < 0 || acts[j].End.After(acts[next].End)) {
				next = j
			}
		}
		n = next
	}
	return on
}

// lanes assigns the actions that ran to rows of a timeline: one row per
// GPU for those that held GPUs, and as few rows as overlap needs for the
// rest (first free lane). It returns each action's lane and the lane
// names.
func lanes(acts []engine.ActionRecord) (map[int]int, []string) {
	var ran []int
	for i, a := range acts {
		if a.Ran() {
			ran = append(ran, i)
		}
	}
	sort.SliceStable(ran, func(a, b int) bool { return acts[ran[a]].Start.Before(acts[ran[b]].Start) })
	lane := make(map[int]int, len(ran))
	var names []string
	gpuLane := make(map[string]int)
	var free []int // per CPU lane, index into names
	var ends []int // action last placed in each CPU lane
	for _, n := range ran {
		a := acts[n]
		if len(a.GPUs) > 0 {
			g := a.GPUs[0]
			k, ok := gpuLane[g]
			if !ok {
				k = len(names)
				names = append(names, "GPU "+g)
				gpuLane[g] = k
			}
			lane[n] = k
			continue
		}
		placed := false
		for c, k := range free {
			if !acts[ends[c]].End.After(a.Start) {
				lane[n], ends[c], placed = k, n, true
				break
			}
		}
		if !placed {
			name := "local"
			if a.Executor != "" && a.Executor != "local" {
				name = a.Executor
			}
			free = append(free, len(names))
			ends = append(ends, n)
			lane[n] = len(names)
			names = append(names, name)
		}
	}
	return lane, names
}
