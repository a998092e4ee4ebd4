package quant

import (
	"slices"
	"testing"
)

// TestIQGridNeighbours rebuilds neighbour lists the way iq2xs_init_impl and
// iq3xs_init_impl do (sort every point by (distance, index), keep the
// points at the nwant smallest distances) for a sample of the off-grid
// vectors of every grid and compares them with newIQGrid's.
func TestIQGridNeighbours(t *testing.T) {
	grids := []struct {
		name  string
		g     *iqGrid
		nwant int
	}{
		{"IQ2_XXS", gridIQ2XXS(), 2}, {"IQ2_XS", gridIQ2XS(), 2}, {"IQ2_S", gridIQ2S(), 1},
		{"IQ3_XXS", gridIQ3XXS(), 2}, {"IQ3_S", gridIQ3S(), 3},
	}
	for _, tc := range grids {
		g := tc.g
		npoints := len(g.lv) / g.n
		mask := uint32(1)<<g.bits - 1
		lists := 0
		for u, code := range g.kmap {
			if code >= 0 {
				if levels := packLevels(g, int(code)); levels != uint32(u) {
					t.Fatalf("%s: kmap[%#x] is point %d, whose levels pack to %#x", tc.name, u, code, levels)
				}
				continue
			}
			if code == offGrid || u%5 != 0 {
				continue
			}
			lists++
			type cand struct{ d2, j int }
			cands := make([]cand, npoints)
			for j := range npoints {
				d := 0
				for i := range g.n {
					a := 2*int(g.lv[g.n*j+i]) + 1
					b := 2*int(uint32(u)>>(g.bits*uint(i))&mask) + 1
					d += (a - b) * (a - b)
				}
				cands[j] = cand{d, j}
			}
			slices.SortFunc(cands, func(x, y cand) int {
				if x.d2 != y.d2 {
					return x.d2 - y.d2
				}
				return x.j - y.j
			})
			var want []uint16
			d2, nhave := cands[0].d2, 1
			for _, c := range cands {
				if c.d2 > d2 {
					if nhave == tc.nwant {
						break
					}
					d2, nhave = c.d2, nhave+1
				}
				want = append(want, uint16(c.j))
			}
			nb := g.neighbours[-code-1:]
			if got := nb[1 : 1+int(nb[0])]; !slices.Equal(got, want) {
				t.Fatalf("%s: neighbours of %#x: %v, want %v", tc.name, u, got, want)
			}
		}
		if lists == 0 {
			t.Fatalf("%s: no neighbour list checked", tc.name)
		}
	}
}

// packLevels packs grid point j's levels as the map's index.
func packLevels(g *iqGrid, j int) uint32 {
	var u uint32
	for i, l := range g.lv[g.n*j : g.n*j+g.n] {
		u |= uint32(l) << (g.bits * uint(i))
	}
	return u
}
