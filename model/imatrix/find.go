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

// Find returns the importance matrix a consumer's imatrix input names,
// and its path inside the artifact (slash-separated: what llama-quantize's
// quantize.imatrix.file records, had it run there): path itself when it
// is a file (a label with a sub-path, //models:calib/imatrix.gguf; its
// base name), else the one imatrix.gguf at or below the directory path (an
// imatrix or calibrate target's staged artifact; "imatrix.gguf" for both).
func Find(path string) (file, rel string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("imatrix: %w", err)
	}
	if !st.IsDir() {
		return path, filepath.Base(path), nil
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
		return "", "", fmt.Errorf("imatrix: looking for %s in %s: %w", File, path, err)
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("imatrix: %s holds no %s: name an imatrix target, or a calibrate target with an imatrix attribute", path, File)
	case 1:
		r, err := filepath.Rel(path, found[0])
		if err != nil {
			return "", "", err
		}
		return found[0], filepath.ToSlash(r), nil
	}
	return "", "", fmt.Errorf("imatrix: %s holds %d files named %s (%s, %s, ...); name one (//pkg:target/path/%s)", path, len(found), File, found[0], found[1], File)
}
