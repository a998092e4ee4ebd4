package ggufconv

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/model/checkpoint"
)

// samplingKeys reads generation_config.json's sampling settings as
// gguf-py's Metadata.load does and returns the general.sampling.* keys
// set_gguf_meta_model writes for them, in its order: top_k, penalty_last_n
// and mirostat as int32, the others as float32, sequence as a string. A
// missing or unreadable file, a null or a value of the wrong kind writes
// nothing (the converter skips the first two, and fails on the last).
func samplingKeys(dir string) []kv {
	b, err := os.ReadFile(filepath.Join(dir, checkpoint.GenerationConfigFile))
	if err != nil {
		return nil
	}
	var gen map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&gen) != nil {
		return nil
	}
	var out []kv
	str := func(key, field string) {
		var s string
		if raw, ok := gen[field]; ok && json.Unmarshal(raw, &s) == nil {
			out = append(out, kv{"general.sampling." + key, s})
		}
	}
	num := func(field string) (float64, bool) {
		raw, ok := gen[field]
		if !ok {
			return 0, false
		}
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	i32 := func(key, field string) {
		if f, ok := num(field); ok && f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
			out = append(out, kv{"general.sampling." + key, int32(f)})
		}
	}
	f32 := func(key string, fields ...string) {
		for _, field := range fields {
			if f, ok := num(field); ok {
				out = append(out, kv{"general.sampling." + key, float32(f)})
				return
			}
		}
	}
	str("sequence", "sequence")
	i32("top_k", "top_k")
	f32("top_p", "top_p")
	f32("min_p", "min_p")
	f32("xtc_probability", "xtc_probability")
	f32("xtc_threshold", "xtc_threshold")
	f32("temp", "temperature")
	i32("penalty_last_n", "penalty_last_n")
	f32("penalty_repeat", "penalty_repeat", "repetition_penalty")
	i32("mirostat", "mirostat")
	f32("mirostat_tau", "mirostat_tau")
	f32("mirostat_eta", "mirostat_eta")
	return out
}
