package lora_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/safetensors"
)

func qPair(r int64, dtA safetensors.DType) []tensor {
	return []tensor{
		{peftName("model.layers.0.self_attn.q_proj", "A"), dtA, []int64{r, 256}, make([]float32, r*256)},
		{peftName("model.layers.0.self_attn.q_proj", "B"), safetensors.F32, []int64{256, r}, make([]float32, r*256)},
	}
}

// TestOpenRejectsBadAdapters: each malformed adapter gets one message
// naming the file, the tensor or the field, and what is wrong.
func TestOpenRejectsBadAdapters(t *testing.T) {
	q := []string{"q_proj"}
	with := func(k string, v any) map[string]any {
		c := peftConfig(2, 4, q)
		c[k] = v
		return c
	}
	cases := []struct {
		name    string
		cfg     map[string]any
		tensors []tensor
		want    string
	}{
		{"peft type", with("peft_type", "IA3"), qPair(2, safetensors.F32), `peft_type is "IA3"; cogumi reads LoRA adapters`},
		{"rank zero", with("r", 0), qPair(2, safetensors.F32), "r is 0; the rank must be at least 1"},
		{"alpha", with("lora_alpha", -1), qPair(2, safetensors.F32), "lora_alpha is -1; it must be a positive number"},
		{"fan in fan out", with("fan_in_fan_out", true), qPair(2, safetensors.F32), "fan_in_fan_out is true"},
		{"dora", with("use_dora", true), qPair(2, safetensors.F32), "use_dora is true"},
		{"alpha pattern", with("alpha_pattern", map[string]any{"q_proj": 8}), qPair(2, safetensors.F32), "alpha_pattern gives some modules their own alpha"},
		{"regex", with("target_modules", ".*proj"), qPair(2, safetensors.F32), "target_modules is a regular expression"},
		{"unknown module", with("target_modules", []string{"lm_head"}), qPair(2, safetensors.F32), `target module "lm_head"`},
		{"rank mismatch", peftConfig(4, 8, q), qPair(2, safetensors.F32), "lora_A is [r, in] and r is 4"},
		{"int weights", peftConfig(2, 4, q), qPair(2, safetensors.I32), "has dtype I32; LoRA weights are F32, F16 or BF16"},
		{"missing B", peftConfig(2, 4, q), qPair(2, safetensors.F32)[:1], "model.layers.0.self_attn.q_proj has lora_A but no lora_B"},
		{"not targeted", peftConfig(2, 4, []string{"v_proj"}), qPair(2, safetensors.F32),
			"model.layers.0.self_attn.q_proj is adapted, but adapter_config.json lists target_modules [v_proj]"},
		{"embedding", peftConfig(2, 4, q), []tensor{{"base_model.model.lm_head.lora_A.weight", safetensors.F32, []int64{2, 256}, make([]float32, 512)}},
			`tensor "base_model.model.lm_head.lora_A.weight" is not a decoder layer's projection`},
		{"no prefix", peftConfig(2, 4, q), []tensor{{"model.layers.0.self_attn.q_proj.lora_A.weight", safetensors.F32, []int64{2, 256}, make([]float32, 512)}},
			`does not start with "base_model.model."`},
		{"empty", peftConfig(2, 4, q), nil, "no lora_A/lora_B tensors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeAdapter(t, c.cfg, c.tensors)
			a, err := lora.Open(dir)
			if err == nil {
				a.Close()
				t.Fatalf("opened; want an error with %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q, want one naming %s and saying %q", err, dir, c.want)
			}
		})
	}
}

func TestOpenMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := lora.Open(dir); err == nil || !strings.Contains(err.Error(), "no "+filepath.Join(dir, lora.ConfigFile)+": not a PEFT LoRA adapter") {
		t.Fatalf("no config: %v", err)
	}
	ad := writeAdapter(t, peftConfig(2, 4, []string{"q_proj"}), qPair(2, safetensors.F32))
	if err := os.Remove(filepath.Join(ad, lora.WeightsFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := lora.Open(ad); err == nil || !strings.Contains(err.Error(), "no adapter_model.safetensors: the adapter has no weights") {
		t.Fatalf("no weights: %v", err)
	}
	if _, err := lora.Find(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no adapter_config.json at or below") {
		t.Fatalf("find: %v", err)
	}
}
