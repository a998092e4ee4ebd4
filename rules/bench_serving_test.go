package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
)

func TestBenchServingCheck(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]cty.Value
		gpus  int
		want  string // "" for none
	}{
		{map[string]cty.Value{}, 0, ""},
		{map[string]cty.Value{"backend": str("cuda")}, 1, ""},
		{map[string]cty.Value{"serving": str(":s"), "draft_max": num(4)}, 0, "draft_max comes from serving's config: set it there, or drop serving"},
		{map[string]cty.Value{"draft_max": num(0)}, 0, "0: a bench needs at least 1 drafted token a step"},
		{map[string]cty.Value{"draft_min": num(5)}, 0, "draft_min 5, draft_max 3: want 0 <= draft_min <= draft_max"},
		{map[string]cty.Value{"draft_p_min": num(1.5)}, 0, "1.5: a probability is between 0 and 1"},
		{map[string]cty.Value{"max_tokens": num(0)}, 0, "0: generate at least 1 token"},
		{map[string]cty.Value{"prompts": cty.ListValEmpty(cty.String)}, 0, "no prompts: give at least one"},
		{map[string]cty.Value{"prompts": strs("a", " ")}, 0, "prompt 2 is empty"},
		{map[string]cty.Value{"backend": str("rocm")}, 0, `"rocm": want cpu, cuda, vulkan, metal`},
		{map[string]cty.Value{"backend": str("cuda")}, 0, "backend cuda runs on a GPU: add resources { gpus = 1 }"},
	} {
		c.attrs["model"], c.attrs["draft"] = str(":base"), str(":draft")
		tg := &target.Target{Label: label.Label{Pkg: "p", Name: "b"}, Kind: "bench_serving", Attrs: c.attrs}
		tg.Resources.GPUs = c.gpus
		errs := BenchServing{}.Check(tg)
		got := fmt.Sprint(errs)
		if c.want == "" && len(errs) > 0 || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%v: got %s, want %q", c.attrs, got, c.want)
		}
	}
}
