package imatrix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Find takes an imatrix target's artifact, a calibrate artifact beside
// calibration.safetensors, a file named directly, and refuses an artifact
// with none or several.
func TestFind(t *testing.T) {
	root := t.TempDir()
	write := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	im := write("models/im/" + File)
	nested := write("models/sub/deeper/" + File)
	cal := write("models/calib/" + File)
	write("models/calib/calibration.safetensors")
	write("models/calib/calibration.json")
	named := write("models/other/mine.gguf")
	write("models/none/calibration.safetensors")
	write("models/two/a/" + File)
	write("models/two/b/" + File)

	for _, c := range []struct{ in, want, rel string }{
		{filepath.Join(root, "models/im"), im, File},
		{filepath.Join(root, "models/calib"), cal, File},
		{filepath.Join(root, "models/sub"), nested, "deeper/" + File},
		{named, named, "mine.gguf"},
	} {
		got, rel, err := Find(c.in)
		if err != nil || got != c.want || rel != c.rel {
			t.Errorf("Find(%s) = %q, %q, %v; want %q, %q", c.in, got, rel, err, c.want, c.rel)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{filepath.Join(root, "models/none"), "holds no imatrix.gguf: name an imatrix target, or a calibrate target with an imatrix attribute"},
		{filepath.Join(root, "models/two"), "holds 2 files named imatrix.gguf"},
		{filepath.Join(root, "models/gone"), "no such file or directory"},
	} {
		if _, _, err := Find(c.in); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Find(%s): error %v, want one containing %q", c.in, err, c.msg)
		}
	}
}
