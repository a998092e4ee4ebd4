package rules

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/awq"
)

type shared struct {
	Name string `cogumi:"name,key,required" doc:"a name"`
}

type testParams struct {
	shared
	Count  int                `cogumi:"count,nokey" default:"4" doc:"how many"`
	Ratio  *float64           `cogumi:"ratio,key" doc:"a fraction"`
	Scope  string             `cogumi:"scope,key" default:"tensor" doc:"where"`
	Tags   []string           `cogumi:"tags,key" doc:"tags"`
	Limits map[string]float64 `cogumi:"limits,key" doc:"limits"`
	Any    cty.Value          `cogumi:"any,key" doc:"anything"`
	Where  *rowexpr.Expr      `cogumi:"where,key,row=bool" doc:"a filter"`
	Model  string             `cogumi:"model,key,input=label" doc:"a label"`
}

func TestAttrsOf(t *testing.T) {
	want := []Attr{
		{Name: "name", Type: cty.String, Required: true, Key: InKey, Doc: "a name"},
		{Name: "count", Type: cty.Number, Key: NotInKey, Doc: "how many", Default: "4"},
		{Name: "ratio", Type: cty.Number, Key: InKey, Doc: "a fraction"},
		{Name: "scope", Type: cty.String, Key: InKey, Doc: "where", Default: "tensor"},
		{Name: "tags", Type: cty.List(cty.String), Key: InKey, Doc: "tags"},
		{Name: "limits", Type: cty.Map(cty.Number), Key: InKey, Doc: "limits"},
		{Name: "any", Type: cty.DynamicPseudoType, Key: InKey, Doc: "anything"},
		{Name: "where", Type: cty.Bool, Row: true, Key: InKey, Doc: "a filter"},
		{Name: "model", Type: cty.String, Input: LabelInput, Key: InKey, Doc: "a label"},
	}
	if got := attrsOf[testParams](); !reflect.DeepEqual(got, want) {
		t.Errorf("attrsOf =\n%#v\nwant\n%#v", got, want)
	}
}

func TestDecode(t *testing.T) {
	tg := &target.Target{Attrs: map[string]cty.Value{
		"name":   cty.StringVal("n"),
		"tags":   cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"limits": cty.MapVal(map[string]cty.Value{"x": cty.NumberFloatVal(1.5)}),
		"any":    cty.NumberIntVal(3),
		"where":  cty.True,
	}}
	p, errs := decode[testParams](tg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if p.Name != "n" || p.Count != 4 || p.Ratio != nil || p.Scope != "tensor" || !reflect.DeepEqual(p.Tags, []string{"a", "b"}) ||
		p.Limits["x"] != 1.5 || !p.Any.RawEquals(cty.NumberIntVal(3)) || p.Where == nil {
		t.Errorf("decoded %+v", p)
	}
	tg.Attrs["ratio"] = cty.NumberFloatVal(0.25)
	tg.Attrs["count"] = cty.NumberIntVal(7)
	if p, _ = decode[testParams](tg); p.Ratio == nil || *p.Ratio != 0.25 || p.Count != 7 {
		t.Errorf("decoded %+v", p)
	}
}

func TestDecodeNumberErrors(t *testing.T) {
	for v, want := range map[string]cty.Value{
		"2.5 is not a whole number": cty.NumberFloatVal(2.5),
		"1e+30 is out of range":     cty.MustParseNumberVal("1e30"),
	} {
		_, errs := decode[testParams](&target.Target{Attrs: map[string]cty.Value{"name": cty.StringVal("n"), "count": want}})
		if len(errs) != 1 || errs[0].Attr != "count" || errs[0].Msg != v {
			t.Errorf("count = %#v: errors %v, want %q", want, errs, v)
		}
	}
}

// restatesDefault finds "(default 4)", "default: x", "; the default" in a
// doc ("fastest/default/better" names a level).
var restatesDefault = regexp.MustCompile(`(?i)\(default|default[ :]|the default|; default`)

// A default is declared once, in its tag: the doc says what the value
// means, and cogumi help shows the default beside it.
func TestDefaultsDeclaredOnce(t *testing.T) {
	reg := Default()
	for _, rule := range reg.All() {
		for _, a := range rule.Schema().Attrs {
			if a.Default != "" && restatesDefault.MatchString(a.Doc) {
				t.Errorf("rule %s: attribute %q declares default %s and repeats a default in its doc: %q", rule.Kind(), a.Name, a.Default, a.Doc)
			}
		}
	}
}

func TestMalformedDeclarations(t *testing.T) {
	type undecided struct {
		X int `cogumi:"x" doc:"x"`
	}
	if a := attrsOf[undecided](); a[0].Key != keyUndecided {
		t.Error("an attribute without key or nokey must stay undecided (TestSchemasDecideKey)")
	}
	for name, f := range map[string]func(){
		"pointer default": func() {
			type p struct {
				X *int `cogumi:"x,key" default:"1" doc:"x"`
			}
			attrsOf[p]()
		},
		"bad default": func() {
			type p struct {
				X int `cogumi:"x,key" default:"many" doc:"x"`
			}
			attrsOf[p]()
		},
		"no tag": func() {
			type p struct{ X int }
			attrsOf[p]()
		},
		"unknown option": func() {
			type p struct {
				X int `cogumi:"x,key,secret" doc:"x"`
			}
			attrsOf[p]()
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// The awq package owns these defaults; the tags repeat them for help.
func TestAWQDefaults(t *testing.T) {
	p, errs := decode[awqParams](&target.Target{Attrs: map[string]cty.Value{}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if o := p.options(); o.Target != awq.TargetQ4_K || o.Grid != awq.DefaultGrid || o.Bits != 4 || o.SearchStride != 0 {
		t.Errorf("defaults %+v, want target %s, grid %d, bits 4, no stride", o, awq.TargetQ4_K, awq.DefaultGrid)
	}
}
