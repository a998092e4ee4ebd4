package hcl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/label"
	"github.com/cogumi/cogumi/rules"
	"github.com/cogumi/cogumi/target"
)

func posAt(file string, line, col int) target.Pos {
	return target.Pos{File: file, Line: line, Col: col}
}

// writeWorkspace writes files (path -> text) under a new directory; a
// workspace without cogumi.hcl gets an empty one.
func writeWorkspace(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if _, ok := files[SettingsFile]; !ok {
		files[SettingsFile] = ""
	}
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func mustLoad(t *testing.T, root string, opts Options) *Workspace {
	t.Helper()
	ws, err := Load(root, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ws
}

func find(t *testing.T, ws *Workspace, l string) *target.Target {
	t.Helper()
	lab, err := label.Parse(l, "")
	if err != nil {
		t.Fatal(err)
	}
	i, ok := ws.Index[lab]
	if !ok {
		t.Fatalf("no target %s", l)
	}
	return ws.Targets[i]
}

func TestLoad(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		SettingsFile: "workspace {\n  name = \"demo\"\n}\ncache {\n  dir = \"build-cache\"\n}\n",
		"data/BUILD.hcl": `files "raw" {
  srcs = glob("*.jsonl")
}
`,
		"data/b.jsonl":    "b",
		"data/a.jsonl":    "a",
		"models/a.txt":    "a",
		"models/sub/b.py": "b",
		"models/BUILD.hcl": `run "merged" {
  srcs    = ["a.txt", "//data:raw", ":prep", "sub/b.py", "//data:raw/a.jsonl"]
  outs    = ["merged.txt"]
  command = "cat $SRCS > $OUT/merged.txt"
  env     = { LANG = "C" }
  executor = "local"
  resources {
    cpus       = 1.5
    memory     = "512MiB"
    gpus       = 1
    gpu_type   = "h100"
    gpu_memory = "80GB"
    time       = "1h30m"
  }
}

run "prep" {
  outs    = ["p"]
  command = "echo > $OUT/p"
}
`,
	})
	ws := mustLoad(t, root, Options{})
	if ws.Name != "demo" || ws.CacheDir != filepath.Join(root, "build-cache") {
		t.Errorf("Name, CacheDir = %q, %q", ws.Name, ws.CacheDir)
	}
	var labels []string
	for _, tg := range ws.Targets {
		labels = append(labels, tg.Label.String())
	}
	if want := []string{"//data:raw", "//models:merged", "//models:prep"}; !reflect.DeepEqual(labels, want) {
		t.Errorf("targets = %v, want %v", labels, want)
	}
	m := find(t, ws, "//models:merged")
	wantInputs := []target.Input{
		{Attr: "srcs", File: "models/a.txt", Pos: posAt("models/BUILD.hcl", 2, 14)},
		{Attr: "srcs", Label: label.Label{Pkg: "data", Name: "raw"}, Pos: posAt("models/BUILD.hcl", 2, 23)},
		{Attr: "srcs", Label: label.Label{Pkg: "models", Name: "prep"}, Pos: posAt("models/BUILD.hcl", 2, 37)},
		{Attr: "srcs", File: "models/sub/b.py", Pos: posAt("models/BUILD.hcl", 2, 46)},
		{Attr: "srcs", Label: label.Label{Pkg: "data", Name: "raw", Sub: "a.jsonl"}, Pos: posAt("models/BUILD.hcl", 2, 58)},
	}
	if !reflect.DeepEqual(m.Inputs, wantInputs) {
		t.Errorf("inputs =\n%+v\nwant\n%+v", m.Inputs, wantInputs)
	}
	wantRes := target.Resources{CPUs: 1.5, Memory: 512 << 20, GPUs: 1, GPUType: "h100", GPUMemory: "80GB", Time: 90 * time.Minute}
	if m.Resources != wantRes || m.Executor != "local" {
		t.Errorf("resources = %+v, executor %q", m.Resources, m.Executor)
	}
	if m.Pos != posAt("models/BUILD.hcl", 1, 1) || m.AttrPos["outs"] != posAt("models/BUILD.hcl", 3, 3) ||
		m.AttrPos["resources.memory"] != posAt("models/BUILD.hcl", 9, 5) {
		t.Errorf("Pos = %v, AttrPos = %v", m.Pos, m.AttrPos)
	}
	if got := m.StringMap("env"); !reflect.DeepEqual(got, map[string]string{"LANG": "C"}) {
		t.Errorf("env = %v", got)
	}
	raw := find(t, ws, "//data:raw")
	if got := raw.Strings("srcs"); !reflect.DeepEqual(got, []string{"a.jsonl", "b.jsonl"}) {
		t.Errorf("glob srcs = %v", got)
	}
	pos := make(map[int]int)
	for i, n := range ws.Order {
		pos[n] = i
	}
	for i, tg := range ws.Targets {
		for _, d := range tg.Deps() {
			if pos[ws.Index[d]] > pos[i] {
				t.Errorf("Order puts %s after %s", d, tg.Label)
			}
		}
	}
	if len(ws.Files) != 3 || !strings.Contains(string(ws.Files["data/BUILD.hcl"]), "glob") {
		t.Errorf("Files = %v", ws.Files)
	}
}

func TestVariables(t *testing.T) {
	files := map[string]string{
		SettingsFile: `
variable "model" {
  default     = "tiny"
  description = "which model"
}
variable "epochs" {
  type    = number
  default = 3
}
variable "fast" {
  default = false
}
variable "tags" {
  type    = list(string)
  default = ["a"]
}
variable "params" {
  default = { lr = 0.1 }
}
variable "required" {}
`,
		"BUILD.hcl": `run "x" {
  outs    = ["o"]
  command = "${var.model} ${var.epochs + 1} ${var.fast} ${join(",", var.tags)} ${var.params.lr} ${var.required}"
}
`,
	}
	root := writeWorkspace(t, files)
	tests := []struct {
		name string
		vars map[string]string
		env  []string
		want string
	}{
		{"defaults", map[string]string{"required": "r"}, nil, "tiny 4 false a 0.1 r"},
		{"env", nil, []string{"COGUMI_VAR_model=env", "COGUMI_VAR_required=e", "COGUMI_VAR_epochs=9"}, "env 10 false a 0.1 e"},
		{"var over env", map[string]string{"model": "flag", "required": "f"}, []string{"COGUMI_VAR_model=env"}, "flag 4 false a 0.1 f"},
		{"typed", map[string]string{"required": "", "fast": "true", "tags": `["x", "y"]`, "params": `{ lr = 2 }`}, nil, "tiny 4 true x,y 2 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := mustLoad(t, root, Options{Vars: tt.vars, Env: tt.env})
			if got := find(t, ws, "//:x").String("command"); got != tt.want {
				t.Errorf("command = %q, want %q", got, tt.want)
			}
		})
	}
	bad := []struct {
		vars map[string]string
		want string
	}{
		{nil, `variable "required" has no value`},
		{map[string]string{"required": "r", "epochs": "many"}, `variable "epochs": value from --var epochs: expected number, got "many"`},
		{map[string]string{"required": "r", "tags": `["a",`}, `variable "tags": value from --var tags: expected list of string written in HCL`},
		{map[string]string{"required": "r", "nope": "1"}, `--var nope: no variable "nope" is declared in cogumi.hcl`},
	}
	for _, tt := range bad {
		_, err := Load(root, Options{Vars: tt.vars})
		var ds Diagnostics
		if !errors.As(err, &ds) || len(ds) != 1 || !strings.Contains(ds[0].Msg, tt.want) {
			t.Errorf("Load with %v = %v, want one diagnostic %q", tt.vars, err, tt.want)
		}
	}
}

func TestLocals(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		SettingsFile: `
variable "size" {
  default = "7b"
}
locals {
  full   = "${local.prefix}-${var.size}"
  prefix = "llama"
}
`,
		"m/BUILD.hcl": `
locals {
  outs = [for s in local.suffixes : "${local.full}.${s}"]
}
locals {
  suffixes = ["bin", "json"]
}
run "x" {
  outs    = local.outs
  command = upper(local.full)
}
`,
	})
	x := find(t, mustLoad(t, root, Options{}), "//m:x")
	if got := x.Strings("outs"); !reflect.DeepEqual(got, []string{"llama-7b.bin", "llama-7b.json"}) {
		t.Errorf("outs = %v", got)
	}
	if got := x.String("command"); got != "LLAMA-7B" {
		t.Errorf("command = %q", got)
	}
}

func TestGlobAndFile(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		"p/BUILD.hcl": `files "every" {
  srcs = glob("**")
}
files "deep" {
  srcs = glob("**/*.txt")
}
files "top" {
  srcs = glob("*.txt")
}
files "mid" {
  srcs = glob("d/*/x.txt")
}
run "t" {
  outs    = ["o"]
  command = file("prompt.tmpl")
}
`,
		"p/b.txt":             "",
		"p/a.txt":             "",
		"p/prompt.tmpl":       "Hello {{name}}\n",
		"p/.hidden.txt":       "",
		"p/d/e/x.txt":         "",
		"p/d/c.txt":           "",
		"p/d/f/x.txt":         "",
		"p/.git/y.txt":        "",
		"p/sub/BUILD.hcl":     "",
		"p/sub/z.txt":         "",
		"p/node_modules/n.js": "",
	})
	ws := mustLoad(t, root, Options{})
	for l, want := range map[string][]string{
		"//p:every": {"BUILD.hcl", "a.txt", "b.txt", "d/c.txt", "d/e/x.txt", "d/f/x.txt", "prompt.tmpl"},
		"//p:deep":  {"a.txt", "b.txt", "d/c.txt", "d/e/x.txt", "d/f/x.txt"},
		"//p:top":   {"a.txt", "b.txt"},
		"//p:mid":   {"d/e/x.txt", "d/f/x.txt"},
	} {
		if got := find(t, ws, l).Strings("srcs"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s srcs = %v, want %v", l, got, want)
		}
	}
	if got := find(t, ws, "//p:t").String("command"); got != "Hello {{name}}\n" {
		t.Errorf("file() = %q", got)
	}
}

func TestPackagesSkipped(t *testing.T) {
	root := writeWorkspace(t, map[string]string{
		"a/BUILD.hcl":                "",
		"a/b/BUILD.hcl":              "",
		".hidden/BUILD.hcl":          "bad bad",
		"cogumi-out/x/BUILD.hcl":     "bad bad",
		"node_modules/m/BUILD.hcl":   "bad bad",
		"elsewhere/inner/BUILD.hcl":  "",
		"BUILD.hcl":                  "",
		"x/y/z/not-a-build-file.hcl": "bad bad",
	})
	if err := os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	pkgs, ds := findPackages(root)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	if want := []string{"", "a", "a/b", "elsewhere/inner"}; !reflect.DeepEqual(pkgs, want) {
		t.Errorf("packages = %q, want %q", pkgs, want)
	}
	mustLoad(t, root, Options{})
}

func TestFindRoot(t *testing.T) {
	root := writeWorkspace(t, map[string]string{"a/b/BUILD.hcl": ""})
	got, err := FindRoot(filepath.Join(root, "a", "b"))
	if err != nil || got != root {
		t.Errorf("FindRoot = %q, %v; want %q", got, err, root)
	}
	if _, err := FindRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no cogumi.hcl") {
		t.Errorf("FindRoot outside a workspace = %v", err)
	}
}

func TestCacheDirHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	root := writeWorkspace(t, map[string]string{SettingsFile: "cache {\n  dir = \"~/.cache/x\"\n}\n"})
	if ws := mustLoad(t, root, Options{}); ws.CacheDir != filepath.Join(home, ".cache/x") || ws.Name != filepath.Base(root) {
		t.Errorf("CacheDir, Name = %q, %q", ws.CacheDir, ws.Name)
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]int64{
		"1000": 1000, "512MiB": 512 << 20, "64GiB": 64 << 30, "1GB": 1e9, "1.5 KB": 1500,
		"80gb": 80e9, "2Ti": 2 << 40, "16Mi": 16 << 20, "0": 0, "3B": 3,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "12XB", "1..5GB", "-1GB", "99999999999PB"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
	for in, want := range map[string]time.Duration{"12h": 12 * time.Hour, "30m": 30 * time.Minute, "90s": 90 * time.Second, "1h30m": 90 * time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "12", "soon", "-1h", "0s"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded", in)
		}
	}
}

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
