package checkpoint_test

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/safetensors"
)

func tiny(t *testing.T, o tinyllama.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := tinyllama.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editJSON rewrites a JSON file of the checkpoint through a map.
func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	dir := tiny(t, tinyllama.Options{DType: safetensors.F16, Shards: 2})
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Config()
	if c.Architecture() != "LlamaForCausalLM" || c.HeadDimension() != 64 || c.RopeTheta != 10000 || c.RMSNormEps != 1e-5 ||
		c.TorchDType != "float16" || *c.BOSTokenID != 1 || !reflect.DeepEqual(c.EOSTokenIDs, checkpoint.TokenIDs{2}) {
		t.Errorf("config = %+v", c)
	}
	ts := m.Tensors()
	if ts[0].Name != "model.embed_tokens.weight" || ts[0].Shard != "model-00001-of-00002.safetensors" ||
		ts[len(ts)-1].Shard != "model-00002-of-00002.safetensors" {
		t.Errorf("tensor order: first %+v, last %+v", ts[0], ts[len(ts)-1])
	}
	q, ok := m.Tensor("model.layers.1.self_attn.k_proj.weight")
	if !ok || !reflect.DeepEqual(q.Shape, []int64{128, 256}) || q.DType != safetensors.F16 {
		t.Errorf("k_proj = %+v", q)
	}
	raw, err := m.Bytes(q.Name)
	if err != nil || len(raw) != 128*256*2 {
		t.Fatalf("Bytes: %d bytes, %v", len(raw), err)
	}
	row := make([]float32, 256)
	if err := m.ReadF32Rows(q.Name, 5, 1, row); err != nil {
		t.Fatal(err)
	}
	if want := safetensors.F16ToF32(binary.LittleEndian.Uint16(raw[5*256*2:])); row[0] != want {
		t.Errorf("row 5 starts with %v, raw says %v", row[0], want)
	}
	if _, err := m.Bytes("nope"); err == nil {
		t.Error("Bytes of an unknown tensor succeeded")
	}
	if md := m.ShardMetadata(ts[0].Shard); md["format"] != "pt" {
		t.Errorf("shard metadata = %v", md)
	}
}

func TestConfigVariants(t *testing.T) {
	dir := tiny(t, tinyllama.Options{})
	editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) {
		delete(m, "rope_theta")
		delete(m, "torch_dtype")
		m["dtype"] = "bfloat16"
		m["eos_token_id"] = []int{2, 3}
		m["rope_parameters"] = map[string]any{"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
			"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
		m["architectures"] = []string{"MistralForCausalLM"}
	})
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Config()
	if c.RopeTheta != 500000 || c.TorchDType != "bfloat16" || !reflect.DeepEqual(c.EOSTokenIDs, checkpoint.TokenIDs{2, 3}) ||
		c.RopeScaling == nil || c.RopeScaling.Type != "llama3" || c.RopeScaling.Factor != 8 || c.RopeScaling.OriginalMaxPositionEmbeddings != 8192 {
		t.Errorf("config = %+v, rope scaling %+v", c, c.RopeScaling)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   tinyllama.Options
		break_ func(t *testing.T, dir string)
		want   string
	}{
		{"unsupported architecture", tinyllama.Options{}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["architectures"] = []string{"GPT2LMHeadModel"} })
		}, "architecture GPT2LMHeadModel (model_type \"llama\") is not supported; cogumi handles LlamaForCausalLM (model_type llama), MistralForCausalLM (model_type mistral), Qwen2ForCausalLM (model_type qwen2), Qwen3ForCausalLM (model_type qwen3)"},
		{"unsupported model type", tinyllama.Options{}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { delete(m, "architectures"); m["model_type"] = "gemma2" })
		}, `no architectures and model_type "gemma2" is not supported; cogumi handles LlamaForCausalLM (model_type llama)`},
		{"qwen2 weights under qwen3's name", tinyllama.Options{Arch: tinyllama.Qwen2}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["architectures"] = []string{"Qwen3ForCausalLM"} })
		}, `tensor "model.layers.0.self_attn.q_norm.weight" is missing (config.json describes a 2-layer Qwen3ForCausalLM)`},
		{"qwen3 as llama with attention bias", tinyllama.Options{Arch: tinyllama.Qwen3}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["attention_bias"] = true })
		}, `tensor "model.layers.0.self_attn.q_proj.bias" is missing`},
		{"no config", tinyllama.Options{}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, "no config.json: not a Hugging Face checkpoint directory"},
		{"bad config json", tinyllama.Options{}, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o644)
		}, "config.json: not valid JSON"},
		{"wrong field type", tinyllama.Options{}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["hidden_size"] = "256" })
		}, `field "hidden_size" should be int`},
		{"heads mismatch", tinyllama.Options{}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["num_key_value_heads"] = 3 })
		}, "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
		{"missing tokenizer", tinyllama.Options{}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "tokenizer.model"))
		}, "no tokenizer: expected tokenizer.model (SentencePiece) or tokenizer.json (BPE)"},
		{"corrupt tokenizer.model", tinyllama.Options{}, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "tokenizer.model"), []byte{0x0a, 0x50, 1}, 0o644)
		}, "tokenizer.model: not a SentencePiece model"},
		{"unigram tokenizer.json", tinyllama.Options{Tokenizer: tinyllama.BPE}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "tokenizer.json"), func(m map[string]any) { m["model"].(map[string]any)["type"] = "Unigram" })
		}, `model.type is "Unigram"; cogumi reads BPE tokenizers only`},
		{"no weights", tinyllama.Options{}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model.safetensors"))
		}, "the checkpoint has no weights"},
		{"pytorch weights", tinyllama.Options{}, func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "pytorch_model.bin"))
		}, "only PyTorch .bin weights"},
		{"truncated shard", tinyllama.Options{}, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-10)
		}, `model.safetensors: tensor "lm_head.weight": data_offsets`},
		{"missing tensor", tinyllama.Options{Layers: 3}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["num_hidden_layers"] = 4 })
		}, `tensor "model.layers.3.input_layernorm.weight" is missing`},
		{"shape mismatch", tinyllama.Options{}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["intermediate_size"] = 768 })
		}, `tensor "model.layers.0.mlp.gate_proj.weight" in model.safetensors has shape [512 256], but config.json implies [768 256]`},
		{"missing shard", tinyllama.Options{Shards: 2}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		}, "shard model-00002-of-00002.safetensors, listed for tensor"},
		{"index lies", tinyllama.Options{Shards: 2}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "model.safetensors.index.json"), func(m map[string]any) {
				m["weight_map"].(map[string]any)["model.norm.weight"] = "model-00001-of-00002.safetensors"
			})
		}, `tensor "model.norm.weight" is not listed for this shard`},
		{"index lists a ghost", tinyllama.Options{Shards: 2}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "model.safetensors.index.json"), func(m map[string]any) {
				m["weight_map"].(map[string]any)["ghost.weight"] = "model-00001-of-00002.safetensors"
			})
		}, `tensor "ghost.weight": the index puts it in model-00001-of-00002.safetensors, which does not hold it`},
		{"index escapes", tinyllama.Options{Shards: 2}, func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "model.safetensors.index.json"), func(m map[string]any) {
				m["weight_map"].(map[string]any)["x"] = "../model.safetensors"
			})
		}, `shard "../model.safetensors" is not a plain file name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tiny(t, tc.opts)
			tc.break_(t, dir)
			m, err := checkpoint.Open(dir)
			if err == nil {
				m.Close()
				t.Fatalf("Open succeeded, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	// A Hugging Face cache: the snapshot holds links into the blob store.
	repo := filepath.Join(root, "hub", "models--tiny--llama")
	ckpt := tiny(t, tinyllama.Options{})
	blobs := filepath.Join(repo, "blobs")
	snap := filepath.Join(repo, "snapshots", "abc123")
	os.MkdirAll(blobs, 0o755)
	os.MkdirAll(snap, 0o755)
	entries, _ := os.ReadDir(ckpt)
	for i, e := range entries {
		blob := filepath.Join(blobs, "blob"+string(rune('a'+i)))
		os.Rename(filepath.Join(ckpt, e.Name()), blob)
		if err := os.Symlink(filepath.Join("..", "..", "blobs", filepath.Base(blob)), filepath.Join(snap, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(filepath.Join(root, "hub"), filepath.Join(root, "hub", "loop")) // a cycle, walked once
	got, err := checkpoint.Find(root)
	if err != nil || got != snap {
		t.Fatalf("Find = %q, %v; want %q", got, err, snap)
	}
	m, err := checkpoint.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	// The artifact of a rule that links to a checkpoint directory.
	art := t.TempDir()
	os.Symlink(snap, filepath.Join(art, "model"))
	if got, err := checkpoint.Find(art); err != nil || got != filepath.Join(art, "model") {
		t.Errorf("Find through a directory link = %q, %v", got, err)
	}
	if _, err := checkpoint.Find(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no config.json at or below") {
		t.Errorf("empty dir: %v", err)
	}
	two := t.TempDir()
	for _, d := range []string{"a", "b/c"} {
		os.MkdirAll(filepath.Join(two, d), 0o755)
		os.WriteFile(filepath.Join(two, d, "config.json"), []byte("{}"), 0o644)
	}
	if _, err := checkpoint.Find(two); err == nil || !strings.Contains(err.Error(), "2 directories below") || !strings.Contains(err.Error(), "a, b/c") {
		t.Errorf("two checkpoints: %v", err)
	}
}

// TestArchitectures opens a checkpoint of each family and checks the
// tensors its description lists: biases on q, k and v for Qwen2, per-head
// norms over head_dim for Qwen3 (whose heads x head_dim differs from the
// hidden size), Llama's tensors for Mistral.
func TestArchitectures(t *testing.T) {
	for _, tc := range []struct {
		arch    tinyllama.Arch
		o       tinyllama.Options
		gguf    string
		extra   []string
		tensors int
	}{
		{tinyllama.Llama, tinyllama.Options{}, "llama", nil, 1 + 2*9 + 2},
		{tinyllama.Mistral, tinyllama.Options{}, "llama", nil, 1 + 2*9 + 2},
		{tinyllama.Qwen2, tinyllama.Options{}, "qwen2", []string{"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}, 1 + 2*12 + 2},
		{tinyllama.Qwen3, tinyllama.Options{HeadDim: 128, TieEmbeddings: true}, "qwen3", []string{"self_attn.q_norm.weight", "self_attn.k_norm.weight"}, 1 + 2*11 + 1},
	} {
		t.Run(string(tc.arch), func(t *testing.T) {
			o := tc.o
			o.Arch = tc.arch
			m, err := checkpoint.Open(tiny(t, o))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c := m.Config()
			if c.Arch.ModelType != string(tc.arch) || c.Arch.GGUF != tc.gguf {
				t.Errorf("arch = %+v", c.Arch)
			}
			specs := c.Tensors()
			if len(specs) != tc.tensors || len(m.Tensors()) != tc.tensors {
				t.Errorf("%d tensors described, %d in the checkpoint; want %d", len(specs), len(m.Tensors()), tc.tensors)
			}
			for _, e := range tc.extra {
				if _, ok := m.Tensor("model.layers.1." + e); !ok {
					t.Errorf("no %s", e)
				}
			}
			if tc.arch == tinyllama.Qwen3 {
				q, _ := m.Tensor("model.layers.0.self_attn.q_proj.weight")
				o, _ := m.Tensor("model.layers.0.self_attn.o_proj.weight")
				n, _ := m.Tensor("model.layers.0.self_attn.q_norm.weight")
				if !reflect.DeepEqual(q.Shape, []int64{512, 256}) || !reflect.DeepEqual(o.Shape, []int64{256, 512}) || !reflect.DeepEqual(n.Shape, []int64{128}) {
					t.Errorf("q %v, o %v, q_norm %v", q.Shape, o.Shape, n.Shape)
				}
			}
		})
	}
}
