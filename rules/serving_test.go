package rules

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/lora"
)

// servingFixtures are GGUF artifacts made by cogumi's own rules: a base,
// a draft with the same tokenizer, a draft with a byte-level BPE
// tokenizer, an adapter trained for the base, the same adapter recording
// another base checkpoint, and routers.
type servingFixtures struct {
	base, draft, bpeDraft, adapter, otherAdapter, router, badRouter string
}

func newServingFixtures(t *testing.T, root string, fx *goldenFixtures) servingFixtures {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sf := servingFixtures{base: filepath.Join(root, "serve_base"), draft: filepath.Join(root, "serve_draft"), bpeDraft: filepath.Join(root, "serve_bpe_draft"),
		adapter: filepath.Join(root, "serve_adapter"), otherAdapter: filepath.Join(root, "serve_other_adapter"), router: filepath.Join(root, "serve_router"), badRouter: filepath.Join(root, "serve_bad_router")}
	draftModel := filepath.Join(root, "draft_model")
	must(tinyllama.Write(draftModel, tinyllama.Options{Seed: 3, Layers: 1, Hidden: 64, Intermediate: 128}))
	for _, g := range []struct{ model, out, name string }{{fx.model, sf.base, "base"}, {draftModel, sf.draft, "draft"}, {fx.bpeModel, sf.bpeDraft, "bpe"}} {
		must(os.MkdirAll(g.out, 0o755))
		a := &Action{Target: &target.Target{Label: label.Label{Pkg: "golden", Name: g.name}, Kind: "gguf",
			Attrs: map[string]cty.Value{"model": str(":" + g.name), "type": str("Q8_0")}},
			Dir: root, Out: g.out, InputDirs: map[string]string{"model": g.model}, InputDigests: goldenDigests(map[string]string{g.name: ""}), Log: io.Discard}
		a.InputDigests["model"] = a.InputDigests[g.name]
		must(GGUF{}.Execute(context.Background(), a))
	}
	m, err := checkpoint.Open(fx.model)
	must(err)
	defer m.Close()
	ad, err := lora.Open(fx.adapter)
	must(err)
	defer ad.Close()
	// The adapter records the digest the base GGUF records as its source's.
	baseDigest := goldenDigests(map[string]string{"base": ""})["base"]
	for _, w := range []struct{ dir, digest string }{{sf.adapter, baseDigest}, {sf.otherAdapter, strings.Repeat("ab", 32)}} {
		must(os.MkdirAll(w.dir, 0o755))
		must(lora.WriteGGUF(ad, m.Config(), filepath.Join(w.dir, lora.GGUFFile), "coding", lora.Base{Label: "//golden:model", Digest: w.digest}))
	}
	basePath, baseFile, err := ggufIn(sf.base)
	must(err)
	bd, bsize, err := cache.DigestFile(basePath)
	must(err)
	adD, adSize, err := cache.DigestFile(filepath.Join(sf.adapter, lora.GGUFFile))
	must(err)
	writeRouter := func(dir, adDigest string) {
		must(os.MkdirAll(dir, 0o755))
		must(writeJSONFile(filepath.Join(dir, "router.json"), RouterConfig{Version: 1, Metric: "perplexity", Threshold: 10,
			Base:      RouterBase{Eval: "//golden:base_val", Model: "//golden:base", File: baseFile, Digest: bd.String(), Size: bsize},
			Modifiers: map[string]RouterModifier{"coding": {Label: "//golden:coding", File: lora.GGUFFile, Digest: adDigest, Size: adSize, Share: 0.5}}}))
	}
	writeRouter(sf.router, adD.String())
	writeRouter(sf.badRouter, strings.Repeat("0", 64))
	return sf
}

// servingGoldenCases are a config with a draft, an INT4 KV cache, an
// adapter and a router, and one of the base alone.
func servingGoldenCases(sf servingFixtures) []goldenCase {
	return []goldenCase{
		{name: "speculative", attrs: map[string]cty.Value{
			"model": str(":base"), "draft": str(":draft"), "draft_max": num(8), "draft_p_min": num(0.5),
			"cache_type_k": str("q4_0"), "cache_type_v": str("q4_0"), "ctx_size": num(2048),
			"adapters":       cty.MapVal(map[string]cty.Value{"coding": str(":coding")}),
			"adapter_scales": cty.MapVal(map[string]cty.Value{"coding": num(0.75)}),
			"router":         str(":router"),
		}, dirs: map[string]string{"model": sf.base, "draft": sf.draft, "adapters.coding": sf.adapter, "router": sf.router}},
		{name: "plain", attrs: map[string]cty.Value{"model": str(":base")}, dirs: map[string]string{"model": sf.base}},
	}
}

// TestServingRefuses runs the checks llama.cpp would make when the server
// starts: each refusal says which rule failed.
func TestServingRefuses(t *testing.T) {
	fx := newGoldenFixtures(t)
	sf := fx.serving
	for _, c := range []struct {
		name  string
		attrs map[string]cty.Value
		dirs  map[string]string
		want  string
	}{
		{"bpe draft", map[string]cty.Value{"model": str(":base"), "draft": str(":bpe")}, map[string]string{"model": sf.base, "draft": sf.bpeDraft},
			"draft: llama.cpp cannot use //golden:bpe to draft for //golden:base: draft model vocab type must match target model to use speculation but the draft's is BPE (gpt2) while the target's is SPM (llama)"},
		{"adapter for another base", map[string]cty.Value{"model": str(":draft"), "adapters": cty.MapVal(map[string]cty.Value{"coding": str(":coding")})},
			map[string]string{"model": sf.draft, "adapters.coding": sf.adapter}, "adapters: coding: coding was not trained for this base: tensor"},
		{"adapter for another checkpoint", map[string]cty.Value{"model": str(":base"), "adapters": cty.MapVal(map[string]cty.Value{"coding": str(":coding")})},
			map[string]string{"model": sf.base, "adapters.coding": sf.otherAdapter},
			"adapters: coding: coding was trained on //golden:model (digest abababababab), but //golden:base was converted from another checkpoint (digest "},
		{"router with another adapter", map[string]cty.Value{"model": str(":base"), "adapters": cty.MapVal(map[string]cty.Value{"coding": str(":coding")}), "router": str(":router")},
			map[string]string{"model": sf.base, "adapters.coding": sf.adapter, "router": sf.badRouter}, "router: //golden:router sends coding to //golden:coding (digest 000000000000), which this config does not serve"},
		{"router for another base", map[string]cty.Value{"model": str(":draft"), "router": str(":router")},
			map[string]string{"model": sf.draft, "router": sf.router}, "not this config's model //golden:draft"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := &target.Target{Label: label.Label{Pkg: "golden", Name: "serve"}, Kind: "serving", Attrs: c.attrs}
			if errs := (Serving{}).Check(tg); len(errs) > 0 {
				t.Fatalf("%+v", errs)
			}
			a := &Action{Target: tg, Dir: t.TempDir(), Out: t.TempDir(), InputDirs: c.dirs, Log: io.Discard}
			err := Serving{}.Execute(context.Background(), a)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestServingCheck(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]cty.Value
		want  string
	}{
		{map[string]cty.Value{"cache_type_v": str("q4_0"), "flash_attn": str("off")}, "llama.cpp refuses a quantised V cache without flash attention"},
		{map[string]cty.Value{"cache_type_k": str("int4")}, `"int4" is not a KV cache type llama.cpp allows`},
		{map[string]cty.Value{"draft_min": num(4), "draft_max": num(2)}, "want 0 <= draft_min <= draft_max"},
		{map[string]cty.Value{"adapter_scales": cty.MapVal(map[string]cty.Value{"math": num(1)})}, `"math" is not an adapter of this config`},
	} {
		c.attrs["model"] = str(":base")
		errs := Serving{}.Check(&target.Target{Label: label.Label{Pkg: "p", Name: "s"}, Kind: "serving", Attrs: c.attrs})
		if got := fmt.Sprint(errs); !strings.Contains(got, c.want) {
			t.Errorf("%v: got %s, want %q", c.attrs, got, c.want)
		}
	}
}
