package toolchain

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindNodeLlama(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH")
	}
	root := t.TempDir()
	pkg := filepath.Join(root, "node_modules", "node-llama-cpp")
	if err := os.MkdirAll(filepath.Join(pkg, "dist", "cli"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pkg, "package.json"), []byte(`{"name":"node-llama-cpp","version":"9.8.7"}`), 0o644)
	os.WriteFile(filepath.Join(pkg, "dist", "cli", "cli.js"), nil, 0o755)
	bin := filepath.Join(root, "node_modules", ".bin")
	os.MkdirAll(bin, 0o755)
	if err := os.Symlink("../node-llama-cpp/dist/cli/cli.js", filepath.Join(bin, "node-llama-cpp")); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{filepath.Join(bin, "node-llama-cpp"), pkg, root} {
		v, err := FindNodeLlama(cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if v.Version != "9.8.7" || v.Root != root || v.KeyRecord() != "toolchain node-llama-cpp \"9.8.7\"\n" {
			t.Errorf("%s: %+v", cmd, v)
		}
	}
	if _, err := FindNodeLlama(filepath.Join(root, "missing")); err == nil || !strings.Contains(err.Error(), "npm install node-llama-cpp") {
		t.Errorf("missing command: %v", err)
	}
	other := t.TempDir()
	if _, err := FindNodeLlama(other); err == nil || !strings.Contains(err.Error(), "not inside a node-llama-cpp package") {
		t.Errorf("not a package: %v", err)
	}
}
