// Command tinyllama writes a tiny deterministic Llama checkpoint for tests:
//
//	go run ./internal/tinyllama/cmd/tinyllama -o DIR -dtype bf16 -tokenizer spm|bpe [-shards 2] [-seed N]
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
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: tinyllama -o DIR [-dtype f32|f16|bf16] [-tokenizer spm|bpe] [-shards 1|2] [-seed N]")
		os.Exit(2)
	}
	err := tinyllama.Write(*out, tinyllama.Options{
		DType:         safetensors.DType(strings.ToUpper(*dtype)),
		Tokenizer:     tinyllama.Tokenizer(*tok),
		Shards:        *shards,
		Seed:          *seed,
		Hidden:        *hidden,
		Intermediate:  *ff,
		Layers:        *layers,
		PadVocab:      *pad,
		TieEmbeddings: *tie,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
