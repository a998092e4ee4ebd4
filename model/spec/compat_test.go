package spec

import (
	"errors"
	"fmt"
	"testing"
)

func vocab(n int, typ string) Vocab {
	v := Vocab{Model: "llama", Type: typ, AddBOS: true, BOS: 1, EOS: 2}
	for i := range n {
		v.Tokens = append(v.Tokens, fmt.Sprintf("t%d", i))
	}
	return v
}

// TestCompatible walks common_speculative_are_compatible's rules in order.
func TestCompatible(t *testing.T) {
	base := vocab(300, "SPM")
	for _, c := range []struct {
		name string
		edit func(*Vocab)
		rule string
	}{
		{"same", func(*Vocab) {}, ""},
		{"type", func(v *Vocab) { v.Type = "BPE" }, "vocab_type"},
		{"add_bos", func(v *Vocab) { v.AddBOS = false }, "bos"},
		{"bos id", func(v *Vocab) { v.BOS = 3 }, "bos"},
		{"add_eos", func(v *Vocab) { v.AddEOS = true }, "eos"},
		{"eos id ignored without add_eos", func(v *Vocab) { v.EOS = 7 }, ""},
		{"128 more tokens", func(v *Vocab) { *v = vocab(428, "SPM") }, ""},
		{"129 more tokens", func(v *Vocab) { *v = vocab(429, "SPM") }, "vocab_size"},
		{"token below 5 differs", func(v *Vocab) { v.Tokens[4] = "x" }, ""},
		{"token 5 differs", func(v *Vocab) { v.Tokens[5] = "x" }, "token_text"},
	} {
		d := vocab(300, "SPM")
		c.edit(&d)
		err := Compatible(base, d)
		var ie *IncompatibleError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.rule != "" && (!errors.As(err, &ie) || ie.Rule != c.rule):
			t.Errorf("%s: got %v, want rule %s", c.name, err, c.rule)
		}
	}
}
