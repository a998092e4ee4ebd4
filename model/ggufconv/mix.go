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

// typeChoice is what decides the storage types besides the file type: the
// options that llama_model_quantize_params carries.
type typeChoice struct {
	pure       bool
	hasImatrix bool
	overrides  []override  // tt_overrides, first match wins
	used       []bool      // per override: it gave some tensor its type
	tokenEmbd  *quant.Type // token_embedding_type
	output     *quant.Type // output_tensor_type
}

// assignTypes sets every plan's storage type the way llama-quantize's
// llama_tensor_get_type does on an F32 GGUF of the checkpoint (for F32,
// F16, BF16 and Q8_0 without overrides, that is also what the converter
// writes itself). plans must be in llama-quantize's order, as planTensors
// leaves them: the attn_v and ffn_down counters run in that order.
func assignTypes(plans []*tensorPlan, ft fileType, c typeChoice, cfg *checkpoint.Config) {
	mix := mixState{ft: ft, nLayer: cfg.NumHiddenLayers, tied: true, is70B: is70B(cfg), hasImatrix: c.hasImatrix}
	if cfg.NumKeyValueHeads > 0 {
		mix.nGQA = cfg.NumAttentionHeads / cfg.NumKeyValueHeads
	}
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
		p.typ = mix.tensorType(p, c)
	}
}

// tensorType is llama_tensor_get_type for a tensor llama-quantize may
// quantise: token_embedding_type and output_tensor_type first, then the
// file type's default, a --tensor-type override or the mix, and the
// fallback for rows that do not fit the blocks.
func (s *mixState) tensorType(p *tensorPlan, c typeChoice) quant.Type {
	cat := categorize(p.name)
	if c.tokenEmbd != nil && cat == catTokenEmbd {
		return *c.tokenEmbd
	}
	if c.output != nil && cat == catOutput {
		return *c.output
	}
	t := s.ft.base
	if !t.Quantized() {
		return t
	}
	manual := false
	for i, o := range c.overrides {
		if o.re.MatchString(p.name) {
			t, manual = o.typ, true
			if i < len(c.used) {
				c.used[i] = true
			}
			break
		}
	}
	if !manual && !c.pure {
		t = s.choose(t, p, c.output)
	}
	return fallback(t, p.rowLen)
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
	nGQA          int  // hparams.n_gqa(): query heads per key-value head
	nAttnV        int  // n_attention_wv
	iAttnV, iDown int  // i_attention_wv, i_ffn_down: counters in file order
	iGate, iUp    int  // i_ffn_gate, i_ffn_up
	tied          bool // no output.weight: token_embd doubles as the output
	is70B         bool // LLM_TYPE_70B
	hasImatrix    bool
}

// choose is llama_tensor_get_type_impl for the file types cogumi writes
// and the Llama architectures (no experts, no fused QKV, not Falcon). Like
// llama.cpp's, its attn_v and ffn_down counters advance only for the
// tensors it is asked about: an override or pure skips it.
func (s *mixState) choose(t quant.Type, p *tensorPlan, output *quant.Type) quant.Type {
	ft := s.ft.name
	switch categorize(p.name) {
	case catOutput:
		return s.outputType(t, p, output)
	case catTokenEmbd:
		if s.tied {
			return s.outputType(t, p, output)
		}
		switch ft {
		case "IQ2_XXS", "IQ2_XS":
			return quant.Q2_K
		case "IQ2_S", "IQ2_M", "IQ3_XXS":
			return quant.IQ3_S
		}
		return t
	}
	if s.iq2Mix() {
		return s.chooseIQ2(t, p)
	}
	switch categorize(p.name) {
	case catAttnV:
		i := s.iAttnV
		s.iAttnV++
		switch {
		case ft == "Q2_K":
			t = quant.Q3_K
			if s.nGQA >= 4 {
				t = quant.Q4_K
			}
		case ft == "Q2_K_S" && s.nGQA >= 4:
			t = quant.Q4_K
		case ft == "IQ3_XXS":
			switch {
			case s.nGQA >= 4:
				t = quant.Q4_K
			case !s.hasImatrix:
				t = quant.IQ3_S
			default:
				t = quant.IQ3_XXS
			}
		case (ft == "IQ3_XS" || ft == "IQ3_S") && s.nGQA >= 4:
			t = quant.Q4_K
		case ft == "IQ3_M":
			t = quant.Q4_K
		case ft == "Q3_K_M":
			t = quant.Q4_K
			if i < 2 {
				t = quant.Q5_K
			}
		case ft == "Q3_K_L":
			t = quant.Q5_K
		case (ft == "IQ4_NL" || ft == "IQ4_XS") && s.nGQA >= 4:
			t = quant.Q5_K
		case (ft == "Q4_K_M" || ft == "Q5_K_M") && useMoreBits(i, s.nAttnV):
			t = quant.Q6_K
		case ft == "Q4_K_S" && i < 4:
			t = quant.Q5_K
		}
		if s.is70B && (t == quant.Q3_K || t == quant.Q4_K) {
			// 8 heads share each attn_v: more bits cost little.
			t = quant.Q5_K
		}
		return t
	case catFFNDown:
		i, n := s.iDown, s.nLayer
		s.iDown++
		switch {
		case ft == "Q2_K":
			t = quant.Q3_K
		case ft == "Q2_K_S":
			if i < n/8 {
				t = quant.Q4_K
			}
		case ft == "IQ3_XXS" && !s.hasImatrix:
			t = quant.Q3_K
			if i < n/8 {
				t = quant.Q4_K
			}
		case ft == "Q3_K_M":
			// Falcon's Q3_K for the layers use_more_bits skips does
			// not apply to the Llama architectures.
			t = quant.Q4_K
			if i < n/16 {
				t = quant.Q5_K
			}
		case ft == "IQ3_M" && i < n/8:
			t = quant.Q4_K
		case ft == "Q3_K_L":
			t = quant.Q5_K
		case ft == "Q4_K_M":
			if useMoreBits(i, n) {
				t = quant.Q6_K
			}
		case i < n/8 && (ft == "IQ4_NL" || ft == "IQ4_XS") && !s.hasImatrix:
			t = quant.Q5_K
		case ft == "Q5_K_M" && useMoreBits(i, n):
			t = quant.Q6_K
		case ft == "Q4_K_S" && i < n/8:
			t = quant.Q5_K
		case ft == "Q4_0" && s.hasImatrix && i < n/8:
			// With an imatrix, the first ffn_down layers of Q4_0 go to
			// Q4_1 against "craziness" (llama.cpp's word).
			t = quant.Q4_1
		}
		return t
	case catAttnOutput:
		switch ft {
		case "Q2_K":
			t = quant.Q3_K
		case "IQ3_XXS":
			t = quant.IQ3_S
		case "Q3_K_M", "IQ3_M":
			t = quant.Q4_K
		case "Q3_K_L":
			t = quant.Q5_K
		}
		return t
	case catAttnK, catAttnQ:
		switch ft {
		case "IQ3_XS":
			t = quant.IQ3_XXS
		case "IQ3_XXS":
			t = quant.IQ2_S
		}
		return t
	case catFFNGate, catFFNUp:
		// IQ3_XS keeps IQ3_S for the first and last eighth of the layers.
		i := &s.iGate
		if categorize(p.name) == catFFNUp {
			i = &s.iUp
		}
		if ft == "IQ3_XS" && *i >= s.nLayer/8 && *i < 7*s.nLayer/8 {
			t = quant.IQ3_XXS
		}
		*i++
		return t
	}
	return t
}

// iq2Mix reports the file types that llama_tensor_get_type_impl gives
// their own branch for the layers' tensors: the 2-bit i-quants.
func (s *mixState) iq2Mix() bool {
	switch s.ft.name {
	case "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M":
		return true
	}
	return false
}

// chooseIQ2 is that branch: attn_v in Q4_K with grouped-query attention
// (no 70B bump here), and in Q2_K (IQ3_S for IQ2_S and IQ2_M) without;
// the first eighth of ffn_down in Q2_K (IQ3_S); attn_output in IQ3_S for
// IQ2_S and IQ2_M. Everything else keeps the file's default type.
func (s *mixState) chooseIQ2(t quant.Type, p *tensorPlan) quant.Type {
	low := quant.Q2_K
	if s.ft.name == "IQ2_S" || s.ft.name == "IQ2_M" {
		low = quant.IQ3_S
	}
	switch categorize(p.name) {
	case catAttnV:
		t = low
		if s.nGQA >= 4 {
			t = quant.Q4_K
		}
		s.iAttnV++
	case catFFNDown:
		if s.iDown < s.nLayer/8 {
			t = low
		}
		s.iDown++
	case catAttnOutput:
		if low == quant.IQ3_S {
			t = low
		}
	}
	return t
}

// outputType is the rule for output.weight, and for token_embd.weight
// when it doubles as the output: output_tensor_type when set; else Q6_K,
// or Q8_0 when its rows do not fit the default type's blocks, and Q8_0
// stays Q8_0.
func (s *mixState) outputType(t quant.Type, p *tensorPlan, output *quant.Type) quant.Type {
	switch {
	case output != nil:
		return *output
	case p.rowLen%t.BlockSize() != 0:
		return quant.Q8_0
	case s.iq2Mix() || s.ft.name == "IQ3_XXS":
		return quant.Q5_K
	case t != quant.Q8_0:
		return quant.Q6_K
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
	case quant.IQ2_XXS, quant.IQ2_XS, quant.IQ2_S, quant.IQ3_XXS, quant.IQ3_S, quant.IQ4_XS:
		t = quant.IQ4_NL
	case quant.Q2_K, quant.Q3_K:
		t = quant.Q4_0
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

// requiresImatrix is tensor_requires_imatrix for the types cogumi writes:
// the IQ3_XXS and 2-bit i-quant tensors, and the Q2_K tensors of a Q2_K_S
// file, other than the embeddings and the output.
func requiresImatrix(p *tensorPlan, ft fileType) bool {
	switch categorize(p.name) {
	case catTokenEmbd, catOutput:
		return false
	}
	switch p.typ {
	case quant.IQ3_XXS, quant.IQ2_XXS, quant.IQ2_XS, quant.IQ2_S:
		return true
	}
	return p.typ == quant.Q2_K && ft.name == "Q2_K_S"
}
