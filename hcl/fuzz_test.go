package hcl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/rules"
)

// FuzzLoad writes the input as the root BUILD.hcl of a small workspace
// (with variables, locals, a source file and another package to refer to)
// and loads it: Load must return a workspace or Diagnostics, never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("run \"x\" {\n  srcs    = [\"a.txt\", \"//lib:l\"]\n  outs    = [\"o\"]\n  command = var.cmd\n}\n"))
	f.Add([]byte("files \"f\" {\n  srcs = glob(\"**\")\n}\n"))
	f.Add([]byte("locals {\n  a = local.b\n  b = local.a\n}\n"))
	f.Add([]byte("run \"x\" {\n  outs = [\n"))
	reg := rules.Default()
	f.Fuzz(func(t *testing.T, src []byte) {
		root := t.TempDir()
		files := map[string]string{
			SettingsFile:    "variable \"cmd\" {\n  default = \"true\"\n}\nlocals {\n  n = 3\n}\n",
			"a.txt":         "a",
			"lib/BUILD.hcl": "files \"l\" {\n  srcs = [\"b.txt\"]\n}\n",
			"lib/b.txt":     "b",
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
		if err := os.WriteFile(filepath.Join(root, BuildFile), src, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{Rules: reg, CacheFile: filepath.Join(root, "cogumi-out", "cache")}
		ws, err := Load(root, opts)
		if again, err2 := Load(root, opts); (err == nil) != (err2 == nil) || (ws != nil && again.FromCache != len(again.Files)-1) {
			t.Fatalf("load from the cache differs: %v / %v", err, err2)
		}
		if err != nil {
			var ds Diagnostics
			if !errors.As(err, &ds) || len(ds) == 0 || ws != nil {
				t.Fatalf("Load = %v, %v; want nil and Diagnostics", ws, err)
			}
			_ = ds.Error()
			return
		}
		if ws == nil || len(ws.Order) != len(ws.Targets) {
			t.Fatalf("Load returned %v without an error", ws)
		}
	})
}
