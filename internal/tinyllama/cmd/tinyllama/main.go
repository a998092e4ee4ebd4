// Command tinyllama writes a tiny deterministic Llama checkpoint for tests:
//
//	go run ./internal/tinyllama/cmd/tinyllama -o DIR -dtype bf16 -tokenizer spm|bpe [-shards 2] [-seed N]
//
// With -hidden, -intermediate, -layers, -heads, -kv-heads and
// -tokenizer-json/-tokenizer-config it writes a checkpoint of a real
// model's exact shapes around its real tokenizer (random weights), as the
// GPU proofs of examples/gpu use.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/safetensors"
)

func main() {
	arch := flag.String("arch", "llama", "architecture: llama, mistral, qwen2 (q/k/v biases) or qwen3 (q/k norms)")
	headDim := flag.Int("head-dim", 0, "head_dim (default hidden / heads; Qwen3-0.6B: 128 for 16 heads of a hidden size of 1024)")
	out := flag.String("o", "", "output directory (created if missing)")
	dtype := flag.String("dtype", "bf16", "weight dtype: f32, f16 or bf16")
	tok := flag.String("tokenizer", "spm", "tokenizer: spm (tokenizer.model) or bpe (tokenizer.json)")
	shards := flag.Int("shards", 1, "number of safetensors shards: 1 or 2")
	seed := flag.Uint64("seed", 0, "weight seed")
	hidden := flag.Int("hidden", 0, "hidden size (default 256)")
	ff := flag.Int("intermediate", 0, "feed-forward size (default 512)")
	layers := flag.Int("layers", 0, "decoder layers (default 2)")
	tie := flag.Bool("tie", false, "tie the output head to the embeddings (no lm_head.weight)")
	pad := flag.Int("pad-vocab", 0, "embedding rows beyond the tokenizer's vocabulary")
	heads := flag.Int("heads", 0, "attention heads (default 4)")
	kvHeads := flag.Int("kv-heads", 0, "key/value heads (default 2)")
	positions := flag.Int("max-positions", 0, "max_position_embeddings (default 256)")
	tokJSON := flag.String("tokenizer-json", "", "a real tokenizer.json to carry instead of a generated tokenizer (with -tokenizer-config)")
	tokConfig := flag.String("tokenizer-config", "", "the tokenizer_config.json that goes with -tokenizer-json")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: tinyllama -o DIR [-dtype f32|f16|bf16] [-tokenizer spm|bpe] [-shards 1|2] [-seed N]")
		os.Exit(2)
	}
	err := tinyllama.Write(*out, tinyllama.Options{
		Arch: tinyllama.Arch(*arch), HeadDim: *headDim,
		DType:         safetensors.DType(strings.ToUpper(*dtype)),
		Tokenizer:     tinyllama.Tokenizer(*tok),
		Shards:        *shards,
		Seed:          *seed,
		Hidden:        *hidden,
		Intermediate:  *ff,
		Layers:        *layers,
		PadVocab:      *pad,
		TieEmbeddings: *tie,
		Heads:         *heads,
		KVHeads:       *kvHeads,
		MaxPositions:  *positions,
		TokenizerJSON: *tokJSON, TokenizerConfig: *tokConfig,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
