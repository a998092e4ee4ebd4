package quant

import (
	"encoding/binary"
	"sync"
)

// The lattice i-quants (IQ2_XXS, IQ2_XS, IQ3_XXS, IQ3_S) code groups of
// eight or four weights as one point of a fixed grid, chosen from all the
// vectors of small levels. ggml's quantisers snap each group to the grid
// with three tables that iq2xs_init_impl and iq3xs_init_impl build at run
// time from the grid's list of points: the points themselves, a map from
// every vector of levels to its point (or to a list of nearest points when
// the vector is not on the grid) and those neighbour lists. iqGrid is that
// structure, built once per grid by the sync.OnceValue functions below and
// never written afterwards.

// iqGrid is one lattice's lookup tables.
type iqGrid struct {
	n    int     // levels per point: 8 (IQ2) or 4 (IQ3)
	bits uint    // bits per level in a packed vector: 2 or 3
	lv   []uint8 // point j's levels, at lv[n*j : n*j+n]
	// levels is the number of distinct levels in the grid's points.
	levels int
	// kmap maps a packed vector of levels (level i at bits*i) to its point
	// when >= 0, else to -(offset+1), the start of its neighbour list: a
	// count, then the points at the nwant smallest distances from it, in
	// ascending (distance, point) order, as ggml's qsort leaves them.
	// offGrid marks vectors no quantiser can produce (a level above the
	// largest it uses), for which ggml's lists are never read.
	kmap       []int32
	neighbours []uint16
	// nbLevels holds, for the grids of four levels, the levels of
	// neighbours[k] packed one a byte at nbLevels[k], so
	// that a neighbour search reads them without a second lookup.
	nbLevels []uint32
}

// offGrid is the kmap entry of a vector with no neighbour list.
const offGrid = int32(-1 << 31)

// newIQGrid builds the tables for points given as packed level vectors.
// maxLevel is the largest level a quantiser puts in a vector (2 for IQ2,
// 7 for IQ3); nwant is how many distinct distances a neighbour list spans.
func newIQGrid(points []uint16, n int, bits uint, maxLevel, nwant int) *iqGrid {
	g := &iqGrid{n: n, bits: bits, lv: make([]uint8, n*len(points))}
	// ggml measures distances between the points' coordinates 2l+1.
	pos := make([]int8, n*len(points))
	mask := uint16(1)<<bits - 1
	for j, p := range points {
		for i := range n {
			l := (p >> (bits * uint(i))) & mask
			g.lv[n*j+i] = uint8(l)
			pos[n*j+i] = int8(2*l + 1)
			g.levels = max(g.levels, int(l)+1)
		}
	}
	g.kmap = make([]int32, 1<<(bits*uint(n)))
	for i := range g.kmap {
		g.kmap[i] = offGrid
	}
	for j, p := range points {
		g.kmap[p] = int32(j)
	}
	d2 := make([]int32, len(points))
	vec := make([]int8, n)
	for u := range g.kmap {
		if g.kmap[u] >= 0 || !levelsAtMost(uint32(u), n, bits, maxLevel) {
			continue
		}
		for i := range n {
			vec[i] = int8(2*((uint32(u)>>(bits*uint(i)))&uint32(mask)) + 1)
		}
		for j := range points {
			var d int32
			for i, v := range vec {
				diff := int32(pos[n*j+i] - v)
				d += diff * diff
			}
			d2[j] = d
		}
		// The nwant smallest distinct distances, ascending.
		var nearest [3]int32
		nn := 0
		for _, d := range d2 {
			k := 0
			for k < nn && nearest[k] < d {
				k++
			}
			if k < nn && nearest[k] == d || k >= nwant {
				continue
			}
			copy(nearest[k+1:min(nn+1, nwant)], nearest[k:])
			nearest[k] = d
			nn = min(nn+1, nwant)
		}
		start := len(g.neighbours)
		g.kmap[u] = -int32(start + 1)
		g.neighbours = append(g.neighbours, 0)
		for _, want := range nearest[:nn] {
			for j, d := range d2 {
				if d == want {
					g.neighbours = append(g.neighbours, uint16(j))
				}
			}
		}
		g.neighbours[start] = uint16(len(g.neighbours) - start - 1)
	}
	if n == 4 {
		g.nbLevels = make([]uint32, len(g.neighbours))
		for k, p := range g.neighbours {
			// A count is read as a point too (never used): counts are
			// smaller than the number of points.
			g.nbLevels[k] = binary.LittleEndian.Uint32(g.lv[4*int(p):])
		}
	}
	return g
}

// levelsAtMost reports whether every level of the packed vector u is at
// most maxLevel.
func levelsAtMost(u uint32, n int, bits uint, maxLevel int) bool {
	mask := uint32(1)<<bits - 1
	for i := range n {
		if int((u>>(bits*uint(i)))&mask) > maxLevel {
			return false
		}
	}
	return true
}

// bestNeighbour is iq2_find_best_neighbour / iq3_find_best_neighbour: of
// the neighbours of the off-grid vector whose kmap entry is code, the point
// closest to xval at the given scale in the weighted squared distance. It
// writes the point's levels into L and returns its index, or false when no
// distance compared below FLT_MAX (NaN or infinite inputs), where ggml
// aborts.
//
// The reference computes, for every neighbour and position i, the term
// weight[i]*diff*diff with diff = scale*q - xval[i], and adds the terms in
// position order. A term depends only on the position and the level there,
// so for the 2-bit grids' long lists the terms are computed once per
// position and level, and each neighbour's distance adds the same float32
// values in the same order.
func (g *iqGrid) bestNeighbour(code int32, xval, weight []float32, scale float32, L []int8) (int, bool) {
	if code == offGrid {
		return 0, false
	}
	nb := g.neighbours[-code-1:]
	nb = nb[1 : 1+int(nb[0])]
	n := g.n
	var sq [8]float32 // scale*q for each level
	for l := range g.levels {
		sq[l] = float32(scale * float32(2*l+1))
	}
	bestD2 := float32(3.4028234663852886e38) // FLT_MAX
	best := -1
	if n == 8 {
		// Long lists (18 and 30 points on average): tabulate the terms.
		var terms [8][8]float32 // [position][level]
		for l := range g.levels {
			for i, x := range xval[:8] {
				diff := sq[l] - x
				terms[i][l] = float32(float32(weight[i]*diff) * diff)
			}
		}
		for _, p := range nb {
			lv := (*[8]uint8)(g.lv[8*int(p):])
			var d2 float32
			d2 += terms[0][lv[0]&7]
			d2 += terms[1][lv[1]&7]
			d2 += terms[2][lv[2]&7]
			d2 += terms[3][lv[3]&7]
			d2 += terms[4][lv[4]&7]
			d2 += terms[5][lv[5]&7]
			d2 += terms[6][lv[6]&7]
			d2 += terms[7][lv[7]&7]
			if d2 < bestD2 {
				bestD2, best = d2, int(p)
			}
		}
	} else {
		// Short lists (5 and 7 points): compute each term.
		x, w := (*[4]float32)(xval), (*[4]float32)(weight)
		for _, p := range nb {
			lv := (*[4]uint8)(g.lv[4*int(p):])
			var d2 float32
			for i, l := range lv {
				diff := sq[l&7] - x[i]
				d2 += float32(float32(w[i]*diff) * diff)
			}
			if d2 < bestD2 {
				bestD2, best = d2, int(p)
			}
		}
	}
	if best < 0 {
		return 0, false
	}
	for i, l := range g.lv[n*best : n*best+n] {
		L[i] = int8(l)
	}
	return best, true
}

// bestNeighbour4 is bestNeighbour for the grids of four 3-bit levels,
// written out: each neighbour's distance adds the same four terms, each
// computed as there, in position order.
func (g *iqGrid) bestNeighbour4(code int32, x, w *[4]float32, scale float32, L *[4]int8) (int, bool) {
	if code == offGrid {
		return 0, false
	}
	start := int(-code - 1)
	count := int(g.neighbours[start])
	nb := g.neighbours[start+1 : start+1+count]
	nbLv := g.nbLevels[start+1 : start+1+count]
	var sq [8]float32 // scale*q for each level
	for l := range sq {
		sq[l] = float32(scale * float32(2*l+1))
	}
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
	bestD2 := float32(3.4028234663852886e38) // FLT_MAX
	best := -1
	for k, q := range nbLv {
		var d2 float32
		d := sq[q&7] - x0
		d2 += float32(float32(w0*d) * d)
		d = sq[q>>8&7] - x1
		d2 += float32(float32(w1*d) * d)
		d = sq[q>>16&7] - x2
		d2 += float32(float32(w2*d) * d)
		d = sq[q>>24&7] - x3
		d2 += float32(float32(w3*d) * d)
		if d2 < bestD2 {
			bestD2, best = d2, k
		}
	}
	if best < 0 {
		return 0, false
	}
	q := nbLv[best]
	best = int(nb[best])
	L[0], L[1], L[2], L[3] = int8(q), int8(q>>8), int8(q>>16), int8(q>>24)
	return best, true
}

// The grids, built on first use. The neighbour lists span one distinct
// distance for IQ2_S, two for IQ2_XXS, IQ2_XS and IQ3_XXS and three for
// IQ3_S, as ggml's nwant.
var (
	gridIQ2XXS = sync.OnceValue(func() *iqGrid { k := kgrid2bit256(); return newIQGrid(k[:], 8, 2, 2, 2) })
	gridIQ2XS  = sync.OnceValue(func() *iqGrid { k := kgrid2bit512(); return newIQGrid(k[:], 8, 2, 2, 2) })
	gridIQ2S   = sync.OnceValue(func() *iqGrid { k := kgrid2bit1024(); return newIQGrid(k[:], 8, 2, 2, 1) })
	gridIQ3XXS = sync.OnceValue(func() *iqGrid { k := kgrid3bit256(); return newIQGrid(k[:], 4, 3, 7, 2) })
	gridIQ3S   = sync.OnceValue(func() *iqGrid { k := kgrid3bit512(); return newIQGrid(k[:], 4, 3, 7, 3) })
)

// gridValues expands packed points into the magnitudes the dequantisers
// multiply (the bytes of ggml's iq2xxs_grid, iq2xs_grid, iq3xxs_grid and
// iq3s_grid), levels mapped through lut.
func gridValues(points []uint16, n int, bits uint, lut []uint8) []uint8 {
	out := make([]uint8, n*len(points))
	mask := uint16(1)<<bits - 1
	for j, p := range points {
		for i := range n {
			out[n*j+i] = lut[(p>>(bits*uint(i)))&mask]
		}
	}
	return out
}

var (
	valuesIQ2XXS = sync.OnceValue(func() []uint8 { k := kgrid2bit256(); return gridValues(k[:], 8, 2, []uint8{8, 25, 43, 0}) })
	valuesIQ2XS  = sync.OnceValue(func() []uint8 { k := kgrid2bit512(); return gridValues(k[:], 8, 2, []uint8{8, 25, 43, 0}) })
	valuesIQ2S   = sync.OnceValue(func() []uint8 { k := kgrid2bit1024(); return gridValues(k[:], 8, 2, []uint8{8, 25, 43, 0}) })
	valuesIQ3XXS = sync.OnceValue(func() []uint8 {
		k := kgrid3bit256()
		return gridValues(k[:], 4, 3, []uint8{4, 12, 20, 28, 36, 44, 52, 62})
	})
	valuesIQ3S = sync.OnceValue(func() []uint8 {
		k := kgrid3bit512()
		return gridValues(k[:], 4, 3, []uint8{1, 3, 5, 7, 9, 11, 13, 15})
	})
)

// kvaluesIQ4NL are IQ4_NL's and IQ4_XS's sixteen non-linear levels.
func kvaluesIQ4NL() [16]int8 {
	return [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
}

// signOdd is ksigns_iq2xs[i]: the seven stored sign bits i with the eighth
// set so that the number of negative signs is even.
func signOdd(i uint8) uint8 {
	p := i ^ i>>4
	p ^= p >> 2
	p ^= p >> 1
	return i | (p&1)<<7
}
