package ggufconv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
)

// cardCheckpoint writes a tiny checkpoint with a model card, a
// _name_or_path and a list of named chat templates.
func cardCheckpoint(t *testing.T) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := tinyllama.Write(dir, tinyllama.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	card := "---\nlicense: apache-2.0\nlicense_name: tiny-license\nbase_model:\n- TinyLlama/TinyLlama-1.1B-Chat-v1.0\n" +
		"- https://huggingface.co/Qwen/Qwen3-0.6B\n- name: Hand Written\n  organization: Someone\n  version: \"2\"\n" +
		"datasets: HuggingFaceH4/ultrachat_200k\ntags:\n- text-generation\n- tiny\npipeline_tag: text-generation\n" +
		"language:\n- en\n- no\nmodel_creator: Cogumi\n---\n# A model\n"
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(card), 0o644); err != nil {
		t.Fatal(err)
	}
	edit := func(name string, f func(map[string]any)) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		f(doc)
		if b, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("config.json", func(d map[string]any) { d["_name_or_path"] = "cogumi/tiny-chat-v0.3" })
	edit("generation_config.json", func(d map[string]any) {
		d["temperature"], d["top_p"], d["top_k"], d["repetition_penalty"], d["do_sample"] = 0.6, 0.9, 20, 1.05, true
	})
	edit(checkpoint.TokenizerConfigFile, func(d map[string]any) {
		d["chat_template"] = []map[string]string{{"name": "default", "template": "D"}, {"name": "tool-use", "template": "T"}, {"name": "rag", "template": "R"}}
	})
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestMetadataInFile checks the general.* and chat template keys of a
// converted file against what gguf-py's Metadata.load,
// set_gguf_meta_model and add_chat_template write for the same checkpoint
// directory (with quantized_by set), key for key and in order, and the
// sampling keys it writes from generation_config.json.
func TestMetadataInFile(t *testing.T) {
	m := cardCheckpoint(t)
	var seen []ggufconv.ChatTemplates
	rep, f, _ := convert(t, m, ggufconv.Options{Type: "F32", Metadata: ggufconv.Authorship{QuantizedBy: "me"},
		CheckChatTemplates: func(_ context.Context, ct ggufconv.ChatTemplates) error {
			seen = append(seen, ct)
			return nil
		}})
	want := []string{
		"general.architecture=llama", "general.type=model",
		"general.sampling.top_k=20", "general.sampling.top_p=0.9", "general.sampling.temp=0.6", "general.sampling.penalty_repeat=1.05",
		"general.name=Tiny Chat v0.3", "general.author=Cogumi",
		"general.version=v0.3", "general.organization=Cogumi", "general.finetune=chat", "general.basename=tiny",
		"general.quantized_by=me", "general.size_label=1.4M", "general.license=apache-2.0", "general.license.name=tiny-license",
		"general.base_model.count=3",
		"general.base_model.0.name=TinyLlama 1.1B Chat v1.0", "general.base_model.0.version=v1.0",
		"general.base_model.0.organization=TinyLlama", "general.base_model.0.repo_url=https://huggingface.co/TinyLlama/TinyLlama-1.1B-Chat-v1.0",
		"general.base_model.1.name=Qwen3 0.6B", "general.base_model.1.organization=Qwen", "general.base_model.1.repo_url=https://huggingface.co/Qwen/Qwen3-0.6B",
		"general.base_model.2.name=Hand Written", "general.base_model.2.version=2", "general.base_model.2.organization=Someone",
		"general.dataset.count=1", "general.dataset.0.name=Ultrachat_200K", "general.dataset.0.organization=HuggingFaceH4",
		"general.dataset.0.repo_url=https://huggingface.co/HuggingFaceH4/ultrachat_200k",
		"general.tags=[text-generation tiny text-generation]", "general.languages=[en no]",
		// gguf-py lists the names in a set's order; cogumi in the list's.
		"tokenizer.chat_template.tool_use=T", "tokenizer.chat_template.rag=R", "tokenizer.chat_templates=[tool_use rag]",
		"tokenizer.chat_template=D",
	}
	var got []string
	for _, e := range f.KVs {
		if strings.HasPrefix(e.Key, "general.") && e.Key != "general.alignment" && e.Key != "general.file_type" &&
			e.Key != "general.quantization_version" || strings.HasPrefix(e.Key, "tokenizer.chat_template") {
			got = append(got, fmt.Sprintf("%s=%v", e.Key, e.Value.Any()))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if k, _ := f.Get("general.sampling.top_k"); k.Type() != gguf.TypeInt32 {
		t.Errorf("top_k is %v, want int32", k.Type())
	}
	if p, _ := f.Get("general.sampling.top_p"); p.Type() != gguf.TypeFloat32 {
		t.Errorf("top_p is %v, want float32", p.Type())
	}
	if rep.File != "tiny-1.4M-chat-v0.3-F32.gguf" { // gguf.naming_convention
		t.Errorf("file %s", rep.File)
	}
	if len(seen) != 1 || seen[0].Default != "D" || len(seen[0].Named) != 2 || seen[0].BOS != "<s>" || seen[0].EOS != "</s>" {
		t.Errorf("templates checked: %+v", seen)
	}

	// Overrides replace what the card says; the name is as given.
	rep, f, _ = convert(t, m, ggufconv.Options{Type: "F32", Name: "Mine", Metadata: ggufconv.Authorship{
		License: "mit", Basename: "Base", BaseModels: ggufconv.LineageOf([]string{"meta-llama/Llama-3.1-8B"})}})
	for key, v := range map[string]any{"general.name": "Mine", "general.license": "mit", "general.basename": "Base",
		"general.base_model.count": uint32(1), "general.base_model.0.name": "Llama 3.1 8B",
		"general.base_model.0.repo_url": "https://huggingface.co/meta-llama/Llama-3.1-8B"} {
		if got, ok := f.Get(key); !ok || got.Any() != v {
			t.Errorf("%s = %v, want %v", key, got.Any(), v)
		}
	}
	if _, ok := f.Get("general.base_model.2.name"); ok {
		t.Errorf("the card's base models are still there")
	}
	if rep.File != "Base-1.4M-chat-v0.3-F32.gguf" {
		t.Errorf("file %s", rep.File)
	}

	// A check that fails stops the conversion before any file is written.
	dst := t.TempDir()
	bad := errors.New("chat template \"rag\" does not parse")
	_, err := ggufconv.Convert(context.Background(), m, dst, ggufconv.Options{Type: "F32",
		CheckChatTemplates: func(context.Context, ggufconv.ChatTemplates) error { return bad }})
	if !errors.Is(err, bad) {
		t.Errorf("failed check: %v", err)
	}
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}

// TestMetadataSurvivesLlamaQuantize has llama.cpp's quantiser
// (llama_model_quantize) quantise cogumi's F32 file of the card checkpoint
// and compares the result with cogumi's own Q8_0 file byte for byte: the
// general.*, sampling and chat template keys are what llama-quantize
// carries over, where it puts them.
func TestMetadataSurvivesLlamaQuantize(t *testing.T) {
	bin := llamaQuantizer(t)
	m := cardCheckpoint(t)
	o := ggufconv.Options{Type: "F32", Metadata: ggufconv.Authorship{QuantizedBy: "me"}}
	_, _, f32 := convert(t, m, o)
	o.Type = "Q8_0"
	_, _, ours := convert(t, m, o)
	ref := filepath.Join(t.TempDir(), "llama.gguf")
	if out, err := exec.Command(bin, f32, ref, "7", "2").CombinedOutput(); err != nil {
		t.Fatalf("llama_model_quantize: %v\n%s", err, out)
	}
	a, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("cogumi's Q8_0 file (%d bytes) differs from llama-quantize's (%d bytes)", len(a), len(b))
	}
}
