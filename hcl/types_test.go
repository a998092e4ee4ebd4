package hcl

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// typed is a rule with attributes of every shape, to test decoding.
type typed struct{}

func (typed) Kind() string    { return "typed" }
func (typed) Version() string { return "1" }
func (typed) Schema() rules.Schema {
	return rules.Schema{Attrs: []rules.Attr{
		{Name: "n", Type: cty.Number, Key: rules.InKey},
		{Name: "flag", Type: cty.Bool, Key: rules.InKey},
		{Name: "list", Type: cty.List(cty.Number), Key: rules.InKey},
		{Name: "map", Type: cty.Map(cty.String), Key: rules.InKey},
		{Name: "obj", Type: cty.Object(map[string]cty.Type{"lr": cty.Number, "epochs": cty.Number}), Key: rules.InKey},
		{Name: "any", Type: cty.DynamicPseudoType, Key: rules.InKey},
		{Name: "model", Type: cty.String, Input: rules.LabelInput, Key: rules.InKey},
		{Name: "mods", Type: cty.Map(cty.String), Input: rules.LabelMapInput, Key: rules.InKey},
		{Name: "where", Type: cty.Bool, Row: true, Key: rules.InKey},
		{Name: "prompt", Type: cty.String, Row: true, Key: rules.InKey},
		{Name: "ord", Type: cty.DynamicPseudoType, Ordered: true, Key: rules.InKey},
		{Name: rules.OrderOf("ord"), Type: cty.List(cty.String), Key: rules.InKey},
	}}
}
func (typed) Check(*target.Target) []rules.AttrError       { return nil }
func (typed) Outs(*target.Target) []string                 { return nil }
func (typed) Execute(context.Context, *rules.Action) error { return nil }
func registry(t *testing.T) *rules.Registry {
	r, err := rules.NewRegistry(rules.Files{}, rules.Run{}, typed{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAttributeTypes(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		"BUILD.hcl": `typed "base" {
}
typed "t" {
  n     = "0.65"
  flag  = true
  list  = [1, 2.5, 3]
  map   = { a = "x", b = 2 }
  obj   = { lr = 2e-5, epochs = 3 }
  any   = { nested = [1, "two", { three = 3 }] }
  model = ":base"
  mods  = {
    zeta  = "//:base"
    alpha = ":base/adapter.gguf"
  }
}
`,
	})
	tg := find(t, mustLoad(t, root, Options{Rules: registry(t)}), "//:t")
	want := map[string]cty.Value{
		"n":    cty.NumberFloatVal(0.65),
		"flag": cty.True,
		"list": cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberFloatVal(2.5), cty.NumberIntVal(3)}),
		"map":  cty.MapVal(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.StringVal("2")}),
		"obj":  cty.ObjectVal(map[string]cty.Value{"lr": cty.NumberFloatVal(2e-5), "epochs": cty.NumberIntVal(3)}),
	}
	for name, w := range want {
		if got := tg.Attrs[name]; !got.RawEquals(w) && !got.Equals(w).True() {
			t.Errorf("%s = %#v, want %#v", name, got, w)
		}
	}
	if any := tg.Attrs["any"]; !any.Type().IsObjectType() || any.GetAttr("nested").LengthInt() != 3 {
		t.Errorf("any = %#v", any)
	}
	base := label.Label{Name: "base"}
	wantIn := []target.Input{
		{Attr: "model", Label: base, Pos: posAt("BUILD.hcl", 10, 11)},
		{Attr: "mods", Key: "alpha", Label: label.Label{Name: "base", Sub: "adapter.gguf"}, Pos: posAt("BUILD.hcl", 13, 13)},
		{Attr: "mods", Key: "zeta", Label: base, Pos: posAt("BUILD.hcl", 12, 13)},
	}
	if !reflect.DeepEqual(tg.Inputs, wantIn) {
		t.Errorf("inputs =\n%+v\nwant\n%+v", tg.Inputs, wantIn)
	}
}

// A block may stand for an object attribute: where_metric { eval = ":x" }.
func TestAttributeBlocks(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		"BUILD.hcl": `typed "base" {
}
typed "t" {
  obj {
    lr     = 2e-5
    epochs = 3
  }
  mods {
    zeta = ":base"
  }
}
`,
	})
	tg := find(t, mustLoad(t, root, Options{Rules: registry(t)}), "//:t")
	want := cty.ObjectVal(map[string]cty.Value{"lr": cty.NumberFloatVal(2e-5), "epochs": cty.NumberIntVal(3)})
	if got := tg.Attrs["obj"]; !got.Equals(want).True() {
		t.Errorf("obj = %#v, want %#v", got, want)
	}
	wantIn := []target.Input{{Attr: "mods", Key: "zeta", Label: label.Label{Name: "base"}, Pos: posAt("BUILD.hcl", 9, 12)}}
	if !reflect.DeepEqual(tg.Inputs, wantIn) {
		t.Errorf("inputs = %+v, want %+v", tg.Inputs, wantIn)
	}
	for name, c := range map[string]struct{ body, want string }{
		"twice":  {"obj = { lr = 1, epochs = 1 }\n  obj {\n    lr = 2\n    epochs = 2\n  }", "obj is set twice"},
		"dup":    {"obj {\n    lr = 1\n    epochs = 1\n  }\n  obj {\n    lr = 2\n    epochs = 2\n  }", "duplicate obj block"},
		"label":  {"obj \"x\" {\n    lr = 1\n  }", "a obj block takes no label"},
		"nested": {"obj {\n    inner {\n    }\n  }", `unexpected block "inner" in a obj block`},
		"type":   {"obj {\n    lr = \"fast\"\n    epochs = 1\n  }", `attribute "obj": expected object`},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeWorkspace(t, map[string]string{"BUILD.hcl": "typed \"t\" {\n  " + c.body + "\n}\n"})
			_, err := Load(root, Options{Rules: registry(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// An Ordered attribute written as an object literal keeps its keys' order
// beside it; the order attribute is not something users write or see.
func TestOrderedAttribute(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		"BUILD.hcl": "typed \"t\" {\n  ord = { zeta = [1], alpha = [2], mid = [3] }\n}\n",
	})
	tg := find(t, mustLoad(t, root, Options{Rules: registry(t)}), "//:t")
	got := tg.Attrs[rules.OrderOf("ord")]
	want := cty.ListVal([]cty.Value{cty.StringVal("zeta"), cty.StringVal("alpha"), cty.StringVal("mid")})
	if !got.RawEquals(want) {
		t.Errorf("order = %#v, want %#v", got, want)
	}
	root = writeWorkspace(t, map[string]string{"BUILD.hcl": "typed \"t\" {\n  nope = 1\n}\n"})
	_, err := Load(root, Options{Rules: registry(t)})
	if err == nil || strings.Contains(err.Error(), ".order") || !strings.Contains(err.Error(), " ord)") {
		t.Errorf("unknown attribute: %v (want the accepted list without ord.order)", err)
	}
}
