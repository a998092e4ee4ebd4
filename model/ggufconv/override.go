package ggufconv

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cogumi/cogumi/model/quant"
)

// TensorType is one per-tensor override, llama-quantize's --tensor-type
// PATTERN=TYPE: the tensors whose llama.cpp name the pattern matches
// anywhere (std::regex_search) are stored in Type instead of what the mix
// would choose. Overrides are tried in order; the first match wins.
type TensorType struct {
	Pattern string // a regular expression over names such as "blk.3.attn_v.weight"
	Type    string // a ggml type name ("Q8_0", "q6_k", "F16")
}

// override is a parsed TensorType.
type override struct {
	re  *regexp.Regexp
	typ quant.Type
}

// ParseTensorType reads a ggml type name for an override,
// token_embedding_type or output_tensor_type, case-insensitively as
// llama-quantize's parse_ggml_type does, refusing the types cogumi cannot
// write.
func ParseTensorType(s string) (quant.Type, error) {
	t, err := quant.ParseType(s)
	if err != nil {
		var names []string
		for _, t := range quant.Types() {
			names = append(names, t.String())
		}
		return 0, fmt.Errorf("%q is not a ggml type cogumi writes; use one of %s", s, strings.Join(names, ", "))
	}
	return t, nil
}

// parseOverrides checks and compiles the overrides in order.
func parseOverrides(tts []TensorType) ([]override, error) {
	var out []override
	for i, tt := range tts {
		re, err := CompilePattern(tt.Pattern)
		if err != nil {
			return nil, fmt.Errorf("tensor type override %d: %w", i+1, err)
		}
		t, err := ParseTensorType(tt.Type)
		if err != nil {
			return nil, fmt.Errorf("tensor type override %d (%q): %w", i+1, tt.Pattern, err)
		}
		out = append(out, override{re: re, typ: t})
	}
	return out, nil
}

// CompilePattern compiles an override pattern so that it matches exactly
// the names llama-quantize's matches: the pattern is lower-cased first, as
// its --tensor-type parser does (ASCII only, as C's tolower), and then
// searched for anywhere in the name. llama.cpp compiles it as a
// std::regex (ECMAScript grammar) and Go as RE2, so only the part of the
// syntax both read alike is accepted: literals, ., [] classes, groups (
// and (?:, alternation, anchors ^ and $, the quantifiers * + ? {n} {n,}
// {n,m} (also lazy), and the escapes \d \w \s \b and escaped punctuation.
// Anything else (flags, named groups, look-arounds, back-references, \p,
// \x, \A, \z, ...) is refused with the reason.
func CompilePattern(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, fmt.Errorf("an empty pattern matches every tensor; name the tensors (\"attn_v\", \"blk\\\\.[0-9]+\\\\.ffn_down\")")
	}
	p := asciiLower(pattern)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 == len(p) {
				return nil, fmt.Errorf("pattern %q ends with a lone backslash", pattern)
			}
			e := p[i+1]
			switch {
			case strings.IndexByte("dwsb", e) >= 0:
			case e < 0x80 && !isAlnum(e):
			default:
				return nil, fmt.Errorf("pattern %q: the escape \\%c is read differently by llama.cpp's std::regex and Go (after lower-casing, as llama-quantize does); use \\d \\w \\s \\b, a [] class or an escaped punctuation character", pattern, e)
			}
			i++
		case '(':
			if i+1 < len(p) && p[i+1] == '?' && (i+2 >= len(p) || p[i+2] != ':') {
				return nil, fmt.Errorf("pattern %q: (? groups other than (?: (flags, names, look-arounds) are not read alike by llama.cpp's std::regex and Go", pattern)
			}
		case '{':
			if i+1 == len(p) || p[i+1] < '0' || p[i+1] > '9' {
				return nil, fmt.Errorf("pattern %q: a { that does not start a count {n}, {n,} or {n,m} is a literal in Go and an error for llama.cpp's std::regex; write \\{ for the character", pattern)
			}
		case '[':
			if strings.HasPrefix(p[i+1:], "]") || strings.HasPrefix(p[i+1:], "^]") {
				return nil, fmt.Errorf("pattern %q: a class starting with ] is read differently by llama.cpp's std::regex and Go; write \\] inside the class", pattern)
			}
		}
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("pattern %q is not a valid regular expression: %w", pattern, err)
	}
	return re, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// asciiLower is C's tolower over bytes in the "C" locale.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
