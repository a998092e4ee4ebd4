package imatrix

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File is the name of the importance matrix in an artifact: an imatrix
// target's, and a calibrate target's that asks for one (its imatrix
// attribute, computed in the same action as its calibration).
const File = "imatrix.gguf"

// Find returns the importance matrix a consumer's imatrix input names:
// path itself when it is a file (a label with a sub-path,
// //models:calib/imatrix.gguf), else the one imatrix.gguf at or below the
// directory path (an imatrix or calibrate target's staged artifact).
func Find(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("imatrix: %w", err)
	}
	if !st.IsDir() {
		return path, nil
	}
	var found []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == File {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("imatrix: looking for %s in %s: %w", File, path, err)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("imatrix: %s holds no %s: name an imatrix target, or a calibrate target with an imatrix attribute", path, File)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("imatrix: %s holds %d files named %s (%s, %s, ...); name one (//pkg:target/path/%s)", path, len(found), File, found[0], found[1], File)
}
