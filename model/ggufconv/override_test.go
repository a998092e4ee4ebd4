package ggufconv_test

import (
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/ggufconv"
)

// TestCompilePattern: patterns are lower-cased and searched for anywhere in
// the name, as llama-quantize's std::regex_search over its lower-cased
// --tensor-type patterns; syntax std::regex and RE2 read differently is
// refused with the reason.
func TestCompilePattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		nomatch []string
		err     string
	}{
		{pattern: "attn_v", match: []string{"blk.0.attn_v.weight"}, nomatch: []string{"blk.0.attn_q.weight"}},
		{pattern: "ATTN_V", match: []string{"blk.12.attn_v.weight"}},
		{pattern: `^blk\.[0-9]+\.ffn_(up|gate)`, match: []string{"blk.3.ffn_up.weight", "blk.10.ffn_gate.weight"}, nomatch: []string{"blk.3.ffn_down.weight", "xblk.3.ffn_up.weight"}},
		{pattern: `blk\.(?:0|1)\.attn_k\.weight$`, match: []string{"blk.1.attn_k.weight"}, nomatch: []string{"blk.11.attn_k.weight"}},
		{pattern: `\d{2}\.`, match: []string{"blk.10.attn_q.weight"}, nomatch: []string{"blk.1.attn_q.weight"}},
		// Lower-cased as llama-quantize does: \D becomes \d.
		{pattern: `blk\.\D`, match: []string{"blk.1.attn_q.weight"}},
		{pattern: "", err: "an empty pattern matches every tensor"},
		{pattern: "(?i)attn", err: "(? groups other than (?:"},
		{pattern: "(?P<n>attn)", err: "(? groups other than (?:"},
		{pattern: `attn\z`, err: `the escape \z is read differently`},
		{pattern: `\pL`, err: `the escape \p is read differently`},
		{pattern: `attn_v{,2}`, err: "a { that does not start a count"},
		{pattern: `[]a]`, err: "a class starting with ]"},
		{pattern: `attn\`, err: "ends with a lone backslash"},
		{pattern: `attn(`, err: "is not a valid regular expression"},
	} {
		re, err := ggufconv.CompilePattern(tc.pattern)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("CompilePattern(%q) = %v, want an error with %q", tc.pattern, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", tc.pattern, err)
			continue
		}
		for _, n := range tc.match {
			if !re.MatchString(n) {
				t.Errorf("%q does not match %s", tc.pattern, n)
			}
		}
		for _, n := range tc.nomatch {
			if re.MatchString(n) {
				t.Errorf("%q matches %s", tc.pattern, n)
			}
		}
	}
}
