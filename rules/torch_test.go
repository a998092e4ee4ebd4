package rules

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
)

// calibrate, imatrix, eval and lora take the torch runtime's compute dtype, in the
// key, float32 unless given; anything else is refused by name.
func TestDType(t *testing.T) {
	for _, r := range []Rule{Calibrate{}, Imatrix{}, Eval{}, Lora{}} {
		attr, ok := r.Schema().Attr("dtype")
		if !ok || attr.Key != InKey || !strings.Contains(attr.Doc, strings.Join(torchDTypes, ", ")) {
			t.Errorf("%s: dtype attribute %+v, want one in the key listing %v", r.Kind(), attr, torchDTypes)
		}
		// eval's dtype has no default: a GGUF model refuses it when written.
		if want := torchDTypes[0]; r.Kind() != "eval" && attr.Default != want {
			t.Errorf("%s: dtype default %q, want %q", r.Kind(), attr.Default, want)
		}
	}
	if got := (&evalParams{}).dtype(); got != torchDTypes[0] {
		t.Errorf("eval's dtype when unset = %q, want %q", got, torchDTypes[0])
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
		p, errs := decode[calibrateParams](tg)
		if len(errs) > 0 {
			t.Fatalf("decode(%v): %v", c.attrs, errs)
		}
		if p.DType != c.want {
			t.Errorf("dtype of %v = %q, want %q", c.attrs, p.DType, c.want)
		}
		errs = checkDType(p.DType)
		if (len(errs) > 0) != (c.err != "") || len(errs) > 0 && !strings.Contains(errs[0].Msg, c.err) {
			t.Errorf("checkDType(%q) = %v, want %q", p.DType, errs, c.err)
		}
	}
}
