package chunker

import (
	"errors"
	"io"
	"slices"
	"sync"
)

// regionSize is the length of the pieces Parallel cuts speculatively.
const regionSize = 64 << 20

// errStop ends a Split early (not an error).
var errStop = errors.New("stop")

// Parallel returns the chunks Split would give for the same input, in
// order, computed by several workers: the input is divided at the structure
// cuts (where chunking starts afresh anyway) and every regionSize bytes in
// between; each region is chunked from its start, speculatively where it
// starts at no cut. A cut depends only on the bytes since the chunk's start,
// so once the true chain of chunks, arriving from the previous region,
// reaches a speculative chunk's start, the rest of the region's chunks are
// the true ones; until then the true chain is extended sequentially
// (typically for a chunk or two). visit is called, from several goroutines
// at once, with every chunk cut and its bytes (valid only during the call),
// including a few speculative ones that end up not being in the result;
// final says the chunk is known to be in the result (it was cut from a
// structure cut or from the true chain).
func Parallel(r io.ReaderAt, size int64, p Params, cuts []int64, workers int, visit func(c Chunk, data []byte, final bool)) ([]Chunk, error) {
	return parallel(r, size, p, cuts, workers, regionSize, visit)
}

type region struct {
	start, end int64 // the chunks that start in [start, end)
	hardEnd    int64 // the next structure cut (or the end of the input)
	hard       bool  // start is a structure cut or 0: no speculation
	chunks     []Chunk
	err        error
}

func parallel(r io.ReaderAt, size int64, p Params, cuts []int64, workers int, span int64, visit func(Chunk, []byte, bool)) ([]Chunk, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var regions []*region
	hard := append([]int64{0}, cuts...)
	hard = append(hard, size)
	for i := 0; i+1 < len(hard); i++ {
		a, b := hard[i], hard[i+1]
		if a >= b || a < 0 || b > size {
			continue
		}
		for s := a; s < b; s += span {
			regions = append(regions, &region{start: s, end: min(s+span, b), hardEnd: b, hard: s == a})
		}
	}
	// Chunk every region from its start, workers at a time.
	jobs := make(chan *region)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			var buf []byte
			for g := range jobs {
				if buf == nil {
					buf = make([]byte, 2*p.Max)
				}
				g.err = splitFrom(r, p, g.start, g.hardEnd, g.end, 2*int64(p.Max), buf, g.hard, visit, &g.chunks)
			}
		})
	}
	for _, g := range regions {
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	// Stitch: the true chain enters each region at pos.
	var out []Chunk
	var buf []byte // the true chain's, reused
	pos := int64(0)
	for _, g := range regions {
		if g.err != nil {
			return nil, g.err
		}
		if pos >= g.end {
			continue // the true chain already crossed this region
		}
		for {
			i, found := slices.BinarySearchFunc(g.chunks, pos, func(c Chunk, off int64) int { return cmpInt(c.Off, off) })
			if found || g.hard && pos == g.start {
				out = append(out, g.chunks[i:]...)
				pos = g.chunks[len(g.chunks)-1].Off + g.chunks[len(g.chunks)-1].Len
				break
			}
			// Not converged yet: one true chunk at pos, then look again.
			var next []Chunk
			if buf == nil {
				buf = make([]byte, p.Max)
			}
			if err := splitFrom(r, p, pos, g.hardEnd, pos+1, int64(p.Max), buf, true, visit, &next); err != nil {
				return nil, err
			}
			out = append(out, next...)
			pos = next[0].Off + next[0].Len
			if pos >= g.end {
				break
			}
		}
	}
	return out, nil
}

// splitFrom appends to out the chunks of [start, hardEnd) from start,
// stopping after the first chunk that ends at or beyond stopAt.
func splitFrom(r io.ReaderAt, p Params, start, hardEnd, stopAt, window int64, buf []byte, final bool, visit func(Chunk, []byte, bool), out *[]Chunk) error {
	if start >= hardEnd {
		return nil
	}
	sr := io.NewSectionReader(r, start, hardEnd-start)
	window = min(window, stopAt-start+int64(p.Max))
	err := split(sr, hardEnd-start, p, nil, window, buf, func(c Chunk, data []byte) error {
		c.Off += start
		visit(c, data, final)
		*out = append(*out, c)
		if c.Off+c.Len >= stopAt {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
