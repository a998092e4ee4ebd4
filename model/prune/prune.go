// Package prune zeroes the smallest-magnitude weights of a checkpoint:
// unstructured (a sparsity per tensor, or one threshold across all selected
// tensors) or semi-structured N:M (N zeros in every M consecutive weights
// along each row, 2:4 being what sparse tensor cores accelerate).
//
// It streams tensor by tensor over the memory-mapped source and never
// converts a weight it keeps: the output is the source's bytes with some
// elements set to zero, so untouched weights keep their exact bits in F32,
// F16 and BF16 alike, and the output has the source's dtype and layout.
// Ranking works on magnitude keys (the float32 bits of |w|); exact selection
// of the k smallest uses a two-pass radix histogram, so memory stays a few
// MiB of scratch whatever the tensor or model size.
//
// Nothing is removed: shapes stay as they are, so every architecture's
// other tensors (Qwen2's q/k/v biases, Qwen3's per-head q_norm and k_norm,
// the norms and embeddings) are copied unchanged and stay consistent with
// the zeroed projections. A bias is not zeroed with a row's weights, as a
// row is never removed whole by design.
package prune

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
)

// Scope says where the unstructured threshold is computed.
type Scope string

// Scopes.
const (
	PerTensor Scope = "tensor" // each selected tensor reaches the sparsity on its own (default)
	Global    Scope = "global" // one magnitude threshold across every selected tensor
)

// Options say what to prune and how.
type Options struct {
	// Sparsity is the fraction of weights to zero, in [0, 1], for
	// unstructured pruning: round(Sparsity x n) weights, n being the
	// tensor's size (PerTensor) or the selection's (Global).
	Sparsity float64
	// Pattern "N:M" (e.g. "2:4") asks for semi-structured pruning instead:
	// the N smallest of every M consecutive weights along the last dimension
	// (a Linear weight's input dimension). It excludes Sparsity and Global.
	Pattern string
	Scope   Scope // PerTensor when empty
	// Include replaces the default selection (the decoder layers' q, k, v, o,
	// gate, up and down projection weights) by the tensors matching any of
	// these path.Match patterns ("model.layers.*.mlp.*"); Exclude then
	// removes the tensors matching any of its patterns.
	Include []string
	Exclude []string
}

// isProjection reports whether name is a linear projection weight of a
// decoder layer (model.layers.N.self_attn.{q,k,v,o}_proj.weight or
// model.layers.N.mlp.{gate,up,down}_proj.weight): the default selection.
// Embeddings, norms and the output head are never pruned by default; pruning
// them hurts far more than it saves.
func isProjection(name string) bool {
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return false
	}
	num, rest, ok := strings.Cut(rest, ".")
	if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
		return false
	}
	switch rest {
	case "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
		"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight":
		return true
	}
	return false
}

// plan is validated options.
type plan struct {
	opts   Options
	n, m   int // N:M pattern; 0 for unstructured
	global bool
}

func (o Options) plan() (plan, error) {
	p := plan{opts: o}
	switch o.Scope {
	case "", PerTensor:
	case Global:
		p.global = true
	default:
		return plan{}, fmt.Errorf("prune: scope %q: want %q or %q", o.Scope, PerTensor, Global)
	}
	if o.Pattern != "" {
		n, m, err := ParsePattern(o.Pattern)
		if err != nil {
			return plan{}, err
		}
		if o.Sparsity != 0 {
			return plan{}, fmt.Errorf("prune: set sparsity or pattern %q, not both (an N:M pattern fixes the sparsity at N/M)", o.Pattern)
		}
		if p.global {
			return plan{}, fmt.Errorf("prune: pattern %q works within groups of weights; scope %q applies to unstructured sparsity only", o.Pattern, Global)
		}
		p.n, p.m = n, m
	} else if math.IsNaN(o.Sparsity) || o.Sparsity < 0 || o.Sparsity > 1 {
		return plan{}, fmt.Errorf("prune: sparsity %v: want a fraction between 0 and 1", o.Sparsity)
	}
	for _, pat := range append(append([]string(nil), o.Include...), o.Exclude...) {
		if _, err := path.Match(pat, ""); err != nil {
			return plan{}, fmt.Errorf("prune: bad name pattern %q: %w", pat, err)
		}
	}
	return p, nil
}

// ParsePattern parses "N:M" (0 < N < M <= 64).
func ParsePattern(s string) (n, m int, err error) {
	a, b, ok := strings.Cut(s, ":")
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n <= 0 || n >= m || m > 64 {
		return 0, 0, fmt.Errorf("prune: pattern %q: want N:M with 0 < N < M <= 64, such as 2:4", s)
	}
	return n, m, nil
}

// Count returns how many of n weights unstructured pruning at sparsity s
// zeroes: round(s x n), halves rounded up, so that 0.5 of 3 prunes 2 and
// float error in s (0.29 x 100 = 28.999...) cannot lose a weight.
func Count(s float64, n int64) int64 {
	k := int64(math.Round(s * float64(n)))
	return min(max(k, 0), n)
}

// selected reports whether the options select tensor name.
func (p plan) selected(name string) bool {
	in := false
	if len(p.opts.Include) == 0 {
		in = isProjection(name)
	} else {
		for _, pat := range p.opts.Include {
			if ok, _ := path.Match(pat, name); ok {
				in = true
				break
			}
		}
	}
	if !in {
		return false
	}
	for _, pat := range p.opts.Exclude {
		if ok, _ := path.Match(pat, name); ok {
			return false
		}
	}
	return true
}

// selection returns the selected tensors of m, in m's order, and checks
// that each can be pruned.
func (p plan) selection(m *checkpoint.Model) ([]checkpoint.TensorRef, error) {
	var out []checkpoint.TensorRef
	for _, t := range m.Tensors() {
		if !p.selected(t.Name) {
			continue
		}
		if !t.DType.IsFloat() {
			return nil, fmt.Errorf("prune: tensor %q in %s has dtype %s; only F32, F16 and BF16 weights can be pruned", t.Name, t.Shard, t.DType)
		}
		if p.m > 0 {
			if row := rowLen(t.Shape); row%int64(p.m) != 0 {
				return nil, fmt.Errorf("prune: tensor %q has rows of %d weights, not a multiple of %d: pattern %s needs whole groups",
					t.Name, row, p.m, p.opts.Pattern)
			}
		}
		out = append(out, t)
	}
	for _, pat := range p.opts.Include {
		hit := false
		for _, t := range out {
			if ok, _ := path.Match(pat, t.Name); ok {
				hit = true
				break
			}
		}
		if !hit {
			return nil, fmt.Errorf("prune: include pattern %q selects no tensor of %s", pat, m.Dir())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("prune: no tensor of %s is selected (the default selects model.layers.N.self_attn.{q,k,v,o}_proj.weight and model.layers.N.mlp.{gate,up,down}_proj.weight; use include to choose others)", m.Dir())
	}
	return out, nil
}

// rowLen is the length of the last dimension (1 for a scalar).
func rowLen(shape []int64) int64 {
	if len(shape) == 0 {
		return 1
	}
	return shape[len(shape)-1]
}
