package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/awq"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/imatrix"
	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/safetensors"
)

var update = flag.Bool("update", false, "rewrite the golden digests in testdata/golden")

// A Go-coded rule computes its outputs in cogumi's own code, so nothing but
// its hand-written Version() tells the caches that those outputs changed.
// TestGolden keeps that honest: it builds every Go-coded rule on small
// deterministic inputs and compares the BLAKE3 digest of every output with
// testdata/golden/<kind>.json, which records them beside the Version() they
// were made under. Changed bytes under the same version fail; a new version
// asks for -update, whether or not the bytes changed, so that the golden
// always names the version its digests belong to. Rules that run a command
// (run, train) or Python (calibrate, imatrix, eval, lora) are not here: what they run
// is in their keys (the command, the script, the embedded Python modules'
// digest, the toolchain versions). generate and judge are not here either:
// their outputs are API answers, memoised by the request alone.
//
// awq's Version() ends in its CPU kernel ("1/amd64-avx2fma"), because the
// search's floating-point sums differ between kernels. Its golden is
// recorded per kernel (awq@<kernel>.json) under the version without the
// kernel; a machine whose kernel has no golden skips awq and says how to
// record one.
func TestGolden(t *testing.T) {
	fx := newGoldenFixtures(t)
	for _, g := range goldenRules(fx) {
		t.Run(g.rule.Kind(), func(t *testing.T) {
			version, file := g.rule.Version(), g.rule.Kind()+".json"
			if base, kernel, ok := strings.Cut(version, "/"); ok && g.rule.Kind() == "awq" {
				version, file = base, "awq@"+kernel+".json"
			}
			got := golden{Version: version, Outputs: make(map[string]string)}
			for _, c := range g.cases {
				for rel, d := range runGoldenCase(t, g.rule, c, g.timings) {
					got.Outputs[c.name+"/"+rel] = d
				}
			}
			checkGolden(t, g.rule.Kind(), filepath.Join("testdata", "golden", file), got)
		})
	}
}

// golden is one testdata/golden file.
type golden struct {
	Version string            `json:"version"`
	Outputs map[string]string `json:"outputs"` // case/path -> BLAKE3 of the content
}

func checkGolden(t *testing.T, kind, path string, got golden) {
	t.Helper()
	b, err := os.ReadFile(path)
	if *update {
		if err == nil {
			var old golden
			if json.Unmarshal(b, &old) == nil && old.Version == got.Version && !maps.Equal(old.Outputs, got.Outputs) {
				t.Errorf("%s's outputs changed but its Version() is still %s: bump it, then run `go test ./rules -run TestGolden -update`", kind, got.Version)
				return
			}
		}
		js, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		if kind == "awq" && os.IsNotExist(err) {
			t.Skipf("no golden for this CPU kernel (%s): run `go test ./rules -run TestGolden -update` on such a machine to record one", path)
		}
		t.Fatalf("%v: run `go test ./rules -run TestGolden -update` to record the outputs", err)
	}
	var want golden
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	changed := diffOutputs(want.Outputs, got.Outputs)
	switch {
	case want.Version == got.Version && len(changed) > 0:
		t.Errorf("%s's outputs changed but its Version() is still %s: bump it, then run `go test ./rules -run TestGolden -update`\n%s",
			kind, got.Version, strings.Join(changed, "\n"))
	case want.Version != got.Version:
		t.Errorf("%s's Version() is now %s, the golden %s holds outputs of version %s: run `go test ./rules -run TestGolden -update`",
			kind, got.Version, path, want.Version)
	}
}

// diffOutputs lists, one line each, the outputs added, removed or changed.
func diffOutputs(want, got map[string]string) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		switch g, ok := got[p]; {
		case !ok:
			out = append(out, "  removed "+p)
		case g != want[p]:
			out = append(out, fmt.Sprintf("  changed %s: %s -> %s", p, want[p][:12], g[:12]))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			out = append(out, "  added "+p)
		}
	}
	return out
}

// goldenRule is one Go-coded rule and the actions it is built with.
type goldenRule struct {
	rule  Rule
	cases []goldenCase
	// timings are the JSON fields of report files (*.json) that hold
	// wall-clock times: they are zeroed before hashing.
	timings []string
}

// goldenCase is one action: a target and its staged inputs.
type goldenCase struct {
	name   string
	attrs  map[string]cty.Value
	inputs []target.Input    // for rules that read them (dataset's from)
	dirs   map[string]string // InputDirs
	files  map[string]string // files to write under the scratch directory
	prov   *Provenance       // for Traits.Provenance rules
}

// goldenDigests stands for the engine's input digests: a fixed digest for
// each input name.
func goldenDigests(dirs map[string]string) map[string]string {
	out := make(map[string]string, len(dirs))
	for name := range dirs {
		s := sha256.Sum256([]byte("golden input " + name))
		out[name] = hex.EncodeToString(s[:])
	}
	return out
}

// runGoldenCase executes c and returns the digest of every file it wrote,
// by slash-separated path under Out.
func runGoldenCase(t *testing.T, rule Rule, c goldenCase, timings []string) map[string]string {
	t.Helper()
	tg := &target.Target{Label: label.Label{Pkg: "golden", Name: c.name}, Kind: rule.Kind(), Attrs: c.attrs, Inputs: c.inputs}
	if errs := rule.Check(tg); len(errs) > 0 {
		t.Fatalf("%s: %+v", c.name, errs)
	}
	root := t.TempDir()
	a := &Action{Target: tg, Dir: filepath.Join(root, "work"), Out: filepath.Join(root, "out"), InputDirs: c.dirs, InputDigests: goldenDigests(c.dirs),
		Log: io.Discard, Provenance: c.prov}
	for _, dir := range []string{a.Dir, a.Out} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for rel, content := range c.files {
		p := filepath.Join(a.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := rule.Execute(context.Background(), a); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	out := make(map[string]string)
	err := filepath.WalkDir(a.Out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(a.Out, p)
		if err != nil {
			return err
		}
		var dg cache.Digest
		if len(timings) > 0 && strings.HasSuffix(p, ".json") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if b, err = zeroTimings(b, timings); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			dg = cache.DigestBytes(b)
		} else if dg, _, err = cache.DigestFile(p); err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = dg.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s wrote no outputs", c.name)
	}
	return out
}

// zeroTimings re-encodes a JSON document with every field named in fields,
// at any depth, set to 0.
func zeroTimings(b []byte, fields []string) ([]byte, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	var zero func(any)
	zero = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if slices.Contains(fields, k) {
					v[k] = 0
				} else {
					zero(e)
				}
			}
		case []any:
			for _, e := range v {
				zero(e)
			}
		}
	}
	zero(v)
	return json.Marshal(v)
}

func str(s string) cty.Value  { return cty.StringVal(s) }
func num(f float64) cty.Value { return cty.NumberFloatVal(f) }
func numMap(m map[string]float64) cty.Value {
	vs := make(map[string]cty.Value, len(m))
	for k, v := range m {
		vs[k] = num(v)
	}
	return cty.MapVal(vs)
}

// goldenFixtures are the inputs the golden actions read, made once.
type goldenFixtures struct {
	model      string // a tiny Llama checkpoint (SentencePiece tokenizer)
	bpeModel   string // one with a byte-level BPE tokenizer, F32
	calib      string // a calibration artifact for model
	adapter    string // a PEFT adapter for model
	evalBase   string // an evaluation artifact: metrics.json, scores.jsonl
	evalFinal  string
	ggufModel  string // an artifact holding a .gguf file (its bytes only matter by digest)
	loraCoding string // LoRA artifacts holding an adapter.gguf
	loraMath   string
	compressed string // a compress artifact of model
	gate       string // a met gate's artifact: gate.json
	imatrix    string // an imatrix artifact for model: imatrix.gguf
	serving    servingFixtures
}

func newGoldenFixtures(t *testing.T) *goldenFixtures {
	t.Helper()
	root := t.TempDir()
	fx := &goldenFixtures{
		model: filepath.Join(root, "model"), bpeModel: filepath.Join(root, "bpe"),
		calib: filepath.Join(root, "calib"), adapter: filepath.Join(root, "adapter"),
		evalBase: filepath.Join(root, "eval_base"), evalFinal: filepath.Join(root, "eval_final"),
		ggufModel: filepath.Join(root, "gguf"), loraCoding: filepath.Join(root, "lora_coding"),
		loraMath: filepath.Join(root, "lora_math"), compressed: filepath.Join(root, "compressed"),
		gate: filepath.Join(root, "gate"), imatrix: filepath.Join(root, "imatrix"),
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tinyllama.Write(fx.model, tinyllama.Options{Seed: 1}))
	must(tinyllama.Write(fx.bpeModel, tinyllama.Options{Seed: 2, Tokenizer: tinyllama.BPE, DType: safetensors.F32}))
	m, err := checkpoint.Open(fx.model)
	must(err)
	defer m.Close()
	must(writeGoldenCalibration(fx.calib, m.Config()))
	must(writeGoldenAdapter(fx.adapter, m))
	must(writeGoldenImatrix(fx.imatrix, m))
	writeFile := func(path, content string) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(path), 0o755))
		must(os.WriteFile(path, []byte(content), 0o644))
	}
	writeFile(filepath.Join(fx.evalBase, "metrics.json"), `{"version":1,"model":"//golden:gguf","dataset":"//golden:val","runtime":"script",
 "metrics":{"perplexity":11.2,"accuracy":0.64},"examples":4,"tokens":64,
 "by":"domain","groups":{"coding":{"metrics":{"perplexity":14.5},"examples":2,"tokens":32},"math":{"metrics":{"perplexity":8.1},"examples":2,"tokens":32}}}`)
	var scores strings.Builder
	for i, s := range []struct {
		group string
		ppl   float64
	}{{"coding", 21}, {"coding", 9.5}, {"math", 12.25}, {"math", 4}} {
		fmt.Fprintf(&scores, `{"index":%d,"file":"val.jsonl","line":%d,"row_sha256":"%064x","group":%q,"tokens":16,"nll":%g,"perplexity":%g}`+"\n",
			i, i+1, i, s.group, math.Log(s.ppl), s.ppl)
	}
	writeFile(filepath.Join(fx.evalBase, "scores.jsonl"), scores.String())
	writeFile(filepath.Join(fx.evalFinal, "metrics.json"), `{"version":1,"model":"//golden:final","dataset":"//golden:val","runtime":"script",
 "metrics":{"perplexity":12.0,"accuracy":0.61},"examples":4,"tokens":64,
 "by":"domain","groups":{"coding":{"metrics":{"perplexity":12.7},"examples":2,"tokens":32}}}`)
	writeFile(filepath.Join(fx.ggufModel, "model.gguf"), "GGUF a stand-in: the router only digests it")
	writeFile(filepath.Join(fx.loraCoding, "adapter.gguf"), "GGUF coding adapter")
	writeFile(filepath.Join(fx.loraMath, "adapter.gguf"), "GGUF math adapter")
	writeFile(filepath.Join(fx.gate, "gate.json"), `{"version":1,"pass":true,"metrics":"//golden:final_val","checks":[
 {"check":"max","name":"perplexity","value":12,"limit":14,"pass":true,"message":"perplexity 12 <= 14 (max)"}]}`)
	// What decompress restores: the model compressed by the compress rule.
	must(os.MkdirAll(fx.compressed, 0o755))
	zst := &Action{Target: &target.Target{Label: label.Label{Pkg: "golden", Name: "compressed"}, Kind: "compress",
		Attrs: map[string]cty.Value{"input": str(":model"), "level": num(3)}},
		Dir: root, Out: fx.compressed, InputDirs: map[string]string{"input": fx.model}, Log: io.Discard}
	must(Compress{}.Execute(context.Background(), zst))
	fx.serving = newServingFixtures(t, root, fx)
	return fx
}

// writeGoldenCalibration writes what a calibrate target makes for a model
// of cfg: per layer and linear input, the mean |x| per channel and token
// rows, drawn with channels of very different magnitudes.
func writeGoldenCalibration(dir string, cfg checkpoint.Config) error {
	type tensor struct {
		name  string
		shape []int64
		data  []float32
	}
	r := rand.New(rand.NewPCG(3, 7))
	const rows = 16
	input := func(name string, in int) []tensor {
		x := make([]float32, rows*in)
		mean := make([]float32, in)
		for c := 0; c < in; c++ {
			mag := math.Exp(r.NormFloat64())
			if c%29 == 0 {
				mag *= 20
			}
			for i := 0; i < rows; i++ {
				v := float32(mag * r.NormFloat64())
				x[i*in+c] = v
				mean[c] += float32(math.Abs(float64(v)) / rows)
			}
		}
		return []tensor{{name + ".input_mean_abs", []int64{int64(in)}, mean}, {name + ".input_rows", []int64{rows, int64(in)}, x}}
	}
	var ts []tensor
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts, input(p+"self_attn.q_proj", cfg.HiddenSize)...)
		ts = append(ts, input(p+"self_attn.o_proj", cfg.NumAttentionHeads*cfg.HeadDimension())...)
		ts = append(ts, input(p+"mlp.gate_proj", cfg.HiddenSize)...)
		ts = append(ts, input(p+"mlp.down_proj", cfg.IntermediateSize)...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	infos := make([]safetensors.Info, len(ts))
	for i, x := range ts {
		infos[i] = safetensors.Info{Name: x.name, DType: safetensors.F32, Shape: x.shape}
	}
	w, err := safetensors.NewWriter(filepath.Join(dir, awq.CalibrationFile), infos, nil)
	if err != nil {
		return err
	}
	for _, x := range ts {
		b := make([]byte, 4*len(x.data))
		safetensors.EncodeF32(b, x.data, safetensors.F32)
		if err := w.WriteTensor(x.name, b); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	meta := fmt.Sprintf(`{"version":1,"layers":%d,"rows":%d}`, cfg.NumHiddenLayers, rows)
	return os.WriteFile(filepath.Join(dir, awq.CalibrationInfo), []byte(meta), 0o644)
}

// writeGoldenImatrix writes an imatrix artifact for m, as the imatrix rule
// lays it out: an entry per linear weight of every layer, seeded random
// sums of squares over 640 tokens.
func writeGoldenImatrix(dir string, m *checkpoint.Model) error {
	cfg := m.Config()
	mat := imatrix.Matrix{Datasets: []string{"//golden:calib"}, ChunkCount: 10, ChunkSize: 64, Entries: tinyllama.ImatrixEntries(&cfg, 17, 5, 640)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return imatrix.Write(filepath.Join(dir, "imatrix.gguf"), mat)
}

// writeGoldenAdapter writes a PEFT LoRA adapter of rank 4 on m's attention
// projections, with random A and B.
func writeGoldenAdapter(dir string, m *checkpoint.Model) error {
	const rank = 4
	r := rand.New(rand.NewPCG(4, 7))
	type tensor struct {
		name  string
		shape []int64
		data  []float32
	}
	projs := []string{"q_proj", "v_proj"}
	var ts []tensor
	for i := 0; i < m.Config().NumHiddenLayers; i++ {
		for _, p := range projs {
			module := fmt.Sprintf("model.layers.%d.self_attn.%s", i, p)
			w, ok := m.Tensor(module + ".weight")
			if !ok {
				return fmt.Errorf("no tensor %s.weight", module)
			}
			o, in := w.Shape[0], w.Shape[1]
			a, b := make([]float32, rank*in), make([]float32, o*rank)
			for j := range a {
				a[j] = float32(r.NormFloat64() * 0.05)
			}
			for j := range b {
				b[j] = float32(r.NormFloat64() * 0.05)
			}
			pre := "base_model.model." + module + ".lora_"
			ts = append(ts, tensor{pre + "A.weight", []int64{rank, in}, a}, tensor{pre + "B.weight", []int64{o, rank}, b})
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := json.Marshal(map[string]any{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 8, "lora_dropout": 0.0,
		"bias": "none", "fan_in_fan_out": false, "target_modules": projs,
		"base_model_name_or_path": "//golden:model", "inference_mode": true,
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, lora.ConfigFile), cfg, 0o644); err != nil {
		return err
	}
	infos := make([]safetensors.Info, len(ts))
	for i, x := range ts {
		infos[i] = safetensors.Info{Name: x.name, DType: safetensors.F32, Shape: x.shape}
	}
	w, err := safetensors.NewWriter(filepath.Join(dir, lora.WeightsFile), infos, map[string]string{"format": "pt"})
	if err != nil {
		return err
	}
	for _, x := range ts {
		b := make([]byte, 4*len(x.data))
		safetensors.EncodeF32(b, x.data, safetensors.F32)
		if err := w.WriteTensor(x.name, b); err != nil {
			return err
		}
	}
	return w.Close()
}

// notGoCoded are the rules TestGolden leaves out, and why.
var notGoCoded = map[string]string{
	"files":         "a source group: no action",
	"model":         "a source group: no action",
	"run":           "runs the user's command, which is in its key",
	"train":         "runs Python: the script and the embedded modules' digest are in its key",
	"calibrate":     "runs Python: the embedded modules' digest is in its key",
	"imatrix":       "runs Python: the embedded modules' digest is in its key (the GGUF around its sums is model/imatrix's, tested there)",
	"eval":          "runs Python or llama.cpp: the modules' and llamarun's digests are in its key",
	"lora":          "runs Python: the embedded modules' digest is in its key",
	"bench_serving": "runs llama.cpp: the bench script's digest is in its version, node-llama-cpp's in its key",
	"generate":      "API answers, memoised by the request alone",
	"judge":         "API answers, memoised by the request alone",
}

// TestGoldenCoversGoRules fails when a rule is neither golden-tested nor
// listed in notGoCoded with a reason: a new rule must decide.
func TestGoldenCoversGoRules(t *testing.T) {
	golden := make(map[string]bool)
	for _, g := range goldenRules(&goldenFixtures{}) {
		golden[g.rule.Kind()] = true
		if _, ok := notGoCoded[g.rule.Kind()]; ok {
			t.Errorf("%s is both golden-tested and listed in notGoCoded", g.rule.Kind())
		}
	}
	for _, kind := range Default().Kinds() {
		if _, ok := notGoCoded[kind]; !ok && !golden[kind] {
			t.Errorf("rule %s has no golden test: add it to goldenRules (or to notGoCoded, saying why its outputs cannot change without its key)", kind)
		}
	}
}

// goldenRules lists every Go-coded rule with the actions it is checked on.
// A new Go-coded rule belongs here (TestGoldenCoversGoRules).
func goldenRules(fx *goldenFixtures) []goldenRule {
	model := map[string]string{"model": fx.model}
	return []goldenRule{
		{rule: Prune{}, cases: []goldenCase{
			{name: "tensor", attrs: map[string]cty.Value{"model": str(":model"), "sparsity": num(0.5)}, dirs: model},
			{name: "global", attrs: map[string]cty.Value{"model": str(":model"), "sparsity": num(0.3), "scope": str("global"), "exclude": strs("*.v_proj.*")}, dirs: model},
			{name: "2of4", attrs: map[string]cty.Value{"model": str(":model"), "pattern": str("2:4")}, dirs: model},
		}},
		{rule: GGUF{}, cases: []goldenCase{
			{name: "f16", attrs: map[string]cty.Value{"model": str(":model"), "type": str("F16")}, dirs: model},
			{name: "q8_0", attrs: map[string]cty.Value{"model": str(":model"), "type": str("Q8_0"), "name": str("golden")}, dirs: model},
			{name: "q4_k_m", attrs: map[string]cty.Value{"model": str(":model"), "type": str("Q4_K_M")}, dirs: model},
			{name: "q4_0_pure_bpe", attrs: map[string]cty.Value{"model": str(":bpe"), "type": str("Q4_0"), "pure": cty.True}, dirs: map[string]string{"model": fx.bpeModel}},
			{name: "q3_k_m_overrides", attrs: map[string]cty.Value{"model": str(":model"), "type": str("Q3_K_M"),
				"tensor_types":         cty.ListVal([]cty.Value{cty.ListVal([]cty.Value{str(`blk\\.1\\.`), str("Q2_K")}), cty.ListVal([]cty.Value{str("ffn_up"), str("Q6_K")})}),
				"token_embedding_type": str("Q8_0"), "output_tensor_type": str("Q5_K")}, dirs: model},
			{name: "q5_k_m_imatrix", attrs: map[string]cty.Value{"model": str(":model"), "type": str("Q5_K_M"), "imatrix": str(":im")},
				dirs: map[string]string{"model": fx.model, "imatrix": fx.imatrix}},
			{name: "iq4_nl", attrs: map[string]cty.Value{"model": str(":model"), "type": str("IQ4_NL")}, dirs: model},
			{name: "iq4_xs_imatrix", attrs: map[string]cty.Value{"model": str(":model"), "type": str("IQ4_XS"), "imatrix": str(":im")},
				dirs: map[string]string{"model": fx.model, "imatrix": fx.imatrix}},
			{name: "iq3_xxs_imatrix", attrs: map[string]cty.Value{"model": str(":model"), "type": str("IQ3_XXS"), "imatrix": str(":im")},
				dirs: map[string]string{"model": fx.model, "imatrix": fx.imatrix}},
			{name: "iq2_xs_imatrix", attrs: map[string]cty.Value{"model": str(":model"), "type": str("IQ2_XS"), "imatrix": str(":im")},
				dirs: map[string]string{"model": fx.model, "imatrix": fx.imatrix}},
			{name: "iq2_xxs_imatrix", attrs: map[string]cty.Value{"model": str(":model"), "type": str("IQ2_XXS"), "imatrix": str(":im")},
				dirs: map[string]string{"model": fx.model, "imatrix": fx.imatrix}},
		}},
		{rule: AWQ{}, cases: []goldenCase{
			{name: "q4_k", attrs: map[string]cty.Value{"model": str(":model"), "calibration": str(":calib"), "target": str("Q4_K"), "grid": num(5)},
				dirs: map[string]string{"model": fx.model, "calibration": fx.calib}},
		}, timings: []string{"search_seconds", "seconds"}},
		{rule: MergeLora{}, cases: []goldenCase{
			{name: "merged", attrs: map[string]cty.Value{"base": str(":model"), "adapter": str(":adapter")},
				dirs: map[string]string{"base": fx.model, "adapter": fx.adapter}},
		}},
		{rule: Compress{}, cases: []goldenCase{
			{name: "zst", attrs: map[string]cty.Value{"input": str(":model"), "level": num(3)}, dirs: map[string]string{"input": fx.model}},
			{name: "zpk", attrs: map[string]cty.Value{"input": str(":model"), "level": str("fastest"), "weights": cty.True}, dirs: map[string]string{"input": fx.model}},
		}},
		{rule: Decompress{}, cases: []goldenCase{
			{name: "restored", attrs: map[string]cty.Value{"input": str(":compressed")}, dirs: map[string]string{"input": fx.compressed}},
		}},
		{rule: Dataset{}, cases: []goldenCase{datasetGoldenCase()}},
		{rule: Gate{}, cases: []goldenCase{
			{name: "ok", attrs: map[string]cty.Value{
				"metrics": str(":final_val"), "baseline": str(":base_val"),
				"min": numMap(map[string]float64{"accuracy": 0.5}), "max": numMap(map[string]float64{"perplexity": 14, "coding.perplexity": 16}),
				"max_increase_pct": numMap(map[string]float64{"perplexity": 10}),
				"max_bytes":        cty.MapVal(map[string]cty.Value{":gguf": str("2kB")}),
			}, dirs: map[string]string{"metrics": fx.evalFinal, "baseline": fx.evalBase, "max_bytes.:gguf": fx.ggufModel}},
		}},
		{rule: Router{}, cases: []goldenCase{
			{name: "router", attrs: map[string]cty.Value{
				"model": str(":gguf"), "base_eval": str(":base_val"), "threshold": num(10),
				"modifiers": cty.MapVal(map[string]cty.Value{"coding": str(":lora_coding"), "math": str(":lora_math")}),
			}, dirs: map[string]string{"model": fx.ggufModel, "base_eval": fx.evalBase, "modifiers.coding": fx.loraCoding, "modifiers.math": fx.loraMath}},
		}},
		{rule: Release{}, cases: []goldenCase{releaseGoldenCase(fx)}},
		{rule: Serving{}, cases: servingGoldenCases(fx.serving)},
	}
}

// releaseGoldenCase ships a model, an adapter file and a directory, with a
// gate and an evaluation, as the engine would describe them.
func releaseGoldenCase(fx *goldenFixtures) goldenCase {
	key := func(c byte) string { return strings.Repeat(string(c), 64) }
	in := func(attr, k, l, dir string, c byte) InputProvenance {
		return InputProvenance{Attr: attr, Key: k, Label: l, Dir: dir, ActionKey: key(c), Tree: key('0')}
	}
	return goldenCase{
		name: "release",
		attrs: map[string]cty.Value{
			"files": cty.MapVal(map[string]cty.Value{"tiny.gguf": str(":gguf/model.gguf"), "adapters/coding.gguf": str(":lora_coding/adapter.gguf"),
				"eval": str(":final_val")}),
			"gates": strs(":gate"), "evals": strs(":final_val"), "license": str("apache-2.0"), "base_model": str("TinyLlama/TinyLlama-1.1B"),
			"description": str("A golden release."),
		},
		prov: &Provenance{CogumiVersion: "v0.0.0-golden", Commit: key('c'), Inputs: []InputProvenance{
			in("files", "tiny.gguf", "//golden:gguf/model.gguf", filepath.Join(fx.ggufModel, "model.gguf"), 'a'),
			in("files", "adapters/coding.gguf", "//golden:lora_coding/adapter.gguf", filepath.Join(fx.loraCoding, "adapter.gguf"), 'b'),
			in("files", "eval", "//golden:final_val", fx.evalFinal, 'd'),
			in("gates", "", "//golden:gate", fx.gate, 'e'),
			in("evals", "", "//golden:final_val", fx.evalFinal, 'd'),
		}},
	}
}

func datasetGoldenCase() goldenCase {
	var rows strings.Builder
	domains := []string{"coding", "math", "prose"}
	for i := 0; i < 60; i++ {
		text := fmt.Sprintf("Example %d about %s.", i%50, domains[i%3]) // 10 duplicates
		fmt.Fprintf(&rows, `{"text":%q,"domain":%q,"difficulty":%q}`+"\n", text, domains[i%3], []string{"easy", "hard"}[i%2])
	}
	return goldenCase{
		name: "splits",
		attrs: map[string]cty.Value{
			"from":   strs("rows.jsonl"),
			"dedupe": str("normalized_text"),
			"sample": cty.ObjectVal(map[string]cty.Value{"by": str("domain"), "n": num(30), "seed": num(5)}),
			"split":  numMap(map[string]float64{"train": 0.8, "val": 0.2}),
		},
		inputs: []target.Input{{Attr: "from", File: "golden/rows.jsonl"}},
		files:  map[string]string{"golden/rows.jsonl": rows.String()},
	}
}
