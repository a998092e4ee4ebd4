package hcl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogumi/cogumi/rules"
)

// FuzzLoadSettings is FuzzLoad for the workspace's settings file
// (cogumi.hcl: workspace, variables, locals, cache, remote_cache,
// toolchains, executors), which every command loads first: whatever its
// bytes, Load returns a workspace or Diagnostics, never panics, and agrees
// with itself when it loads again from its cache.
func FuzzLoadSettings(f *testing.F) {
	f.Add([]byte("workspace {\n  name = \"w\"\n}\nvariable \"cmd\" {\n  default = \"true\"\n}\n"))
	f.Add([]byte("workspace {\n  name = \"w\"\n}\nvariable \"remote_url\" {\n  default = \"\"\n}\nremote_cache {\n  url      = var.remote_url\n  endpoint = \"http://127.0.0.1:9000\"\n  upload   = false\n}\n"))
	f.Add([]byte("workspace {\n  name = \"w\"\n}\nvariable \"python\" {\n  default = \"python3\"\n}\ntoolchain \"python\" {\n  command = var.python\n}\nexecutor \"cluster\" {\n  slurm {\n    partition = \"gpu\"\n  }\n}\n"))
	f.Add([]byte("workspace {\n  name = \"w\"\n}\ncache {\n  dir = \"/tmp/c\"\n}\nlocals {\n  n = 3\n  m = local.n\n}\n"))
	f.Add([]byte("variable \"cmd\" {\n  default = {\n"))
	reg := rules.Default()
	f.Fuzz(func(t *testing.T, settings []byte) {
		root := t.TempDir()
		files := map[string]string{
			SettingsFile: string(settings),
			BuildFile:    "run \"x\" {\n  outs    = [\"o\"]\n  command = var.cmd\n}\n",
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		opts := Options{Rules: reg, CacheFile: filepath.Join(root, "cogumi-out", "cache")}
		ws, err := Load(root, opts)
		if _, err2 := Load(root, opts); (err == nil) != (err2 == nil) {
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
