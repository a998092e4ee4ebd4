package awq

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cogumi/cogumi/model/safetensors"
)

// linear is one weight matrix of a group, as float32.
type linear struct {
	name    string    // tensor name without ".weight"
	w       []float32 // [out, in] row-major
	out, in int
}

// searcher holds what every group's search shares.
type searcher struct {
	q       quantizer
	dtype   safetensors.DType // the checkpoint's dtype: scaled weights are rounded to it before quantisation
	duo     bool
	grid    int
	workers int
	stride  int // score the ratios on every stride-th unit of rows (1: all)
}

// result is the outcome of one group's search.
type result struct {
	ratio    float64   // the chosen exponent; 0 when plain RTN was best
	scaled   bool      // false: no ratio beat RTN, scales are all 1
	scales   []float32 // [in], the chosen scales (all 1 when !scaled)
	rtnErr   float64   // mean squared output error with s = 1
	awqErr   float64   // mean squared output error with the chosen scales
	outElems float64   // rows x total outputs: the divisor of the errors
}

// rowsPerUnit is how many weight rows one worker quantises and scores at a
// time: enough rows for the kernel's register blocking and to amortise the
// calibration rows' trips through the cache.
const rowsPerUnit = 16

// search finds the exponent of the scales that minimises the group's
// output error on the calibration rows x, over ratios i/grid (i = 0 ..
// grid-1, as AutoAWQ), and plain RTN.
func (s *searcher) search(ctx context.Context, x *input, lins []linear) (result, error) {
	in := x.in
	xMean := make([]float64, in)
	for i, v := range x.meanAbs {
		xMean[i] = float64(v)
	}
	var wMean []float64
	if s.duo {
		wMean = weightMean(lins, s.q.group())
	}
	var outs int
	for _, l := range lins {
		outs += l.out
	}
	res := result{outElems: float64(x.n) * float64(outs)}
	ones := make([]float32, in)
	for i := range ones {
		ones[i] = 1
	}
	stride := max(1, s.stride)
	rtn, err := s.groupError(ctx, x, lins, ones, 1)
	if err != nil {
		return result{}, err
	}
	res.rtnErr, res.awqErr, res.scales = rtn/res.outElems, rtn/res.outElems, ones
	best := rtn // on the rows the search scores
	if stride > 1 {
		if best, err = s.groupError(ctx, x, lins, ones, stride); err != nil {
			return result{}, err
		}
	}
	for i := 0; i < s.grid; i++ {
		ratio := float64(i) / float64(s.grid)
		sc := scalesFor(xMean, wMean, ratio)
		if i == 0 && !s.duo {
			continue // s = 1: the RTN error measured above
		}
		e, err := s.groupError(ctx, x, lins, sc, stride)
		if err != nil {
			return result{}, err
		}
		if e < best {
			best = e
			res.ratio, res.scaled, res.scales = ratio, true, sc
		}
	}
	switch {
	case !res.scaled:
	case stride == 1:
		res.awqErr = best / res.outElems
	default:
		// Chosen on a sample of rows: measured on all of them, and kept only
		// if it beats plain RTN there too.
		full, err := s.groupError(ctx, x, lins, res.scales, 1)
		if err != nil {
			return result{}, err
		}
		if full < rtn {
			res.awqErr = full / res.outElems
		} else {
			res.ratio, res.scaled, res.scales = 0, false, ones
		}
	}
	return res, nil
}

// scalesFor is AutoAWQ's scale for a ratio: mean|x|^ratio, divided by
// mean|w|^(1-ratio) (+1e-4) with duo scaling, clamped below at 1e-4 and
// normalised by sqrt(max*min) so that the scales straddle 1.
func scalesFor(xMean, wMean []float64, ratio float64) []float32 {
	sc := make([]float64, len(xMean))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, xm := range xMean {
		v := math.Pow(xm, ratio)
		if wMean != nil {
			v /= math.Pow(wMean[i], 1-ratio) + 1e-4
		}
		v = max(v, 1e-4)
		sc[i] = v
		lo, hi = min(lo, v), max(hi, v)
	}
	norm := math.Sqrt(hi * lo)
	out := make([]float32, len(sc))
	for i, v := range sc {
		out[i] = float32(v / norm)
	}
	return out
}

// weightMean is AutoAWQ's w_mean: every weight of the group's linears as
// |w| / max |w| of its quantisation group, averaged per input channel.
func weightMean(lins []linear, group int) []float64 {
	in := lins[0].in
	sum := make([]float64, in)
	rows := 0
	for _, l := range lins {
		for r := 0; r < l.out; r++ {
			row := l.w[r*in : (r+1)*in]
			for g := 0; g < in; g += group {
				blk := row[g:min(g+group, in)]
				var m float32
				for _, v := range blk {
					m = max(m, abs32(v))
				}
				if m == 0 {
					continue
				}
				for j, v := range blk {
					sum[g+j] += float64(abs32(v) / m)
				}
			}
		}
		rows += l.out
	}
	for i := range sum {
		sum[i] /= float64(rows)
	}
	return sum
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// groupError is sum over the group's linears of ||X W^T - (X/s) Q(W diag(s))^T||^2,
// computed as ||X (W - Q(W diag(s)) diag(1/s))^T||^2, with the rows of the
// linears shared among workers in units of rowsPerUnit.
// With stride > 1 only every stride-th unit is scored.
func (s *searcher) groupError(ctx context.Context, x *input, lins []linear, sc []float32, stride int) (float64, error) {
	type unit struct{ lin, row0 int }
	var units []unit
	n := 0
	for li, l := range lins {
		for r := 0; r < l.out; r += rowsPerUnit {
			if n%stride == 0 {
				units = append(units, unit{li, r})
			}
			n++
		}
	}
	in := x.in
	inv := make([]float32, in)
	for i, v := range sc {
		inv[i] = 1 / v
	}
	// Each unit's error lands in its own slot and the slots are summed in
	// order, so the result does not depend on the number of workers or on
	// their timing: the chosen ratio, and so the artifact, is reproducible.
	errs := make([]float64, len(units))
	workers := min(s.workers, len(units))
	var (
		next   atomic.Int64
		mu     sync.Mutex
		first  error
		wg     sync.WaitGroup
		failed atomic.Bool
	)
	for range workers {
		wg.Go(func() {
			e := make([]float32, rowsPerUnit*in)
			ws := make([]float32, in)
			dq := make([]float32, in)
			enc := make([]byte, in*s.dtype.Size())
			scratch := make([]byte, s.q.scratchSize(in))
			acc := make([]float32, x.n*rowsPerUnit)
			var err error
			for !failed.Load() {
				k := int(next.Add(1)) - 1
				if k >= len(units) {
					break
				}
				if err = ctx.Err(); err != nil {
					break
				}
				u := units[k]
				l := lins[u.lin]
				c := min(rowsPerUnit, l.out-u.row0)
				for r := 0; r < c; r++ {
					w := l.w[(u.row0+r)*in : (u.row0+r+1)*in]
					for i, v := range w {
						ws[i] = v * sc[i]
					}
					roundTo(ws, enc, s.dtype)
					if err = s.q.roundTrip(dq, ws, scratch); err != nil {
						err = fmt.Errorf("awq: quantising %s row %d: %w", l.name, u.row0+r, err)
						break
					}
					er := e[r*in : (r+1)*in]
					for i, v := range w {
						er[i] = v - dq[i]*inv[i]
					}
				}
				if err != nil {
					break
				}
				errs[k] = sumSquares(x.rows, x.n, in, e[:c*in], c, acc)
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					failed.Store(true)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	var total float64
	for _, v := range errs {
		total += v
	}
	return total, nil
}

// roundTo rounds v to what dtype stores (the scaled weights are written in
// the checkpoint's dtype, and that is what the gguf rule quantises).
func roundTo(v []float32, buf []byte, dtype safetensors.DType) {
	if dtype == safetensors.F32 || dtype == "" {
		return
	}
	safetensors.EncodeF32(buf[:len(v)*dtype.Size()], v, dtype)
	safetensors.DecodeF32(v, buf[:len(v)*dtype.Size()], dtype)
}

// defaultWorkers is one worker per CPU the process may use.
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
