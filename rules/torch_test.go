package rules

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
)

// calibrate, eval and lora take the torch runtime's compute dtype, in the
// key, float32 unless given; anything else is refused by name.
func TestDType(t *testing.T) {
	for _, r := range []Rule{Calibrate{}, Eval{}, Lora{}} {
		var attr *Attr
		for _, a := range r.Schema().Attrs {
			if a.Name == "dtype" {
				attr = &a
			}
		}
		if attr == nil || attr.Key != InKey {
			t.Errorf("%s: dtype attribute %+v, want one in the key", r.Kind(), attr)
		}
	}
	for _, c := range []struct {
		attrs map[string]cty.Value
		want  string
		err   string
	}{
		{nil, "float32", ""},
		{map[string]cty.Value{"dtype": cty.StringVal("bfloat16")}, "bfloat16", ""},
		{map[string]cty.Value{"dtype": cty.StringVal("float16")}, "float16", ""},
		{map[string]cty.Value{"dtype": cty.StringVal("fp8")}, "fp8", `dtype "fp8": use float32, bfloat16, float16`},
	} {
		tg := &target.Target{Kind: "calibrate", Attrs: c.attrs}
		if got := torchDType(tg); got != c.want {
			t.Errorf("torchDType(%v) = %q, want %q", c.attrs, got, c.want)
		}
		errs := checkDType(tg)
		if (len(errs) > 0) != (c.err != "") || len(errs) > 0 && !strings.Contains(errs[0].Msg, c.err) {
			t.Errorf("checkDType(%v) = %v, want %q", c.attrs, errs, c.err)
		}
	}
}
