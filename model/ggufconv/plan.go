package ggufconv

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/quant"
)

// tensorPlan is one tensor of the output: where its values come from, how
// its rows are reordered, and how it is stored.
type tensorPlan struct {
	src   string   // checkpoint tensor; "" when values is set
	name  string   // GGUF name
	layer int      // block index, -1 outside the blocks
	shape []uint64 // ggml order, innermost first
	// rows x rowLen is the tensor as ggml stores it: rowLen = shape[0].
	rows, rowLen int
	// heads > 0 permutes the rows (the elements of a 1-D tensor) for
	// llama.cpp's RoPE layout: heads is n_head for Q, n_head_kv for K.
	heads  int
	values []float32 // generated tensors (rope_freqs.weight)
	typ    quant.Type
	// weights are the importance of each column (rowLen values) that
	// the quantiser weighs its errors by; nil quantises without.
	weights []float32
}

func (p *tensorPlan) elements() int64 { return int64(p.rows) * int64(p.rowLen) }

// dims is the number of dimensions of the GGUF tensor.
func (p *tensorPlan) dims() int { return len(p.shape) }

// blockNames maps the part of a Hugging Face name after
// "model.layers.N." to llama.cpp's name after "blk.N." (gguf-py's
// tensor_mapping.py: the names are the same for MODEL_ARCH.LLAMA, QWEN2 and
// QWEN3, which adds the per-head attn_q_norm and attn_k_norm).
func blockNames() map[string]string {
	return map[string]string{
		"input_layernorm.weight":          "attn_norm.weight",
		"self_attn.q_proj.weight":         "attn_q.weight",
		"self_attn.k_proj.weight":         "attn_k.weight",
		"self_attn.v_proj.weight":         "attn_v.weight",
		"self_attn.o_proj.weight":         "attn_output.weight",
		"self_attn.q_proj.bias":           "attn_q.bias",
		"self_attn.k_proj.bias":           "attn_k.bias",
		"self_attn.v_proj.bias":           "attn_v.bias",
		"self_attn.o_proj.bias":           "attn_output.bias",
		"self_attn.q_norm.weight":         "attn_q_norm.weight",
		"self_attn.k_norm.weight":         "attn_k_norm.weight",
		"post_attention_layernorm.weight": "ffn_norm.weight",
		"mlp.gate_proj.weight":            "ffn_gate.weight",
		"mlp.up_proj.weight":              "ffn_up.weight",
		"mlp.down_proj.weight":            "ffn_down.weight",
		"mlp.gate_proj.bias":              "ffn_gate.bias",
		"mlp.up_proj.bias":                "ffn_up.bias",
		"mlp.down_proj.bias":              "ffn_down.bias",
	}
}

// globalNames maps the tensors outside the blocks.
func globalNames() map[string]string {
	return map[string]string{
		"model.embed_tokens.weight": "token_embd.weight",
		"model.norm.weight":         "output_norm.weight",
		"lm_head.weight":            "output.weight",
	}
}

// ggufName returns the llama.cpp name of a checkpoint tensor and its layer
// (-1 outside the blocks); ok is false for a name llama.cpp does not know.
func ggufName(hf string) (name string, layer int, ok bool) {
	if g, found := globalNames()[hf]; found {
		return g, -1, true
	}
	rest, found := strings.CutPrefix(hf, "model.layers.")
	if !found {
		return "", 0, false
	}
	num, suffix, found := strings.Cut(rest, ".")
	if !found {
		return "", 0, false
	}
	l, err := strconv.Atoi(num)
	if err != nil || l < 0 || strconv.Itoa(l) != num {
		return "", 0, false
	}
	g, found := blockNames()[suffix]
	if !found {
		return "", 0, false
	}
	return "blk." + num + "." + g, l, true
}

// ignored reports checkpoint tensors that llama.cpp's converter drops.
func ignored(hf string) bool {
	return strings.HasSuffix(hf, ".rotary_emb.inv_freq")
}

// planTensors maps every tensor of the checkpoint and orders them as
// llama-quantize writes them (llama_model_loader's weight_name_comparer:
// by block number, tensors outside blocks first, then by name).
func planTensors(m *checkpoint.Model) ([]*tensorPlan, []string, error) {
	cfg := m.Config()
	var plans []*tensorPlan
	var warnings []string
	for _, t := range m.Tensors() {
		if ignored(t.Name) {
			warnings = append(warnings, fmt.Sprintf("dropped %s, which llama.cpp computes itself", t.Name))
			continue
		}
		name, layer, ok := ggufName(t.Name)
		if !ok {
			return nil, nil, fmt.Errorf("checkpoint tensor %q has no llama.cpp name: cogumi converts the %s tensors (embed_tokens, norm, lm_head, and each layer's norms, attention and MLP projections)", t.Name, cfg.Arch.Architecture)
		}
		if layer >= cfg.NumHiddenLayers {
			return nil, nil, fmt.Errorf("checkpoint tensor %q belongs to layer %d, but config.json has %d layers", t.Name, layer, cfg.NumHiddenLayers)
		}
		if !t.DType.IsFloat() {
			return nil, nil, fmt.Errorf("checkpoint tensor %q has dtype %s; cogumi converts F32, F16 and BF16 weights", t.Name, t.DType)
		}
		p := &tensorPlan{src: t.Name, name: name, layer: layer}
		switch len(t.Shape) {
		case 1:
			p.rows, p.rowLen = 1, int(t.Shape[0])
			p.shape = []uint64{uint64(t.Shape[0])}
		case 2:
			p.rows, p.rowLen = int(t.Shape[0]), int(t.Shape[1])
			p.shape = []uint64{uint64(t.Shape[1]), uint64(t.Shape[0])}
		default:
			return nil, nil, fmt.Errorf("checkpoint tensor %q has shape %v; Llama tensors are 1-D or 2-D", t.Name, t.Shape)
		}
		if p.rows <= 0 || p.rowLen <= 0 {
			return nil, nil, fmt.Errorf("checkpoint tensor %q is empty (shape %v)", t.Name, t.Shape)
		}
		// Only the architectures llama.cpp runs with interleaved RoPE get
		// their Q and K rows permuted (LlamaModel.modify_tensors); the
		// Qwen models run with NEOX RoPE, Hugging Face's own layout.
		switch {
		case !cfg.Arch.RopeInterleaved:
		case strings.HasSuffix(name, ".attn_q.weight"), strings.HasSuffix(name, ".attn_q.bias"):
			p.heads = cfg.NumAttentionHeads
		case strings.HasSuffix(name, ".attn_k.weight"), strings.HasSuffix(name, ".attn_k.bias"):
			p.heads = cfg.NumKeyValueHeads
		}
		if p.heads > 0 {
			n := p.rows
			if p.dims() == 1 {
				n = p.rowLen
			}
			if n%(2*p.heads) != 0 {
				return nil, nil, fmt.Errorf("checkpoint tensor %q: %d rows cannot be split into %d heads of pairs for the RoPE permutation", t.Name, n, p.heads)
			}
		}
		plans = append(plans, p)
	}
	rf := ropeFreqs(&cfg)
	if rf != nil && !cfg.Arch.LlamaKeys {
		// Only LlamaModel generates rope_freqs.weight; the other
		// converters write no trace of llama3 scaling at all.
		return nil, nil, fmt.Errorf("config.json scales RoPE the llama3 way, which llama.cpp's %s models do not support", cfg.Arch.GGUF)
	}
	if rf != nil {
		plans = append(plans, &tensorPlan{
			name: "rope_freqs.weight", layer: -1, rows: 1, rowLen: len(rf),
			shape: []uint64{uint64(len(rf))}, values: rf,
		})
	}
	slices.SortFunc(plans, func(a, b *tensorPlan) int {
		return cmp.Or(cmp.Compare(a.layer, b.layer), strings.Compare(a.name, b.name))
	})
	return plans, warnings, nil
}

// permuteSource returns the source index of output row (or element) o of
// a Q or K tensor of n rows split into heads: convert_hf_to_gguf.py's
// permute reshapes the rows to [heads, 2, n/heads/2] and swaps the last two
// axes, so output row (h, j, i) is input row (h, i, j).
func permuteSource(o, n, heads int) int {
	hd := n / heads // rows per head
	h, rem := o/hd, o%hd
	j, i := rem/2, rem%2
	return h*hd + i*(hd/2) + j
}

// ropeFreqs computes the rope_freqs.weight tensor that llama.cpp's
// converter adds for Llama 3.1-style "llama3" RoPE scaling
// (LlamaModel.generate_extra_tensors), in float32 as torch computes it;
// nil when RoPE is not llama3-scaled.
func ropeFreqs(cfg *checkpoint.Config) []float32 {
	rs := cfg.RopeScaling
	if rs == nil || !strings.EqualFold(rs.Type, "llama3") {
		return nil
	}
	or := func(v, d float64) float64 {
		if v == 0 {
			return d
		}
		return v
	}
	factor := or(rs.Factor, 8)
	low := or(rs.LowFreqFactor, 1)
	high := or(rs.HighFreqFactor, 4)
	oldCtx := float64(rs.OriginalMaxPositionEmbeddings)
	if oldCtx == 0 {
		oldCtx = 8192
	}
	lowWavelen := float32(oldCtx / low)
	highWavelen := float32(oldCtx / high)
	dim := cfg.HeadDimension()
	out := make([]float32, 0, dim/2)
	for i := 0; i < dim; i += 2 {
		exp := float32(i) / float32(dim)
		freq := 1 / float32(math.Pow(cfg.RopeTheta, float64(exp)))
		wavelen := float32(2*math.Pi) / freq
		switch {
		case wavelen < highWavelen:
			out = append(out, 1)
		case wavelen > lowWavelen:
			out = append(out, float32(factor))
		default:
			smooth := (float32(oldCtx)/wavelen - float32(low)) / float32(high-low)
			out = append(out, 1/((1-smooth)/float32(factor)+smooth))
		}
	}
	return out
}
