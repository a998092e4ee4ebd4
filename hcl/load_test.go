package hcl

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
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
