package ggufconv

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The expected values are what gguf-py (llama.cpp's gguf/metadata.py, the
// version node-llama-cpp ships) returns for the same inputs:
// Metadata.get_model_id_components and Metadata.id_to_title.
func TestParseModelID(t *testing.T) {
	for _, tc := range []struct {
		id    string
		total int64
		want  ModelID
		title string
	}{
		{"TinyLlama/TinyLlama-1.1B-Chat-v1.0", 1100048384, ModelID{FullName: "TinyLlama-1.1B-Chat-v1.0", Org: "TinyLlama", Basename: "TinyLlama", Finetune: "Chat", Version: "v1.0", SizeLabel: "1.1B"}, "TinyLlama 1.1B Chat v1.0"},
		{"TinyLlama/TinyLlama-1.1B-Chat-v1.0", 1400000, ModelID{FullName: "TinyLlama-1.1B-Chat-v1.0", Org: "TinyLlama", Basename: "TinyLlama", Finetune: "1.1b-Chat", Version: "v1.0", SizeLabel: ""}, "TinyLlama 1.1B Chat v1.0"},
		{"meta-llama/Llama-3.1-8B-Instruct", 8030261248, ModelID{FullName: "Llama-3.1-8B-Instruct", Org: "meta-llama", Basename: "Llama-3.1", Finetune: "Instruct", Version: "", SizeLabel: "8B"}, "Llama 3.1 8B Instruct"},
		{"Qwen/Qwen3-0.6B", 596049920, ModelID{FullName: "Qwen3-0.6B", Org: "Qwen", Basename: "Qwen3", Finetune: "", Version: "", SizeLabel: "0.6B"}, "Qwen3 0.6B"},
		{"mistralai/Mixtral-8x7B-Instruct-v0.1", 46702792704, ModelID{FullName: "Mixtral-8x7B-Instruct-v0.1", Org: "mistralai", Basename: "Mixtral", Finetune: "Instruct", Version: "v0.1", SizeLabel: "8x7B"}, "Mixtral 8x7B Instruct v0.1"},
		{"bigscience/bloom-7b1", 7069016064, ModelID{FullName: "bloom-7b1", Org: "bigscience", Basename: "bloom", Finetune: "", Version: "", SizeLabel: "7.1B"}, "Bloom 7b1"},
		{"google/flan-t5-xl", 2849757184, ModelID{FullName: "flan-t5-xl", Org: "google", Basename: "flan-t5", Finetune: "", Version: "", SizeLabel: "xl"}, "Flan T5 Xl"},
		{"openai-community/gpt2", 124439808, ModelID{FullName: "gpt2", Org: "openai-community", Basename: "", Finetune: "", Version: "", SizeLabel: ""}, "Gpt2"},
		{"tiny", 1400000, ModelID{FullName: "tiny", Org: "", Basename: "", Finetune: "", Version: "", SizeLabel: ""}, "Tiny"},
		{"tiny-v2", 1400000, ModelID{FullName: "tiny-v2", Org: "", Basename: "tiny", Finetune: "", Version: "v2", SizeLabel: ""}, "Tiny v2"},
		{"./models/x-7b", 7000000000, ModelID{FullName: "models/x-7b", Org: "", Basename: "models/x", Finetune: "", Version: "", SizeLabel: "7B"}, "Models/X 7b"},
		{"Qwen/Qwen2.5-Coder-32B-Instruct-GGUF", 32000000000, ModelID{FullName: "Qwen2.5-Coder-32B-Instruct-GGUF", Org: "Qwen", Basename: "Qwen2.5-Coder", Finetune: "Instruct-GGUF", Version: "", SizeLabel: "32B"}, "Qwen2.5 Coder 32B Instruct GGUF"},
		{"Llama 2 7B", 7000000000, ModelID{FullName: "Llama 2 7B", Org: "", Basename: "", Finetune: "", Version: "", SizeLabel: ""}, "Llama 2 7B"},
		{"microsoft/phi-4-mini-instruct", 3800000000, ModelID{FullName: "phi-4-mini-instruct", Org: "microsoft", Basename: "phi-4", Finetune: "instruct", Version: "", SizeLabel: "mini"}, "Phi 4 Mini Instruct"},
		{"deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1500000000, ModelID{FullName: "DeepSeek-R1-Distill-Qwen-1.5B", Org: "deepseek-ai", Basename: "DeepSeek-R1-Distill-Qwen", Finetune: "", Version: "", SizeLabel: "1.5B"}, "DeepSeek R1 Distill Qwen 1.5B"},
		{"foo/bar-small-1B", 1000000000, ModelID{FullName: "bar-small-1B", Org: "foo", Basename: "bar-small", Finetune: "", Version: "", SizeLabel: "1B"}, "Bar Small 1B"},
		{"foo/model-Q4_K_M", 7000000000, ModelID{FullName: "model-Q4_K_M", Org: "foo", Basename: "", Finetune: "", Version: "", SizeLabel: ""}, "Model Q4_K_M"},
		{"foo/Llama-2-7b-32k-instruct", 7000000000, ModelID{FullName: "Llama-2-7b-32k-instruct", Org: "foo", Basename: "Llama-2", Finetune: "32k-instruct", Version: "", SizeLabel: "7B"}, "Llama 2 7b 32k Instruct"},
		{"iter3-base", 1000000, ModelID{FullName: "iter3-base", Org: "", Basename: "", Finetune: "", Version: "", SizeLabel: ""}, "Iter3 Base"},
		{"Qwen3-30B-A3B", 30000000000, ModelID{FullName: "Qwen3-30B-A3B", Org: "", Basename: "Qwen3", Finetune: "", Version: "", SizeLabel: "30B-A3B"}, "Qwen3 30B A3B"},
		{"org/Model-13b-v2-chat-32k", 13000000000, ModelID{FullName: "Model-13b-v2-chat-32k", Org: "org", Basename: "Model", Finetune: "chat-32k", Version: "v2", SizeLabel: "13B"}, "Model 13b v2 Chat 32k"},
		{"llama-7B-lora", 7000000000, ModelID{FullName: "llama-7B-lora", Org: "", Basename: "llama", Finetune: "lora", Version: "", SizeLabel: "7B"}, "Llama 7B Lora"},
		{"x/mixtral-8x7b-iter2", 46000000000, ModelID{FullName: "mixtral-8x7b-iter2", Org: "x", Basename: "mixtral", Finetune: "", Version: "iter2", SizeLabel: "8x7B"}, "Mixtral 8x7b Iter2"},
		{"a/b-350m", 350000000, ModelID{FullName: "b-350m", Org: "a", Basename: "b", Finetune: "", Version: "", SizeLabel: "350M"}, "B 350m"},
		{"a/B-medium-xl", 1000000000, ModelID{FullName: "B-medium-xl", Org: "a", Basename: "B", Finetune: "", Version: "", SizeLabel: "medium-xl"}, "B Medium Xl"},
	} {
		if got := ParseModelID(tc.id, tc.total); got != tc.want {
			t.Errorf("ParseModelID(%q, %d) = %+v, want %+v", tc.id, tc.total, got, tc.want)
		}
		if got := IDToTitle(tc.want.FullName); got != tc.title {
			t.Errorf("IDToTitle(%q) = %q, want %q", tc.want.FullName, got, tc.title)
		}
	}
}

// TestDeriveAuthorship reads a model card and config.json as gguf-py's
// Metadata.load does; want is what it returned for the same directory.
func TestDeriveAuthorship(t *testing.T) {
	dir := t.TempDir()
	card := `---
license: apache-2.0
license_name: tiny-license
base_model:
- TinyLlama/TinyLlama-1.1B-Chat-v1.0
- https://huggingface.co/Qwen/Qwen3-0.6B
- name: Hand Written
  organization: Someone
  version: "2"
datasets: HuggingFaceH4/ultrachat_200k
tags:
- text-generation
- tiny
pipeline_tag: text-generation
language:
- en
- no
model_creator: Cogumi
---
# A model

Text.
`
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", card)
	write("config.json", `{"_name_or_path": "cogumi/tiny-chat-v0.3", "architectures": ["LlamaForCausalLM"]}`)
	got, err := deriveAuthorship(authorshipSources{dir: dir, fallbackID: "base", totalParams: 1_400_000})
	if err != nil {
		t.Fatal(err)
	}
	want := Authorship{
		Name: "Tiny Chat v0.3", Author: "Cogumi", Version: "v0.3", Organization: "Cogumi",
		Finetune: "chat", Basename: "tiny", License: "apache-2.0", LicenseName: "tiny-license",
		BaseModels: []Lineage{
			{Name: "TinyLlama 1.1B Chat v1.0", Organization: "TinyLlama", Version: "v1.0", RepoURL: "https://huggingface.co/TinyLlama/TinyLlama-1.1B-Chat-v1.0"},
			{Name: "Qwen3 0.6B", Organization: "Qwen", RepoURL: "https://huggingface.co/Qwen/Qwen3-0.6B"},
			{Name: "Hand Written", Organization: "Someone", Version: "2"},
		},
		Datasets:  []Lineage{{Name: "Ultrachat_200K", Organization: "HuggingFaceH4", RepoURL: "https://huggingface.co/HuggingFaceH4/ultrachat_200k"}},
		Tags:      []string{"text-generation", "tiny", "text-generation"},
		Languages: []string{"en", "no"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("derived\n%+v\nwant\n%+v", got, want)
	}
	got.SizeLabel = SizeLabel(1_400_000)
	if s := Stem(&got, "q8_0"); s != "tiny-1.4M-chat-v0.3-Q8_0" { // gguf.naming_convention
		t.Errorf("Stem = %q", s)
	}

	// Without a card or _name_or_path, the fallback name is general.name
	// as written, and its parts are read as a directory name's would be.
	bare := t.TempDir()
	got, err = deriveAuthorship(authorshipSources{dir: bare, fallbackID: "tiny-v2", totalParams: 1_400_000})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Authorship{Name: "tiny-v2", Basename: "tiny", Version: "v2"}); !reflect.DeepEqual(got, want) {
		t.Errorf("fallback: %+v, want %+v", got, want)
	}

	// A card whose front matter is not YAML is an error naming README.md.
	write("README.md", "---\nlicense: [apache\n---\n")
	if _, err := deriveAuthorship(authorshipSources{dir: dir}); err == nil || !strings.Contains(err.Error(), "README.md front matter") {
		t.Errorf("bad YAML: %v", err)
	}
}

func TestAuthorshipEntriesOrder(t *testing.T) {
	a := Authorship{Name: "n", License: "mit", QuantizedBy: "q", SizeLabel: "1K", SourceURL: "u",
		BaseModels: []Lineage{{Name: "b", RepoURL: "r"}}, Tags: []string{"x"}}
	var keys []string
	for _, e := range a.entries() {
		keys = append(keys, e.key)
	}
	// set_gguf_meta_model's order.
	want := []string{"general.name", "general.quantized_by", "general.size_label", "general.license",
		"general.source.url", "general.base_model.count", "general.base_model.0.name",
		"general.base_model.0.repo_url", "general.tags"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

func TestStemIsAFileName(t *testing.T) {
	a := Authorship{Name: "n", Basename: "../b", SizeLabel: "1/2", Finetune: "x/../y", Version: "v 1"}
	if got := Stem(&a, "q8_0"); got != "..-b-1-2-x-..-y-v-1-Q8_0" {
		t.Errorf("Stem = %q", got)
	}
}
