package checkpoint

import (
	"testing"
)

// FuzzParseConfig feeds arbitrary config.json documents to the parser that
// every model target's validation and the gguf, prune and train rules go
// through. Nothing may panic, and an accepted configuration must satisfy
// what its users divide and index by.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":256,"intermediate_size":512,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":450,"torch_dtype":"bfloat16"}`))
	f.Add([]byte(`{"model_type":"mistral","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":10,"head_dim":16,"rope_parameters":{"rope_type":"llama3","rope_theta":500000,"factor":8}}`))
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":10,"rope_scaling":{"type":"linear","factor":2},"eos_token_id":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig("config.json", b)
		if err != nil {
			return
		}
		for name, v := range map[string]int{"hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize,
			"num_hidden_layers": c.NumHiddenLayers, "num_attention_heads": c.NumAttentionHeads,
			"num_key_value_heads": c.NumKeyValueHeads, "vocab_size": c.VocabSize} {
			if v <= 0 {
				t.Fatalf("accepted %s = %d", name, v)
			}
		}
		if hd := c.HeadDimension(); hd <= 0 || hd%2 != 0 {
			t.Fatalf("accepted head dimension %d", hd)
		}
		if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
			t.Fatalf("accepted %d heads over %d KV heads", c.NumAttentionHeads, c.NumKeyValueHeads)
		}
		if c.RMSNormEps == 0 || c.RopeTheta == 0 || c.MaxPositionEmbeddings == 0 {
			t.Fatalf("defaults not applied: %+v", c)
		}
	})
}

// FuzzParseTokenizerJSON feeds arbitrary tokenizer.json documents to the
// parser the gguf rule and evaluation use. Nothing may panic; an accepted
// tokenizer has a non-empty vocabulary of non-negative ids, and running it
// to identify its pre-tokenizer does not panic either.
func FuzzParseTokenizerJSON(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2," ":3,"a ":4},"merges":[["a","b"],["a"," "]]},"added_tokens":[{"id":5,"content":"<|x|>","special":true}],"pre_tokenizer":null}`))
	f.Add([]byte(`{"model":{"vocab":{"a":0,"b":1},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"x":0},"merges":[],"byte_fallback":true},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+"}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := ParseTokenizerJSON(b)
		if err != nil {
			return
		}
		if len(tok.Vocab) == 0 {
			t.Fatal("accepted an empty vocabulary")
		}
		for s, id := range tok.Vocab {
			if id < 0 {
				t.Fatalf("accepted id %d for %q", id, s)
			}
		}
		_, _ = tok.LlamaCppPre()
	})
}
