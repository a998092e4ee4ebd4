package prune

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/model/checkpoint"
)

// ReportFile is the name of the report PruneCheckpoint writes next to the
// pruned checkpoint's config.json.
const ReportFile = "prune_report.json"

// Report says what pruning achieved. Zeros count every zero weight of the
// output, including weights that were already zero in the source, so a
// tensor's sparsity can exceed the target.
type Report struct {
	Method         string         `json:"method"`          // "unstructured" or the N:M pattern
	Scope          Scope          `json:"scope,omitempty"` // unstructured only
	TargetSparsity float64        `json:"target_sparsity"` // Sparsity, or N/M
	Threshold      *float64       `json:"global_threshold,omitempty"`
	Selected       Counts         `json:"selected"` // the pruned tensors together
	Model          Counts         `json:"model"`    // every floating-point tensor
	Tensors        []TensorReport `json:"tensors"`
}

// Counts is a number of weights and how many of them are zero.
type Counts struct {
	Total    int64   `json:"total"`
	Zeros    int64   `json:"zeros"`
	Sparsity float64 `json:"sparsity"`
}

func (c *Counts) add(total, zeros int64) {
	c.Total += total
	c.Zeros += zeros
	if c.Total > 0 {
		c.Sparsity = float64(c.Zeros) / float64(c.Total)
	}
}

// TensorReport is one pruned tensor's outcome.
type TensorReport struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Counts
}

// chunkElems is how many weights are ranked or rewritten at a time: enough
// to amortise the calls, small enough (256 KiB of keys) to stay in cache.
const chunkElems = 1 << 16

// pruner holds the scratch memory of one run.
type pruner struct {
	ctx  context.Context
	src  *checkpoint.Model
	plan plan
	sel  selector
	keys []uint32
	buf  []byte
}

// PruneCheckpoint prunes src into dstDir, a checkpoint with the same files,
// shards, tensor order, dtypes and shapes, plus prune_report.json. Memory is
// a few MiB of scratch plus the output buffers, whatever the model size.
// On error, nothing is left in dstDir.
func PruneCheckpoint(ctx context.Context, src *checkpoint.Model, dstDir string, opts Options) (Report, error) {
	pl, err := opts.plan()
	if err != nil {
		return Report{}, err
	}
	sel, err := pl.selection(src)
	if err != nil {
		return Report{}, err
	}
	p := &pruner{ctx: ctx, src: src, plan: pl, keys: make([]uint32, chunkElems), buf: make([]byte, 4*chunkElems)}
	rep := Report{Method: "unstructured", Scope: PerTensor, TargetSparsity: opts.Sparsity}
	if pl.m > 0 {
		rep.Method, rep.Scope, rep.TargetSparsity = opts.Pattern, "", float64(pl.n)/float64(pl.m)
	}
	var global *applier
	if pl.global {
		rep.Scope = Global
		var total int64
		for _, t := range sel {
			total += numElems(t.Shape)
		}
		c, err := p.sel.find(Count(opts.Sparsity, total), func(visit func([]uint32)) error {
			for _, t := range sel {
				if err := p.scanKeys(t, visit); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Report{}, err
		}
		th := float64(keyValue(c.Key))
		rep.Threshold, global = &th, newApplier(c)
	}

	w, err := src.NewWriter(dstDir)
	if err != nil {
		return Report{}, fmt.Errorf("prune: %w", err)
	}
	for _, t := range src.Tensors() {
		if err := p.tensor(w, t, global, &rep); err != nil {
			w.Abort()
			return Report{}, err
		}
	}
	if err := w.Close(); err != nil {
		return Report{}, fmt.Errorf("prune: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dstDir, ReportFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		return Report{}, fmt.Errorf("prune: writing %s: %w", ReportFile, err)
	}
	return rep, nil
}

// tensor writes one tensor of the output: copied as is when not selected,
// pruned otherwise.
func (p *pruner) tensor(w *checkpoint.Writer, t checkpoint.TensorRef, global *applier, rep *Report) error {
	raw, err := p.src.Bytes(t.Name)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	tw, err := w.TensorWriter(t.Name)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if !p.plan.selected(t.Name) {
		if _, err := tw.Write(raw); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		if t.DType.IsFloat() {
			rep.Model.add(numElems(t.Shape), countZeros(raw, t.DType.Size()))
		}
		return nil
	}
	var prune func(chunk []byte, keys []uint32)
	size := t.DType.Size()
	switch {
	case p.plan.m > 0:
		n, m := p.plan.n, p.plan.m
		prune = func(chunk []byte, keys []uint32) { pruneNM(chunk, keys, size, n, m) }
	case global != nil:
		prune = func(chunk []byte, keys []uint32) { global.apply(chunk, keys, size) }
	default:
		c, err := p.sel.find(Count(p.plan.opts.Sparsity, numElems(t.Shape)), func(visit func([]uint32)) error {
			return p.scanKeys(t, visit)
		})
		if err != nil {
			return err
		}
		a := newApplier(c)
		prune = func(chunk []byte, keys []uint32) { a.apply(chunk, keys, size) }
	}
	zeros, err := p.rewrite(tw, t, raw, prune)
	if err != nil {
		return err
	}
	tr := TensorReport{Name: t.Name, DType: string(t.DType), Shape: t.Shape}
	tr.add(numElems(t.Shape), zeros)
	rep.Tensors = append(rep.Tensors, tr)
	rep.Selected.add(tr.Total, zeros)
	rep.Model.add(tr.Total, zeros)
	return nil
}

// chunk returns the chunk length in elements: a whole number of N:M groups.
func (p *pruner) chunk() int {
	if p.plan.m > 0 {
		return chunkElems - chunkElems%p.plan.m
	}
	return chunkElems
}

// scanKeys hands visit the magnitude keys of tensor t, chunk by chunk.
func (p *pruner) scanKeys(t checkpoint.TensorRef, visit func([]uint32)) error {
	raw, err := p.src.Bytes(t.Name)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	size, step := t.DType.Size(), p.chunk()
	n := len(raw) / size
	for off := 0; off < n; off += step {
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("prune: tensor %q: %w", t.Name, err)
		}
		end := min(off+step, n)
		keys := p.keys[:end-off]
		keysOf(keys, raw[off*size:end*size], t.DType)
		visit(keys)
	}
	return nil
}

// rewrite streams tensor t to tw: each chunk of the source is copied,
// pruned in the copy, counted and written. It returns the output's zeros.
func (p *pruner) rewrite(tw io.Writer, t checkpoint.TensorRef, raw []byte, prune func([]byte, []uint32)) (int64, error) {
	size, step := t.DType.Size(), p.chunk()
	n := len(raw) / size
	var zeros int64
	for off := 0; off < n; off += step {
		if err := p.ctx.Err(); err != nil {
			return 0, fmt.Errorf("prune: tensor %q: %w", t.Name, err)
		}
		end := min(off+step, n)
		keys := p.keys[:end-off]
		out := p.buf[:(end-off)*size]
		copy(out, raw[off*size:end*size])
		keysOf(keys, out, t.DType)
		prune(out, keys)
		zeros += countZeros(out, size)
		if _, err := tw.Write(out); err != nil {
			return 0, fmt.Errorf("prune: tensor %q: %w", t.Name, err)
		}
	}
	return zeros, nil
}

// pruneNM zeroes the n smallest-magnitude elements of every group of m
// consecutive elements; ties go to the earlier element. len(keys) is a
// multiple of m.
func pruneNM(raw []byte, keys []uint32, size, n, m int) {
	for g := 0; g < len(keys); g += m {
		mask := smallestN(keys[g:g+m], n)
		for j := 0; j < m; j++ {
			if mask&(1<<j) != 0 {
				zeroElem(raw, g+j, size)
			}
		}
	}
}

func numElems(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}
