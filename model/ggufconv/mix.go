package ggufconv

import (
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/quant"
)

// category is llama-quant.cpp's tensor_category, for the tensors a Llama
// model has.
type category int

const (
	catOther category = iota
	catTokenEmbd
	catOutput
	catAttnQ
	catAttnK
	catAttnV
	catAttnOutput
	catFFNGate
	catFFNUp
	catFFNDown
)

// categorize mirrors tensor_get_category (substring matches, in its order).
func categorize(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

// useMoreBits is llama-quant.cpp's use_more_bits: the first and last
// eighth of the layers, and every third layer in between, get more bits in
// the _M mixes.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// keepsFloat reports the tensors stored in F32 whatever the file type: 1-D
// tensors and norms (the converter writes them F32, and llama-quantize's
// tensor_allows_quantization leaves them alone), and anything not named
// *.weight.
func keepsFloat(p *tensorPlan) bool {
	return p.dims() < 2 || strings.HasSuffix(p.name, "_norm.weight") || !strings.HasSuffix(p.name, ".weight")
}

// assignTypes sets every plan's storage type the way llama.cpp would for
// the file type: the converter's rules for F32, F16, BF16 and Q8_0 (which
// it writes itself), llama-quantize's llama_tensor_get_type run on an F32
// GGUF for the other types. plans must be in llama-quantize's order, as
// planTensors leaves them: the attn_v counter runs in that order.
func assignTypes(plans []*tensorPlan, ft fileType, pure bool, cfg *checkpoint.Config) {
	mix := mixState{ft: ft, nLayer: cfg.NumHiddenLayers, tied: true, is70B: is70B(cfg)}
	for _, p := range plans {
		switch categorize(p.name) {
		case catAttnV:
			mix.nAttnV++
		case catOutput:
			mix.tied = false
		}
	}
	for _, p := range plans {
		if keepsFloat(p) {
			p.typ = quant.F32
			continue
		}
		t := ft.base
		if ft.mixed && !pure {
			t = mix.choose(t, p)
		}
		p.typ = fallback(t, p.rowLen)
	}
}

// is70B reports llama.cpp's LLM_TYPE_70B, which gives attn_v more bits: an
// 80-layer llama with grouped-query attention (src/models/llama.cpp), any
// 80-layer qwen2 (src/models/qwen2.cpp); qwen3 has no 70B type.
func is70B(cfg *checkpoint.Config) bool {
	switch cfg.Arch.GGUF {
	case "llama":
		return cfg.NumHiddenLayers == 80 && cfg.NumAttentionHeads != cfg.NumKeyValueHeads
	case "qwen2":
		return cfg.NumHiddenLayers == 80
	}
	return false
}

// mixState is the part of quantize_state_impl that the Llama rules use.
type mixState struct {
	ft            fileType
	nLayer        int  // hparams.n_layer: n_ffn_down
	nAttnV        int  // n_attention_wv
	iAttnV, iDown int  // i_attention_wv, i_ffn_down: counters in file order
	tied          bool // no output.weight: token_embd doubles as the output
	is70B         bool // LLM_TYPE_70B for the llama architecture
}

// choose is llama_tensor_get_type_impl for the ftypes cogumi writes
// (Q4_0, Q4_K_S, Q4_K_M) and the Llama architecture (no experts, no fused
// QKV, not Falcon), without an importance matrix.
func (s *mixState) choose(t quant.Type, p *tensorPlan) quant.Type {
	cat := categorize(p.name)
	switch {
	case cat == catOutput || (s.tied && cat == catTokenEmbd):
		// The output (or the embedding that doubles as it) gets Q6_K,
		// or Q8_0 when its rows do not fit the default type's blocks.
		switch {
		case p.rowLen%t.BlockSize() != 0:
			return quant.Q8_0
		case t != quant.Q8_0:
			return quant.Q6_K
		}
		return t
	case cat == catAttnV:
		i := s.iAttnV
		s.iAttnV++
		switch {
		case s.ft.name == "Q4_K_M" && useMoreBits(i, s.nAttnV):
			t = quant.Q6_K
		case s.ft.name == "Q4_K_S" && i < 4:
			t = quant.Q5_K
		}
		if s.is70B && t == quant.Q4_K {
			// 8 heads share each attn_v: more bits cost little.
			t = quant.Q5_K
		}
		return t
	case cat == catFFNDown:
		i := s.iDown
		s.iDown++
		switch {
		case s.ft.name == "Q4_K_M" && useMoreBits(i, s.nLayer):
			t = quant.Q6_K
		case s.ft.name == "Q4_K_S" && i < s.nLayer/8:
			t = quant.Q5_K
		}
		return t
	}
	return t
}

// fallback is tensor_type_fallback: a type whose block does not divide the
// row length falls back to a 32-block type, and to F16 when even that does
// not fit (also the converter's Q8_0 -> F16 fallback).
func fallback(t quant.Type, rowLen int) quant.Type {
	if rowLen%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case quant.Q4_K:
		t = quant.Q5_0
	case quant.Q5_K:
		t = quant.Q5_1
	case quant.Q6_K:
		t = quant.Q8_0
	}
	if rowLen%t.BlockSize() != 0 {
		return quant.F16
	}
	return t
}
