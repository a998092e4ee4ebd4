package python

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// torchPython finds an interpreter with torch and numpy: $COGUMI_TEST_PYTHON,
// else Debian's /usr/bin/python3 (python3-torch installs there; a pyenv or
// venv python3 first on PATH often lacks torch), else python3 on PATH.
// Without one the test is skipped, except in CI, where it must run.
func torchPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3", "python3"}
	if p := os.Getenv("COGUMI_TEST_PYTHON"); p != "" {
		candidates = []string{p}
	}
	for _, p := range candidates {
		if err := exec.Command(p, "-c", "import torch, numpy").Run(); err == nil {
			return p
		}
	}
	msg := "no python3 with torch and numpy (apt-get install -y --no-install-recommends python3-torch python3-numpy libopenblas0-pthread)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestStage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "py")
	if err := Stage(dir); err != nil {
		t.Fatal(err)
	}
	if err := Stage(dir); err != nil { // again, over the first copy
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, Files()) || !slices.Contains(names, SafetensorsFile) {
		t.Fatalf("staged %v, want exactly %v (with %s)", names, Files(), SafetensorsFile)
	}
	b, err := os.ReadFile(filepath.Join(dir, SafetensorsFile))
	if err != nil || string(b) != SafetensorsModule() || !strings.Contains(string(b), "def load_file(") {
		t.Fatalf("staged module differs from the embedded one (%v)", err)
	}
}

func TestSafetensorsModule(t *testing.T) {
	py := torchPython(t)
	cmd := exec.Command(py, "-m", "unittest", "-v", "test_cogumi_safetensors")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s -m unittest:\n%s", py, out)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTrainExample runs examples/gpu/train.py on the CPU the way cogumi
// runs it (the module staged on PYTHONPATH, the environment contract) and
// checks its checkpoint: Hugging Face names, config, metrics, and the same
// bytes from a second run with the same seed.
func TestTrainExample(t *testing.T) {
	py := torchPython(t)
	staged := t.TempDir()
	if err := Stage(staged); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	params := filepath.Join(work, "params.json")
	if err := os.WriteFile(params, []byte(`{"steps": 6, "seed": 1, "log_every": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	train := func(out string) {
		cmd := exec.Command(py, filepath.Join("..", "..", "examples", "gpu", "train.py"))
		cmd.Env = append(os.Environ(),
			"PYTHONPATH="+staged, "PYTHONDONTWRITEBYTECODE=1", "CUDA_VISIBLE_DEVICES=",
			"COGUMI_OUT="+out, "COGUMI_PARAMS="+params,
			"COGUMI_INPUT_DATASET="+filepath.Join("..", "..", "examples", "gpu", "data", "tiny.jsonl"))
		b, err := cmd.CombinedOutput()
		t.Logf("train.py:\n%s", b)
		if err != nil {
			t.Fatal(err)
		}
	}
	out1, out2 := filepath.Join(work, "out1"), filepath.Join(work, "out2")
	train(out1)
	for _, f := range []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "metrics.json"} {
		if _, err := os.Stat(filepath.Join(out1, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	header := safetensorsHeader(t, filepath.Join(out1, "model.safetensors"))
	want := map[string][]int{
		"model.embed_tokens.weight":                      {258, 256},
		"model.layers.0.self_attn.q_proj.weight":         {256, 256},
		"model.layers.0.self_attn.k_proj.weight":         {128, 256}, // 2 kv heads of 64
		"model.layers.1.mlp.gate_proj.weight":            {512, 256},
		"model.layers.1.mlp.down_proj.weight":            {256, 512},
		"model.layers.1.post_attention_layernorm.weight": {256},
		"model.norm.weight":                              {256},
		"lm_head.weight":                                 {258, 256},
	}
	for name, shape := range want {
		got, ok := header[name]
		if !ok || got.DType != "F32" || !slices.Equal(got.Shape, shape) {
			t.Errorf("%s: %+v (present %v), want F32 %v", name, got, ok, shape)
		}
	}
	if n := len(header); n != 2+9*2+1 {
		t.Errorf("%d tensors, want 21 (embeddings, 9 per layer, norm, head)", n)
	}
	var cfg map[string]any
	readJSON(t, filepath.Join(out1, "config.json"), &cfg)
	if cfg["architectures"].([]any)[0] != "LlamaForCausalLM" || cfg["num_key_value_heads"].(float64) != 2 {
		t.Errorf("config.json = %v", cfg)
	}
	var m map[string]any
	readJSON(t, filepath.Join(out1, "metrics.json"), &m)
	for _, k := range []string{"loss", "steps", "seconds", "start", "end", "device_name", "gpu_uuid", "cuda_visible_devices"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics.json lacks %s: %v", k, m)
		}
	}
	if m["steps"].(float64) != 6 || m["device"] != "cpu" || m["loss"].(float64) >= m["first_loss"].(float64) {
		t.Errorf("metrics.json = %v; want 6 steps on the cpu with a falling loss", m)
	}
	train(out2)
	a, _ := os.ReadFile(filepath.Join(out1, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(out2, "model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Error("two CPU runs with the same seed wrote different weights")
	}
}

type tensorInfo struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets []int  `json:"data_offsets"`
}

// safetensorsHeader reads a file's header independently of the Python
// module: the length, the JSON, the alignment.
func safetensorsHeader(t *testing.T, path string) map[string]tensorInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", 8+n)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]tensorInfo{}
	for k, v := range raw {
		if k == "__metadata__" {
			continue
		}
		var ti tensorInfo
		if err := json.Unmarshal(v, &ti); err != nil {
			t.Fatal(err)
		}
		out[k] = ti
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// A staged module that was changed is written again; intact ones are left
// as they are.
func TestStageRepairs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "py")
	if err := Stage(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SafetensorsFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("import os; os.system('evil')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, Files()[0])
	if other == path {
		other = filepath.Join(dir, Files()[1])
	}
	before, err := os.Stat(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := Stage(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != SafetensorsModule() {
		t.Errorf("the changed module was not restored (%v)", err)
	}
	after, err := os.Stat(other)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("an intact module was rewritten (%v)", err)
	}
}

// Scripts are embedded but neither staged nor in Contents: adding or
// editing one leaves the python-modules digest of every action as it was.
func TestScriptsOutsideContents(t *testing.T) {
	b, err := Script("script_calibrate_imatrix.py")
	if err != nil || !strings.Contains(string(b), "def main(argv)") {
		t.Fatalf("Script: %v", err)
	}
	for _, name := range Files() {
		if strings.HasPrefix(name, "script_") {
			t.Errorf("Files lists the script %s", name)
		}
	}
	if bytes.Contains(Contents(), b) || bytes.Contains(Contents(), []byte("script_calibrate_imatrix.py")) {
		t.Error("Contents holds the script: its digest would change every python action's key")
	}
	if _, err := Script("cogumi_calibrate.py"); err == nil {
		t.Error("Script returned a module")
	}
}
