// Package python holds the Python support files that cogumi stages into
// every python action: today cogumi_safetensors.py, a numpy/torch-only
// safetensors reader and writer, because Debian's PyTorch 1.13 cannot read
// safetensors and Debian has no package for the safetensors library.
//
// The files are embedded in the cogumi binary, so what an action imports is
// exactly what this build of cogumi ships; the engine puts the staging
// directory on PYTHONPATH and the module's digest into the action key.
package python

import (
	_ "embed" // the Python sources below
	"fmt"
	"os"
	"path/filepath"
)

// SafetensorsFile is the module's file name; it is imported as
// cogumi_safetensors.
const SafetensorsFile = "cogumi_safetensors.py"

//go:embed cogumi_safetensors.py
var safetensorsModule string

// SafetensorsModule returns the module's source.
func SafetensorsModule() string { return safetensorsModule }

// Stage writes the support modules into dir (created if missing), each
// through a temporary file renamed into place, so that a concurrent reader
// never imports half a module.
func Stage(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("staging python modules: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".cogumi-*.py.tmp")
	if err != nil {
		return fmt.Errorf("staging python modules: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.WriteString(safetensorsModule); err != nil {
		tmp.Close()
		return fmt.Errorf("staging %s in %s: %w", SafetensorsFile, dir, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("staging %s in %s: %w", SafetensorsFile, dir, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("staging %s in %s: %w", SafetensorsFile, dir, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, SafetensorsFile)); err != nil {
		return fmt.Errorf("staging %s in %s: %w", SafetensorsFile, dir, err)
	}
	return nil
}
