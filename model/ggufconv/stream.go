package ggufconv

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
	"github.com/cogumi/cogumi/model/safetensors"
)

// chunkFloats bounds the rows converted between two writes: 4 Mi values
// (rounded to whole attention heads for Q and K), whose quantised bytes,
// at most 16 MiB (F32), wait in one buffer. With each worker's block of
// blockRows float32 rows, this is the memory a conversion needs, whatever
// the model's size.
const chunkFloats = 4 << 20

// blockRows is how many rows a worker converts at a time: enough that the
// shared counter is not contended, few enough that the workers finish a
// chunk together.
const blockRows = 16

// streamer converts tensors chunk by chunk, reusing its buffers.
type streamer struct {
	m       *checkpoint.Model
	threads int
	out     []byte      // quantised chunk
	work    [][]float32 // one row block per worker
	// f16 maps every half-precision bit pattern to its float32 value
	// (exact: built with safetensors.F16ToF32), made on the first F16
	// tensor: a lookup is several times faster than the conversion.
	f16 []float32
	raw []byte // the current F16 tensor's bytes, when f16 decodes it
}

func newStreamer(m *checkpoint.Model, threads int) *streamer {
	return &streamer{m: m, threads: max(1, threads), work: make([][]float32, max(1, threads))}
}

// grow returns b resized to n, reallocating only when it is too small.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// chunkRows is the number of rows converted between two writes.
func chunkRows(p *tensorPlan) int {
	n := max(1, chunkFloats/p.rowLen)
	if p.heads > 0 && p.dims() == 2 {
		// Whole heads, so that a chunk's source rows are the chunk's rows.
		hd := p.rows / p.heads
		n = max(hd, n/hd*hd)
	}
	return min(n, p.rows)
}

// writeTensor streams one tensor's data to w and returns its size.
func (s *streamer) writeTensor(ctx context.Context, w *gguf.Writer, p *tensorPlan) (int64, error) {
	tw, err := w.TensorWriter(p.name)
	if err != nil {
		return 0, err
	}
	rowBytes := quant.RowSize(p.typ, p.rowLen)
	if rowBytes < 0 {
		return 0, fmt.Errorf("rows of %d values do not fit %s blocks", p.rowLen, p.typ)
	}
	if p.dims() == 1 {
		// Small (a norm, a bias, rope_freqs): one row, read whole.
		out, err := s.vector(p)
		if err != nil {
			return 0, err
		}
		_, err = tw.Write(out)
		return int64(len(out)), err
	}
	s.raw = nil
	if ref, ok := s.m.Tensor(p.src); ok && ref.DType == safetensors.F16 {
		raw, err := s.m.Bytes(p.src)
		if err != nil {
			return 0, err
		}
		if int64(len(raw)) != 2*p.elements() {
			return 0, fmt.Errorf("checkpoint holds %d bytes for %d F16 values", len(raw), p.elements())
		}
		s.raw = raw
		if s.f16 == nil {
			s.f16 = make([]float32, 1<<16)
			for h := range s.f16 {
				s.f16[h] = safetensors.F16ToF32(uint16(h))
			}
		}
	}
	chunk := chunkRows(p)
	s.out = grow(s.out, chunk*rowBytes)
	var total int64
	for r0 := 0; r0 < p.rows; r0 += chunk {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n := min(chunk, p.rows-r0)
		out := s.out[:n*rowBytes]
		if err := s.convertRows(p, r0, n, out, rowBytes); err != nil {
			return total, err
		}
		if _, err := tw.Write(out); err != nil {
			return total, err
		}
		total += int64(len(out))
		s.release(p, r0, n)
	}
	return total, nil
}

// vector converts a 1-D tensor.
func (s *streamer) vector(p *tensorPlan) ([]byte, error) {
	vals := p.values
	if vals == nil {
		vals = make([]float32, p.rowLen)
		if err := s.m.ReadF32Rows(p.src, 0, 1, vals); err != nil {
			return nil, err
		}
		if p.heads > 0 {
			perm := make([]float32, len(vals))
			for o := range perm {
				perm[o] = vals[permuteSource(o, len(vals), p.heads)]
			}
			vals = perm
		}
	}
	out := make([]byte, quant.RowSize(p.typ, len(vals)))
	if err := quant.QuantizeRows(p.typ, out, vals, len(vals), 1); err != nil {
		return nil, err
	}
	s.release(p, 0, 1)
	return out, nil
}

// convertRows reads rows [r0, r0+n) of the output tensor (permuted from
// the source when p.heads is set), converts them to float32 and quantises
// them into out, on s.threads goroutines taking blocks of rows in turn.
// Every block is independent, so the bytes do not depend on the split.
func (s *streamer) convertRows(p *tensorPlan, r0, n int, out []byte, rowBytes int) error {
	nblocks := (n + blockRows - 1) / blockRows
	workers := min(s.threads, nblocks)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	for wi := range workers {
		s.work[wi] = grow(s.work[wi], blockRows*p.rowLen)
		buf := s.work[wi]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				b := int(next.Add(1) - 1)
				if b >= nblocks {
					return
				}
				lo := b * blockRows
				hi := min(n, lo+blockRows)
				if err := s.block(p, r0+lo, hi-lo, buf, out[lo*rowBytes:hi*rowBytes]); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("rows %d..%d: %w", r0+lo, r0+hi, err) })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// block converts k rows starting at output row r into dst.
func (s *streamer) block(p *tensorPlan, r, k int, buf []float32, dst []byte) error {
	vals := buf[:k*p.rowLen]
	if p.heads > 0 {
		for i := range k {
			src := permuteSource(r+i, p.rows, p.heads)
			if err := s.read(p, src, 1, vals[i*p.rowLen:(i+1)*p.rowLen]); err != nil {
				return err
			}
		}
	} else if err := s.read(p, r, k, vals); err != nil {
		return err
	}
	return quant.QuantizeRowsWeighted(p.typ, dst, vals, p.rowLen, p.weights, 1)
}

// read converts source rows [r, r+k) to float32 in dst.
func (s *streamer) read(p *tensorPlan, r, k int, dst []float32) error {
	if s.raw == nil {
		return s.m.ReadF32Rows(p.src, r, k, dst)
	}
	// F16 through the table; bounds were checked against the tensor's size.
	src := s.raw[2*r*p.rowLen : 2*(r+k)*p.rowLen]
	for i := range dst {
		dst[i] = s.f16[binary.LittleEndian.Uint16(src[2*i:])]
	}
	return nil
}

// release hands back to the kernel the checkpoint pages that held source
// rows [r0, r0+n), now converted (see dropPages).
func (s *streamer) release(p *tensorPlan, r0, n int) {
	if p.src == "" {
		return
	}
	b, err := s.m.Bytes(p.src)
	if err != nil || len(b) == 0 {
		return
	}
	per := len(b) / p.rows
	dropPages(b[r0*per : (r0+n)*per])
}
