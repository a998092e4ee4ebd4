// Package python holds the Python support modules that cogumi stages into
// every python action: cogumi_safetensors.py, a numpy/torch-only safetensors
// reader and writer (Debian's PyTorch 1.13 cannot read safetensors and Debian
// has no package for the safetensors library), and the scripts of the rules
// that run Python (cogumi_*.py).
//
// The files are embedded in the cogumi binary, so what an action imports is
// exactly what this build of cogumi ships; the engine puts the staging
// directory on PYTHONPATH and the modules' digest into the action key. A
// script only some targets of a kind run (script_*.py, see Script) is
// keyed by its rule for those targets alone.
package python

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/cogumi/cogumi/internal/atomicfile"
)

// SafetensorsFile is the module's file name; it is imported as
// cogumi_safetensors.
const SafetensorsFile = "cogumi_safetensors.py"

//go:embed cogumi_*.py
var modules embed.FS

// Scripts (script_*.py) are programs that only some actions of a kind run:
// calibrate's, when the target also asks for an importance matrix. Unlike
// the modules they are neither staged nor in Contents, whose digest joins
// the key of every python action; the rule that runs one writes it beside
// its inputs (it imports the staged modules) and puts its digest into the
// keys of those actions alone (rules.KeyRecorder), so that adding or
// editing a script re-runs no other action.
//
//go:embed script_*.py
var scripts embed.FS

// Script returns the source of the script named name.
func Script(name string) ([]byte, error) {
	b, err := scripts.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("python: no script %s in this build of cogumi", name)
	}
	return b, nil
}

// SafetensorsModule returns the safetensors module's source.
func SafetensorsModule() string {
	b, _ := modules.ReadFile(SafetensorsFile) // embedded: cannot fail
	return string(b)
}

// Files returns every module's file name, sorted.
func Files() []string {
	names, _ := fs.Glob(modules, "cogumi_*.py") // embedded: cannot fail
	sort.Strings(names)
	return names
}

// Contents returns every module's name and source, in Files order, as one
// byte string: what the staging directory's digest is computed over.
func Contents() []byte {
	var out []byte
	for _, n := range Files() {
		b, _ := modules.ReadFile(n)
		out = fmt.Appendf(out, "%s %d\n", n, len(b))
		out = append(out, b...)
	}
	return out
}

// Stage writes the support modules into dir (created if missing), each
// through a temporary file renamed into place, so that a concurrent reader
// never imports half a module. A module already there with the same bytes
// is left alone: every command stages them, and reading is cheaper than
// rewriting.
func Stage(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("staging python modules: %w", err)
	}
	for _, name := range Files() {
		b, _ := modules.ReadFile(name)
		if old, err := os.ReadFile(filepath.Join(dir, name)); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := stageFile(dir, name, b); err != nil {
			return fmt.Errorf("staging %s in %s: %w", name, dir, err)
		}
	}
	return nil
}

func stageFile(dir, name string, b []byte) error {
	return atomicfile.WriteFile(filepath.Join(dir, name), b, 0o644)
}
