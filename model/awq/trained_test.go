package awq

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/checkpoint"
)

// torchPython finds an interpreter with torch: $COGUMI_TEST_PYTHON, else
// Debian's /usr/bin/python3 (a pyenv or venv python3 first on PATH often
// lacks torch), else python3 on PATH. Without one the test is skipped,
// except in CI (CI=true), where it fails.
func torchPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3", "python3"}
	if p := os.Getenv("COGUMI_TEST_PYTHON"); p != "" {
		candidates = []string{p}
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no python3 with torch, which CI must have")
	}
	t.Skip("no python3 with torch")
	return ""
}

func runPython(t *testing.T, py string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("python3 %s:\n%s", filepath.Base(args[0]), lastLines(string(out), 3))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestTrainedModel runs AWQ on a model that examples/gpu/train.py really
// trained, with calibration statistics that the calibrate rule's script
// computed on real text, for every target: AWQ must lower the output
// error of most groups and never raise it.
func TestTrainedModel(t *testing.T) {
	py := torchPython(t)
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dataset := filepath.Join(repo, "examples/gpu/data/tiny.jsonl")
	pyEnv := "PYTHONPATH=" + filepath.Join(repo, "executor", "python")
	writeJSON := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	modelDir := filepath.Join(tmp, "model")
	runPython(t, py, []string{pyEnv, "COGUMI_OUT=" + modelDir, "COGUMI_INPUT_DATASET=" + dataset,
		"COGUMI_PARAMS=" + writeJSON("train.json", map[string]any{"steps": 30, "seed": 1}), "CUDA_VISIBLE_DEVICES="},
		filepath.Join(repo, "examples/gpu/train.py"))
	calDir := filepath.Join(tmp, "calib")
	script := filepath.Join(repo, "executor", "python", "cogumi_calibrate.py")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the calibrate rule's script: %v", err)
	}
	cdir, err := checkpoint.Find(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	runPython(t, py, []string{pyEnv, "CUDA_VISIBLE_DEVICES="}, script, cdir, dataset, calDir,
		writeJSON("calib.json", map[string]any{"samples": 16, "seq_len": 128, "max_rows": 512, "seed": 1}))

	m, err := checkpoint.Open(cdir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	calPath, err := FindCalibration(calDir)
	if err != nil {
		t.Fatal(err)
	}
	cal := openCal(t, calPath)
	for _, target := range Targets() {
		for _, v := range []struct {
			duo    bool
			stride int
		}{{false, 1}, {true, 1}, {false, 4}} {
			duo := v.duo
			name := target
			if duo {
				name += "+duo"
			}
			if v.stride > 1 {
				name += fmt.Sprintf("+stride%d", v.stride)
			}
			t.Run(name, func(t *testing.T) {
				var log strings.Builder
				rep, err := Run(context.Background(), m, cal, filepath.Join(t.TempDir(), "out"),
					Options{Target: target, Bits: 4, DuoScaling: duo, SearchStride: v.stride, Log: &log})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d groups searched in %.2fs, %d improved; total error %.4g -> %.4g (%+.1f%%)\n%s",
					name, rep.Totals.Searched, rep.SearchSeconds, rep.Totals.Improved, rep.Totals.RTNError,
					rep.Totals.AWQError, 100*rep.Totals.Change, log.String())
				if rep.Totals.Searched == 0 {
					t.Fatal("no group was searched")
				}
				for _, g := range rep.Groups {
					if g.Skipped != "" {
						continue
					}
					if *g.AWQError > *g.RTNError {
						t.Errorf("layer %d %s: AWQ error %g is above plain RTN's %g", g.Layer, g.Group, *g.AWQError, *g.RTNError)
					}
					if *g.RTNError <= 0 || g.Rows == 0 {
						t.Errorf("layer %d %s: RTN error %g on %d rows: nothing was measured", g.Layer, g.Group, *g.RTNError, g.Rows)
					}
				}
				if 2*rep.Totals.Improved <= rep.Totals.Searched {
					t.Errorf("AWQ improved only %d of %d groups", rep.Totals.Improved, rep.Totals.Searched)
				}
			})
		}
	}
}
