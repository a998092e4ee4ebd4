package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// writeCheckFixture writes a file covering every dtype the Python package
// maps to torch, an empty tensor and a scalar, and returns the summary that
// testdata/check_safetensors.py must print for it.
func writeCheckFixture(t *testing.T, path string) string {
	t.Helper()
	decl := []Info{
		{Name: "f32", DType: F32, Shape: []int64{3, 5}},
		{Name: "f16", DType: F16, Shape: []int64{4, 2}},
		{Name: "bf16", DType: BF16, Shape: []int64{2, 3, 2}},
		{Name: "f64", DType: F64, Shape: []int64{3}},
		{Name: "i64", DType: I64, Shape: []int64{2}},
		{Name: "i32", DType: I32, Shape: []int64{2, 1}},
		{Name: "i16", DType: I16, Shape: []int64{3}},
		{Name: "i8", DType: I8, Shape: []int64{5}},
		{Name: "u8", DType: U8, Shape: []int64{7}},
		{Name: "mask", DType: BOOL, Shape: []int64{4}},
		{Name: "empty", DType: F32, Shape: []int64{0, 3}},
		{Name: "scalar", DType: F32, Shape: []int64{}},
	}
	meta := map[string]string{"format": "pt", "producer": "cogumi"}
	w, err := NewWriter(path, decl, meta)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i, d := range decl {
		data := make([]byte, int(d.NumElements())*d.DType.Size())
		if d.DType.IsFloat() {
			vals := make([]float32, d.NumElements())
			for j := range vals {
				vals[j] = float32(j-3) * 0.37 * float32(i+1)
			}
			EncodeF32(data, vals, d.DType)
		} else {
			for j := range data {
				data[j] = byte(j*7 + i)
				if d.DType == BOOL {
					data[j] &= 1
				}
			}
		}
		if err := w.WriteTensor(d.Name, data); err != nil {
			t.Fatal(err)
		}
		shape := make([]string, len(d.Shape))
		for j, s := range d.Shape {
			shape[j] = fmt.Sprint(s)
		}
		lines = append(lines, fmt.Sprintf("%s %s [%s] sha256:%x", d.Name, d.DType, strings.Join(shape, ", "), sha256.Sum256(data)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	m, _ := json.Marshal(meta) // sorted keys, compact, as json.dumps(sort_keys=True)
	return strings.Join(lines, "\n") + "\nmetadata " + string(m) + "\n"
}

// TestPythonCheckFixture writes a fixture for testdata/check_safetensors.py.
// With COGUMI_SAFETENSORS_CHECK_DIR set it leaves check.safetensors and
// expected.txt there, for a machine that has the Python package:
//
//	COGUMI_SAFETENSORS_CHECK_DIR=/tmp/st go test ./safetensors -run TestPythonCheckFixture -v
//	python3 model/safetensors/testdata/check_safetensors.py /tmp/st/check.safetensors /tmp/st/expected.txt
//
// When python3 can import safetensors here, the test runs the script itself.
func TestPythonCheckFixture(t *testing.T) {
	dir := os.Getenv("COGUMI_SAFETENSORS_CHECK_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "check.safetensors")
	want := writeCheckFixture(t, path)
	if err := os.WriteFile(filepath.Join(dir, "expected.txt"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("expected summary:\n%s", want)
	if exec.Command("python3", "-c", "import safetensors").Run() != nil {
		t.Skip("python3 cannot import safetensors here; run testdata/check_safetensors.py where it can")
	}
	var out bytes.Buffer
	cmd := exec.Command("python3", "testdata/check_safetensors.py", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("check_safetensors.py: %v\n%s", err, out.String())
	}
	if out.String() != want {
		t.Fatalf("Python reads:\n%s\nwant:\n%s", out.String(), want)
	}
}
