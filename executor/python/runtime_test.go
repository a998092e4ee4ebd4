package python

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runScript runs one of the rules' scripts the way cogumi does (the
// modules on PYTHONPATH, no GPU) and returns its output.
func runScript(t *testing.T, py string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(py, args...)
	cmd.Env = append(append(os.Environ(), "PYTHONPATH=.", "PYTHONDONTWRITEBYTECODE=1", "CUDA_VISIBLE_DEVICES="), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// calibrate, eval and lora run on small random-weight checkpoints (bf16)
// around each kind of real tokenizer, with its real vocabulary: the
// runtime scores exactly the tokens its tokenizer gives, in the dtype
// asked for, and the artifacts say nothing of the device, which the log
// and the facts file do.
func TestRuntimeRealTokenizers(t *testing.T) {
	py := torchPython(t)
	needTool(t, haveNodeTokenizers(), "testdata/tokenizers/node_modules is missing (scripts/test.sh installs it)")
	needTool(t, havePythonModule(py, "regex") && havePythonModule(py, "sentencepiece"), "python3-regex or python3-sentencepiece is missing")
	texts := tokenizerTexts(t)
	work := t.TempDir()
	input := filepath.Join(work, "texts.jsonl")
	var lines []byte
	for range 4 {
		for _, text := range texts {
			b, _ := json.Marshal(map[string]string{"text": text})
			lines = append(append(lines, b...), '\n')
		}
	}
	if err := os.WriteFile(input, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	spm := t.TempDir()
	trainSentencePiece(t, spm)
	for _, c := range []struct{ name, tokenizer string }{
		{"llama3_1", tokenizerDir(t, "llama3_1", nil)},
		{"llama2", tokenizerDir(t, "llama2", nil)},
		{"llama2-metaspace", tokenizerDir(t, "llama2", metaspace("first"))},
		{"tokenizer.model", spm},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ckpt := filepath.Join(dir, "ckpt")
			runScript(t, py, nil, filepath.Join("testdata", "tiny_checkpoint.py"), ckpt, c.tokenizer, "BF16")
			ids := runtimeIDs(t, py, ckpt, texts)

			params := filepath.Join(dir, "calibrate.json")
			facts := filepath.Join(dir, "facts.json")
			b, _ := json.Marshal(map[string]any{"samples": 2, "seq_len": 16, "max_rows": 8, "seed": 0, "dtype": "bfloat16", "facts": facts})
			if err := os.WriteFile(params, b, 0o644); err != nil {
				t.Fatal(err)
			}
			log := runScript(t, py, nil, "cogumi_calibrate.py", ckpt, input, filepath.Join(dir, "calib"), params)
			var calib map[string]any
			readJSON(t, filepath.Join(dir, "calib", "calibration.json"), &calib)
			if calib["dtype"] != "bfloat16" || calib["tokens"] != 32.0 || calib["device"] != nil {
				t.Errorf("calibration.json = %v; want bfloat16, 32 tokens, no device", calib)
			}
			checkFacts(t, facts, log)

			result := filepath.Join(dir, "result.json")
			log = runScript(t, py, nil, "cogumi_eval.py", ckpt, input, result, "float32", facts)
			var res struct {
				Runtime string
				Results []struct{ Tokens int }
			}
			readJSON(t, result, &res)
			if !strings.HasSuffix(res.Runtime, " float32") || len(res.Results) != 4*len(texts) {
				t.Fatalf("result.json: runtime %q, %d results", res.Runtime, len(res.Results))
			}
			for i, text := range texts {
				if want := max(len(ids[i])-1, 0); res.Results[i].Tokens != want {
					t.Errorf("text %d %q: eval scored %d tokens, the tokenizer gives %d", i, text, res.Results[i].Tokens, want)
				}
			}
			checkFacts(t, facts, log)

			job := filepath.Join(dir, "lora.json")
			b, _ = json.Marshal(map[string]any{"base_dir": ckpt, "dataset": input, "rank": 2, "alpha": 4, "target_modules": []string{"q_proj", "v_proj"},
				"params": map[string]any{"steps": 2, "batch": 2, "seq_len": 16, "device": "cpu"}, "dtype": "bfloat16", "facts": facts})
			if err := os.WriteFile(job, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "lora")
			log = runScript(t, py, []string{"COGUMI_OUT=" + out, "COGUMI_LORA_CONFIG=" + job}, "cogumi_lora.py")
			var m map[string]any
			readJSON(t, filepath.Join(out, "metrics.json"), &m)
			for _, k := range []string{"device", "device_name", "gpu_uuid", "seconds", "cuda_visible_devices"} {
				if _, ok := m[k]; ok {
					t.Errorf("lora metrics.json has %s: %v", k, m)
				}
			}
			if m["dtype"] != "bfloat16" || m["steps"] != 2.0 {
				t.Errorf("lora metrics.json = %v", m)
			}
			checkFacts(t, facts, log)
		})
	}
}

// checkFacts: the facts file names the device the log names.
func checkFacts(t *testing.T, path, log string) {
	t.Helper()
	var f map[string]any
	readJSON(t, path, &f)
	dev, _ := f["device"].(string)
	if !strings.HasPrefix(dev, "cpu") || !strings.Contains(log, " on cpu") {
		t.Errorf("facts %v, log %q: want the device in both", f, log)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
