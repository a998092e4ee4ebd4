package hcl

import (
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// sameWorkspace fails unless a and b hold the same targets and order.
func sameWorkspace(t *testing.T, a, b *Workspace) {
	t.Helper()
	if a.Name != b.Name || a.CacheDir != b.CacheDir || !reflect.DeepEqual(a.Order, b.Order) ||
		!reflect.DeepEqual(a.Index, b.Index) || !reflect.DeepEqual(a.Files, b.Files) {
		t.Fatalf("workspaces differ: %q %q %v / %q %q %v", a.Name, a.CacheDir, a.Order, b.Name, b.CacheDir, b.Order)
	}
	if len(a.Targets) != len(b.Targets) {
		t.Fatalf("%d targets, then %d", len(a.Targets), len(b.Targets))
	}
	for i, x := range a.Targets {
		y := b.Targets[i]
		ax, ay := *x, *y
		ax.Attrs, ay.Attrs = nil, nil
		if !reflect.DeepEqual(ax, ay) {
			t.Errorf("target %d:\n%+v\n%+v", i, ax, ay)
		}
		if len(x.Attrs) != len(y.Attrs) {
			t.Errorf("%s: attrs %v, then %v", x.Label, x.Attrs, y.Attrs)
		}
		for k, v := range x.Attrs {
			if w, ok := y.Attrs[k]; !ok || !v.RawEquals(w) {
				t.Errorf("%s: attribute %s = %#v, then %#v", x.Label, k, v, w)
			}
		}
	}
}

func cacheBase() map[string]string {
	return map[string]string{
		SettingsFile: `variable "v" {
  default = "d"
}
locals {
  greeting = "hi"
}
`,
		"BUILD.hcl": `files "root" {
  srcs = glob("**/*.txt")
}
`,
		"top.txt": "",
		"m/BUILD.hcl": `locals {
  srcs = glob("data/*.txt")
}
run "x" {
  srcs    = concat(local.srcs, ["a.txt", "//:root"])
  outs    = ["o"]
  command = "${local.greeting} ${var.v} ${file("prompt.txt")}"
  env     = { N = "1" }
  resources {
    memory = "1GiB"
  }
}
typed "y" {
  n    = 1e300
  obj  = { lr = 0.1, epochs = 3 }
  any  = [null, toset(["a", "b"]), { k = [1, true] }, {}, [], tomap({})]
  mods = { a = ":x" }
}
`,
		"m/a.txt":        "",
		"m/prompt.txt":   "P",
		"m/data/1.txt":   "",
		"m/data/sub.txt": "",
	}
}

func TestLoadCache(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, root string)
		opts   Options
	}{
		{"nothing", func(*testing.T, string) {}, Options{}},
		{"BUILD edited", writeFile("m/BUILD.hcl", "run \"z\" {\n  outs    = [\"o\"]\n  command = \"true\"\n}\n"), Options{}},
		{"file globbed", writeFile("m/data/2.txt", ""), Options{}},
		{"globbed file gone", removeFile("m/data/1.txt"), Options{}},
		{"source gone", removeFile("m/a.txt"), Options{}},
		{"source now a directory", func(t *testing.T, root string) {
			removeFile("m/a.txt")(t, root)
			writeFile("m/a.txt/x", "")(t, root)
		}, Options{}},
		{"file() changed", writeFile("m/prompt.txt", "Q"), Options{}},
		{"settings edited", writeFile(SettingsFile, "locals {\n  greeting = \"bye\"\n}\nvariable \"v\" {\n  default = \"d\"\n}\n"), Options{}},
		{"var set", func(*testing.T, string) {}, Options{Vars: map[string]string{"v": "w"}}},
		{"env set", func(*testing.T, string) {}, Options{Env: []string{"COGUMI_VAR_v=e"}}},
		{"new sub-package", writeFile("m/data/BUILD.hcl", ""), Options{}},
		{"package removed", removeFile("BUILD.hcl"), Options{}},
		{"cache corrupt", func(t *testing.T, root string) {
			writeFile("cogumi-out/load-cache", "cogumi hcl load cache 1\ngarbage")(t, root)
		}, Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeWorkspace(t, cacheBase())
			cached := Options{Rules: registry(t), CacheFile: filepath.Join(root, "cogumi-out", "load-cache")}
			for i := range 2 {
				ws := mustLoad(t, root, cached)
				if ws.CacheWarning != nil || ws.FromCache != []int{0, 2}[i] {
					t.Fatalf("load %d: %d packages from the cache, warning %v", i, ws.FromCache, ws.CacheWarning)
				}
			}
			tt.change(t, root)
			fresh := tt.opts
			fresh.Rules = registry(t)
			opts := fresh
			opts.CacheFile = cached.CacheFile
			for range 2 { // once to refresh the cache, once from it
				want, werr := Load(root, fresh)
				got, gerr := Load(root, opts)
				switch {
				case (werr == nil) != (gerr == nil):
					t.Fatalf("fresh load: %v\ncached load: %v", werr, gerr)
				case werr != nil && werr.Error() != gerr.Error():
					t.Fatalf("fresh load: %v\ncached load: %v", werr, gerr)
				case werr == nil:
					sameWorkspace(t, want, got)
				}
			}
		})
	}
}

func TestLoadCacheRules(t *testing.T) {
	root := writeWorkspace(t, map[string]string{"BUILD.hcl": "files \"f\" {\n  srcs = [\"BUILD.hcl\"]\n}\n"})
	opts := Options{CacheFile: filepath.Join(t.TempDir(), "c")}
	mustLoad(t, root, opts)
	if ws := mustLoad(t, root, opts); ws.FromCache != 1 {
		t.Fatalf("FromCache = %d", ws.FromCache)
	}
	opts.Rules = registry(t) // another set of rules: nothing cached holds
	if ws := mustLoad(t, root, opts); ws.FromCache != 0 {
		t.Fatalf("FromCache with other rules = %d", ws.FromCache)
	}
}

func writeFile(rel, text string) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func removeFile(rel string) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCodecValues(t *testing.T) {
	third := new(big.Float).Quo(big.NewFloat(1), big.NewFloat(3))
	vals := []cty.Value{
		cty.StringVal(""), cty.StringVal("héllo"), cty.NumberIntVal(-3), cty.NumberFloatVal(0.65),
		cty.MustParseNumberVal("0.65"), cty.NumberVal(third), cty.PositiveInfinity, cty.True, cty.False,
		cty.NullVal(cty.String), cty.NullVal(cty.DynamicPseudoType), cty.ListValEmpty(cty.String),
		cty.ListVal([]cty.Value{cty.StringVal("a"), cty.NullVal(cty.String)}),
		cty.SetVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}), cty.SetValEmpty(cty.Bool),
		cty.MapVal(map[string]cty.Value{"k": cty.StringVal("v")}), cty.MapValEmpty(cty.Number),
		cty.EmptyTupleVal, cty.EmptyObjectVal,
		cty.TupleVal([]cty.Value{cty.NullVal(cty.DynamicPseudoType), cty.ObjectVal(map[string]cty.Value{
			"l": cty.ListVal([]cty.Value{cty.MapValEmpty(cty.String)}), "n": cty.NullVal(cty.List(cty.String)),
		})}),
	}
	for _, v := range vals {
		e := newEncoder()
		if err := e.value(v); err != nil {
			t.Errorf("encoding %#v: %v", v, err)
			continue
		}
		d := &decoder{data: e.buf}
		got := d.value()
		if d.err != nil || len(d.data) != 0 || !got.RawEquals(v) {
			t.Errorf("round trip of %#v = %#v, %v", v, got, d.err)
		}
	}
	if err := newEncoder().value(cty.UnknownVal(cty.String)); err == nil {
		t.Error("an unknown value was encoded")
	}
}

// TestCodecCoversTarget fails when a struct the load cache stores gains a
// field: add it to encoder.target and decoder.target, then here.
func TestCodecCoversTarget(t *testing.T) {
	for _, c := range []struct {
		v      any
		fields int
	}{{target.Target{}, 8}, {target.Input{}, 5}, {target.Resources{}, 6}, {target.Pos{}, 3}, {label.Label{}, 3}} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.fields {
			t.Errorf("%T has %d fields, the load cache stores %d", c.v, n, c.fields)
		}
	}
	tg := &target.Target{
		Label: label.Label{Pkg: "p", Name: "n"}, Kind: "run",
		Attrs:     map[string]cty.Value{"a": cty.StringVal("x")},
		Inputs:    []target.Input{{Attr: "srcs", Key: "k", File: "p/f", Label: label.Label{Pkg: "q", Name: "m", Sub: "s"}, Pos: posAt("p/BUILD.hcl", 2, 3)}},
		Resources: target.Resources{CPUs: 1.5, Memory: 7, GPUs: 2, GPUType: "h100", GPUMemory: "80GB", Time: 9},
		Executor:  "slurm", Pos: posAt("p/BUILD.hcl", 1, 1),
		AttrPos: map[string]target.Pos{"a": posAt("p/BUILD.hcl", 4, 5)},
	}
	e := newEncoder()
	if err := e.target(tg); err != nil {
		t.Fatal(err)
	}
	d := &decoder{data: e.buf}
	got := d.target()
	if d.err != nil || !reflect.DeepEqual(got.Inputs, tg.Inputs) || got.Resources != tg.Resources ||
		got.Executor != tg.Executor || got.Pos != tg.Pos || !reflect.DeepEqual(got.AttrPos, tg.AttrPos) ||
		got.Label != tg.Label || got.Kind != tg.Kind || !got.Attrs["a"].RawEquals(tg.Attrs["a"]) {
		t.Errorf("round trip:\n%+v\n%+v (%v)", got, tg, d.err)
	}
}

// FuzzDecodeEntry feeds arbitrary bytes to the cache decoder, which must
// fail cleanly, never panic or allocate without bound.
func FuzzDecodeEntry(f *testing.F) {
	e := newEncoder()
	if err := e.target(&target.Target{Kind: "run", Attrs: map[string]cty.Value{
		"x": cty.ObjectVal(map[string]cty.Value{"a": cty.ListVal([]cty.Value{cty.NumberIntVal(1)})}),
		"s": cty.SetVal([]cty.Value{cty.StringVal("a")}),
	}}); err != nil {
		f.Fatal(err)
	}
	f.Add(e.buf)
	f.Add([]byte{0, 0, 0, 1, tagList, tagList, tagSet, tagDynamic, 1, 5, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{data: data}
		d.target()
		d = &decoder{data: data}
		d.value()
	})
}

var _ rules.Rule = typed{}
