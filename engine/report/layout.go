// Package report writes one self-contained HTML page from a build record:
// the graph of the build, a timeline of what ran, artifact sizes and spend.
// Everything is inline (CSS, SVG, a little JS): the page opens without a
// network.
package report

import (
	"fmt"
	"sort"
	"strings"

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

// Lane groups, in the order the timeline shows them.
const (
	laneLocal = iota
	laneGPU
	laneSlurm
	laneRemote
)

// timelineLane is one row of the timeline.
type timelineLane struct {
	group int
	order int    // within its group
	name  string // as drawn
	title string // on hover: what the name shortens
}

// lanes assigns the actions that ran to rows of a timeline, named by where
// they ran: "local N" by the job slot an action held on this machine (two
// that overlapped held different slots); "GPU <UUID prefix>", one row per
// GPU, an action on each GPU it held; "slurm <job id>" for a cluster job;
// "remote <executor>" for an executor that reports no job. Records
// without slots (older ones), and remote actions, are spread over as few
// rows as their overlaps need (first free row). It returns the lanes of
// each action and the lanes, in order.
func lanes(acts []engine.ActionRecord) (map[int][]int, []timelineLane) {
	var ran []int
	for i, a := range acts {
		if a.Ran() {
			ran = append(ran, i)
		}
	}
	sort.SliceStable(ran, func(a, b int) bool { return acts[ran[a]].Start.Before(acts[ran[b]].Start) })
	var all []timelineLane
	byKey := make(map[string]int)
	laneOf := func(key string, l timelineLane) int {
		k, ok := byKey[key]
		if !ok {
			k = len(all)
			byKey[key] = k
			all = append(all, l)
		}
		return k
	}
	// Rows filled first-free, per group name: the last action on each.
	rows := make(map[string][]int)
	firstFree := func(prefix string, group, n int) int {
		for r, last := range rows[prefix] {
			if !acts[last].End.After(acts[n].Start) {
				rows[prefix][r] = n
				return byKey[fmt.Sprintf("%s %d", prefix, r+1)]
			}
		}
		rows[prefix] = append(rows[prefix], n)
		r := len(rows[prefix])
		name := fmt.Sprintf("%s %d", prefix, r)
		if group == laneRemote && r == 1 {
			name = prefix
		}
		return laneOf(fmt.Sprintf("%s %d", prefix, r), timelineLane{group: group, order: r, name: name})
	}
	out := make(map[int][]int, len(ran))
	for _, n := range ran {
		a := acts[n]
		remote := a.Executor != "" && a.Executor != "local"
		switch {
		case len(a.GPUs) > 0:
			for _, g := range a.GPUs {
				out[n] = append(out[n], laneOf("gpu "+g, timelineLane{group: laneGPU, order: len(all), name: "GPU " + gpuPrefix(g), title: g}))
			}
		case a.JobID != "":
			out[n] = append(out[n], laneOf("job "+a.JobID, timelineLane{group: laneSlurm, order: len(all), name: "slurm " + a.JobID,
				title: a.Executor + ", job " + a.JobID}))
		case remote:
			out[n] = append(out[n], firstFree("remote "+a.Executor, laneRemote, n))
		case a.Slot > 0:
			out[n] = append(out[n], laneOf(fmt.Sprintf("local %d", a.Slot), timelineLane{group: laneLocal, order: a.Slot,
				name: fmt.Sprintf("local %d", a.Slot), title: fmt.Sprintf("job slot %d of this machine", a.Slot)}))
		default:
			out[n] = append(out[n], firstFree("local", laneLocal, n))
		}
	}
	// Order the lanes, and renumber the actions' lanes to match.
	order := make([]int, len(all))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(a, b int) bool {
		la, lb := all[order[a]], all[order[b]]
		if la.group != lb.group {
			return la.group < lb.group
		}
		return la.order < lb.order
	})
	pos := make([]int, len(all))
	sorted := make([]timelineLane, len(all))
	for p, k := range order {
		pos[k] = p
		sorted[p] = all[k]
	}
	for n, ks := range out {
		for j, k := range ks {
			out[n][j] = pos[k]
		}
	}
	return out, sorted
}

// gpuPrefix shortens a GPU's UUID (GPU-8f2a3b4c-...) to its first eight
// hex digits, enough to tell a machine's GPUs apart.
func gpuPrefix(uuid string) string {
	u := strings.TrimPrefix(uuid, "GPU-")
	if len(u) > 8 {
		u = u[:8]
	}
	return u
}
