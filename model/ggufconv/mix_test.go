package ggufconv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/quant"
)

// moreBits is llama.cpp's use_more_bits, written out again here so that
// the test states the rule rather than calling the code under test.
func moreBits(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }

// types maps tensor names to storage types in a report.
func types(rep ggufconv.Report) map[string]quant.Type {
	out := make(map[string]quant.Type)
	for _, tr := range rep.Tensors {
		out[tr.Name] = tr.Type
	}
	return out
}

// checkTypes compares a report with want(name), listing every mismatch.
func checkTypes(t *testing.T, rep ggufconv.Report, want func(name string, layer int) quant.Type) {
	t.Helper()
	for name, got := range types(rep) {
		layer := -1
		fmt.Sscanf(name, "blk.%d.", &layer)
		if w := want(name, layer); got != w {
			t.Errorf("%s: %s, want %s", name, got, w)
		}
	}
}

func isNorm(name string) bool { return strings.HasSuffix(name, "_norm.weight") }

// TestQ4KMMix checks the Q4_K_M mix of an 8-layer model against
// use_more_bits: Q6_K for output.weight and for attn_v and ffn_down of
// layers 0, 3, 6 and 7; Q4_K elsewhere; norms F32.
func TestQ4KMMix(t *testing.T) {
	m := tiny(t, tinyllama.Options{Layers: 8})
	rep, _, _ := convert(t, m, ggufconv.Options{Type: "Q4_K_M"})
	var six []int
	for i := range 8 {
		if moreBits(i, 8) {
			six = append(six, i)
		}
	}
	if fmt.Sprint(six) != "[0 3 6 7]" {
		t.Fatalf("use_more_bits over 8 layers picks %v", six)
	}
	checkTypes(t, rep, func(name string, layer int) quant.Type {
		switch {
		case isNorm(name):
			return quant.F32
		case name == "output.weight":
			return quant.Q6_K
		case (strings.HasSuffix(name, "attn_v.weight") || strings.HasSuffix(name, "ffn_down.weight")) && moreBits(layer, 8):
			return quant.Q6_K
		}
		return quant.Q4_K
	})
}

// TestOtherMixes checks Q4_K_S, Q4_0, Q8_0, --pure and tied embeddings.
func TestOtherMixes(t *testing.T) {
	m := tiny(t, tinyllama.Options{Layers: 8})
	tied := tiny(t, tinyllama.Options{Layers: 2, TieEmbeddings: true})
	for _, tc := range []struct {
		name string
		rep  func() ggufconv.Report
		want func(name string, layer int) quant.Type
	}{
		{"Q4_K_S", func() ggufconv.Report { r, _, _ := convert(t, m, ggufconv.Options{Type: "Q4_K_S"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight":
					return quant.Q6_K
				case strings.HasSuffix(name, "attn_v.weight") && layer < 4, // the first four attn_v
					strings.HasSuffix(name, "ffn_down.weight") && layer < 8/8:
					return quant.Q5_K
				}
				return quant.Q4_K
			}},
		{"Q4_0", func() ggufconv.Report { r, _, _ := convert(t, m, ggufconv.Options{Type: "Q4_0"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight":
					return quant.Q6_K
				}
				return quant.Q4_0
			}},
		{"Q8_0", func() ggufconv.Report { r, _, _ := convert(t, m, ggufconv.Options{Type: "Q8_0"}); return r },
			func(name string, layer int) quant.Type {
				if isNorm(name) {
					return quant.F32
				}
				return quant.Q8_0
			}},
		// The i-quant mixes without an imatrix: Q5_K for IQ4_XS's first
		// eighth of ffn_down; IQ3_M's Q4_K attn_v, attn_output and first
		// eighth of ffn_down.
		{"IQ4_XS", func() ggufconv.Report { r, _, _ := convert(t, m, ggufconv.Options{Type: "IQ4_XS"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight":
					return quant.Q6_K
				case strings.HasSuffix(name, "ffn_down.weight") && layer < 8/8:
					return quant.Q5_K
				}
				return quant.IQ4_XS
			}},
		{"IQ3_M", func() ggufconv.Report { r, _, _ := convert(t, m, ggufconv.Options{Type: "IQ3_M"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight":
					return quant.Q6_K
				case strings.HasSuffix(name, "attn_v.weight"), strings.HasSuffix(name, "attn_output.weight"),
					strings.HasSuffix(name, "ffn_down.weight") && layer < 8/8:
					return quant.Q4_K
				}
				return quant.IQ3_S
			}},
		{"Q4_K_M-pure", func() ggufconv.Report {
			r, _, _ := convert(t, m, ggufconv.Options{Type: "Q4_K_M", Pure: true})
			return r
		},
			func(name string, layer int) quant.Type {
				if isNorm(name) {
					return quant.F32
				}
				return quant.Q4_K
			}},
		{"Q4_K_M-tied", func() ggufconv.Report { r, _, _ := convert(t, tied, ggufconv.Options{Type: "Q4_K_M"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "token_embd.weight": // doubles as the output
					return quant.Q6_K
				case (strings.HasSuffix(name, "attn_v.weight") || strings.HasSuffix(name, "ffn_down.weight")) && moreBits(layer, 2):
					return quant.Q6_K
				}
				return quant.Q4_K
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTypes(t, tc.rep(), tc.want) })
	}
}

// TestFallbacks uses rows that are not a multiple of 256 (hidden 320, feed
// forward 640), or not even of 32 (hidden 48, feed forward 80): llama.cpp
// falls back from Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, and to F16
// where no 32-block type fits.
func TestFallbacks(t *testing.T) {
	m320 := tiny(t, tinyllama.Options{Hidden: 320, Intermediate: 640})
	m48 := tiny(t, tinyllama.Options{Hidden: 48, Intermediate: 80})
	for _, tc := range []struct {
		name string
		m    func() ggufconv.Report
		want func(name string, layer int) quant.Type
	}{
		{"Q4_K_M-320", func() ggufconv.Report { r, _, _ := convert(t, m320, ggufconv.Options{Type: "Q4_K_M"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight": // rows of 320: Q8_0 rather than Q6_K
					return quant.Q8_0
				case (strings.HasSuffix(name, "attn_v.weight") || strings.HasSuffix(name, "ffn_down.weight")) && layer == 1:
					return quant.Q8_0 // Q6_K -> Q8_0
				}
				return quant.Q5_0 // Q4_K -> Q5_0
			}},
		{"Q4_K_S-320", func() ggufconv.Report { r, _, _ := convert(t, m320, ggufconv.Options{Type: "Q4_K_S"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight":
					return quant.Q8_0
				case strings.HasSuffix(name, "attn_v.weight"):
					return quant.Q5_1 // Q5_K -> Q5_1
				}
				return quant.Q5_0
			}},
		{"Q4_0-320", func() ggufconv.Report { r, _, _ := convert(t, m320, ggufconv.Options{Type: "Q4_0"}); return r },
			func(name string, layer int) quant.Type {
				switch {
				case isNorm(name):
					return quant.F32
				case name == "output.weight": // Q6_K -> Q8_0
					return quant.Q8_0
				}
				return quant.Q4_0
			}},
		{"Q8_0-48", func() ggufconv.Report { r, _, _ := convert(t, m48, ggufconv.Options{Type: "Q8_0"}); return r },
			func(name string, layer int) quant.Type {
				if isNorm(name) {
					return quant.F32
				}
				return quant.F16
			}},
		{"Q4_K_M-48", func() ggufconv.Report { r, _, _ := convert(t, m48, ggufconv.Options{Type: "Q4_K_M"}); return r },
			func(name string, layer int) quant.Type {
				if isNorm(name) {
					return quant.F32
				}
				return quant.F16
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTypes(t, tc.m(), tc.want) })
	}
}
