package toolchain

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// NodeLlama is a node-llama-cpp toolchain: the package that runs llama.cpp
// for rules that read GGUF files (eval, and cogumi route).
type NodeLlama struct {
	Command string // as configured: "tools/node_modules/.bin/node-llama-cpp"
	// Package is the node-llama-cpp package directory (holding its
	// package.json and its prebuilt llama.cpp binaries).
	Package string
	// Root is the directory whose node_modules holds the package: node
	// resolves "node-llama-cpp" from there.
	Root    string
	Version string // the package's version, "3.21.1"
	Node    string // node found on PATH
}

// KeyRecord is the version as labelled lines for an action key. The
// package version fixes the llama.cpp build it ships; paths are left out,
// as for python.
func (v NodeLlama) KeyRecord() string {
	return fmt.Sprintf("toolchain node-llama-cpp %q\n", v.Version)
}

// FindNodeLlama resolves a node-llama-cpp toolchain command: the package's
// bin entry (node_modules/.bin/node-llama-cpp, a symlink into the
// package), any file inside the package, the package directory, or a
// directory whose node_modules holds it. command must be absolute or
// relative to the current directory; the caller resolves workspace-relative
// paths. node comes from PATH.
func FindNodeLlama(command string) (NodeLlama, error) {
	v := NodeLlama{Command: command}
	fail := func(format string, args ...any) (NodeLlama, error) {
		return NodeLlama{}, fmt.Errorf("llama toolchain %q: %s", command, fmt.Sprintf(format, args...))
	}
	p, err := filepath.Abs(command)
	if err != nil {
		return fail("%v", err)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	} else {
		return fail("%v (install it with `npm install node-llama-cpp` and point command at node_modules/.bin/node-llama-cpp)", err)
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		if under := filepath.Join(p, "node_modules", "node-llama-cpp"); isPackage(under) {
			p = under
		}
	}
	for d := p; ; d = filepath.Dir(d) {
		if isPackage(d) {
			v.Package = d
			break
		}
		if filepath.Dir(d) == d {
			return fail("%s is not inside a node-llama-cpp package", p)
		}
	}
	b, err := os.ReadFile(filepath.Join(v.Package, "package.json"))
	if err != nil {
		return fail("%v", err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil || pkg.Version == "" {
		return fail("%s/package.json has no version", v.Package)
	}
	v.Version = pkg.Version
	if filepath.Base(filepath.Dir(v.Package)) != "node_modules" {
		return fail("the package %s is not in a node_modules directory", v.Package)
	}
	v.Root = filepath.Dir(filepath.Dir(v.Package))
	if v.Node, err = exec.LookPath("node"); err != nil {
		return fail("node is not on PATH: %v", err)
	}
	return v, nil
}

// isPackage reports whether dir holds node-llama-cpp's package.json.
func isPackage(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return false
	}
	var pkg struct{ Name string }
	return json.Unmarshal(b, &pkg) == nil && pkg.Name == "node-llama-cpp"
}
