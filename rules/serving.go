package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/lora"
	"github.com/cogumi/cogumi/model/spec"
)

// Serving writes a serving configuration for llama.cpp's server
// (llama-server of the llama.cpp that the pinned node-llama-cpp bundles):
//
//	serving "serve" {
//	  model        = ":final"            # the base GGUF
//	  draft        = ":draft_gguf"       # a draft GGUF for speculative decoding
//	  draft_max    = 16
//	  cache_type_k = "q4_0"              # INT4 KV cache
//	  cache_type_v = "q4_0"              # needs flash attention: -fa on
//	  adapters     = { coding = ":code" }
//	  router       = ":router"
//	}
//
// Its artifact is serving.json (every setting, each file by label, digest
// and path in the served layout, and the command line) and
// llama-server.args (the same command line, one argument a line). The
// models are not copied: a release ships them; the config names them by
// digest.
//
// What llama.cpp would refuse when the server starts is refused at build
// time: a draft whose vocabulary common_speculative_are_compatible rejects
// (model/spec), a quantised V cache with flash attention off, an adapter
// whose tensors do not fit the base's (llama_adapter_lora_init); so is an
// adapter trained on another checkpoint than the one the base GGUF was
// converted from (both record its digest), which llama.cpp would load and
// serve wrong; and a
// router whose base or modifiers are not the files this config serves.
type Serving struct{}

func (Serving) Kind() string { return "serving" }

// Version 2: an adapter's recorded base digest is checked and written.
func (Serving) Version() string { return "2" }

// servingParams are the attributes of a serving target. The draft
// settings default to the bundled llama.cpp's (common/common.h).
type servingParams struct {
	Model     string             `cogumi:"model,key,required,input=label" doc:"the base model: a target whose artifact holds one GGUF file (or a label of the file)"`
	Draft     string             `cogumi:"draft,key,input=label" doc:"a draft model for speculative decoding (-md): a GGUF whose vocabulary llama.cpp accepts for the base's"`
	DraftMax  int                `cogumi:"draft_max,key" default:"3" doc:"tokens to draft per step (--spec-draft-n-max)"`
	DraftMin  int                `cogumi:"draft_min,key" default:"0" doc:"minimum draft tokens to use (--spec-draft-n-min)"`
	DraftPMin float64            `cogumi:"draft_p_min,key" default:"0" doc:"minimum probability of a drafted token, greedy (--spec-draft-p-min)"`
	CacheK    string             `cogumi:"cache_type_k,key" default:"f16" doc:"KV cache type of K (-ctk): f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1"`
	CacheV    string             `cogumi:"cache_type_v,key" default:"f16" doc:"KV cache type of V (-ctv); a quantised V cache needs flash attention"`
	FlashAttn string             `cogumi:"flash_attn,key" default:"auto" doc:"flash attention (-fa): on, off or auto; on when the V cache is quantised"`
	CtxSize   int                `cogumi:"ctx_size,key" default:"4096" doc:"context size in tokens (-c)"`
	Adapters  map[string]string  `cogumi:"adapters,key,input=labelmap" doc:"LoRA targets by name, whose artifacts hold adapter.gguf (--lora-scaled)"`
	Scales    map[string]float64 `cogumi:"adapter_scales,key" doc:"a scale per adapter name (default 1)"`
	Router    string             `cogumi:"router,key,input=label" doc:"a router target: its router.json must name this config's base and only its adapters"`
}

// kvCacheTypes are the bundled llama.cpp's kv_cache_types (common/arg.cpp)
// and whether each is quantised.
var kvCacheTypes = map[string]bool{"f32": false, "f16": false, "bf16": false,
	"q8_0": true, "q4_0": true, "q4_1": true, "iq4_nl": true, "q5_0": true, "q5_1": true}

func (Serving) Schema() Schema {
	return Schema{Summary: "serving.json: a llama.cpp server config (draft model, KV cache, adapters, router), checked as llama.cpp checks it", Attrs: attrsOf[servingParams]()}
}

func (Serving) Check(t *target.Target) []AttrError {
	p, errs := decode[servingParams](t)
	if len(errs) > 0 {
		return errs
	}
	for _, c := range []struct{ attr, typ string }{{"cache_type_k", p.CacheK}, {"cache_type_v", p.CacheV}} {
		if _, ok := kvCacheTypes[c.typ]; !ok {
			errs = append(errs, AttrError{Attr: c.attr, Msg: fmt.Sprintf("%q is not a KV cache type llama.cpp allows (%s)", c.typ, strings.Join(sortedKeysOf(kvCacheTypes), ", "))})
		}
	}
	switch p.FlashAttn {
	case "on", "off", "auto":
	default:
		errs = append(errs, AttrError{Attr: "flash_attn", Msg: fmt.Sprintf("%q: want on, off or auto", p.FlashAttn)})
	}
	if kvCacheTypes[p.CacheV] && p.FlashAttn == "off" {
		errs = append(errs, AttrError{Attr: "flash_attn", Msg: fmt.Sprintf("cache_type_v %q is quantised, and llama.cpp refuses a quantised V cache without flash attention: set flash_attn = \"on\"", p.CacheV)})
	}
	if p.CtxSize < 0 {
		errs = append(errs, AttrError{Attr: "ctx_size", Msg: fmt.Sprintf("%d: want 0 (the model's) or more", p.CtxSize)})
	}
	if p.DraftMax < 0 || p.DraftMin < 0 || p.DraftMin > p.DraftMax {
		errs = append(errs, AttrError{Attr: "draft_min", Msg: fmt.Sprintf("draft_min %d, draft_max %d: want 0 <= draft_min <= draft_max", p.DraftMin, p.DraftMax)})
	}
	if p.DraftPMin < 0 || p.DraftPMin > 1 {
		errs = append(errs, AttrError{Attr: "draft_p_min", Msg: fmt.Sprintf("%g: a probability is between 0 and 1", p.DraftPMin)})
	}
	for name := range p.Scales {
		if _, ok := p.Adapters[name]; !ok {
			errs = append(errs, AttrError{Attr: "adapter_scales", Msg: fmt.Sprintf("%q is not an adapter of this config", name)})
		}
	}
	return errs
}

func (Serving) Outs(*target.Target) []string { return []string{servingFile, servingArgsFile} }

const (
	servingFile     = "serving.json"
	servingArgsFile = "llama-server.args"
)

// ServingConfig is serving.json.
type ServingConfig struct {
	Version    int              `json:"version"`
	Server     string           `json:"server"` // llama.cpp's llama-server
	Model      ServingFile      `json:"model"`
	Draft      *ServingDraft    `json:"draft,omitempty"`
	CacheTypeK string           `json:"cache_type_k"`
	CacheTypeV string           `json:"cache_type_v"`
	FlashAttn  string           `json:"flash_attn"`
	CtxSize    int              `json:"ctx_size"`
	Adapters   []ServingAdapter `json:"adapters"`
	Router     *ServingFile     `json:"router,omitempty"`
	Args       []string         `json:"args"` // after llama-server
}

// ServingFile is a file the config serves: its path in the served layout
// and where it comes from.
type ServingFile struct {
	Label  string `json:"label"`
	Path   string `json:"path"`
	Digest string `json:"digest"` // BLAKE3, hex
	Size   int64  `json:"size"`
}

// ServingDraft is the draft model and its settings.
type ServingDraft struct {
	ServingFile
	Max  int     `json:"max"`
	Min  int     `json:"min"`
	PMin float64 `json:"p_min"`
}

// ServingAdapter is one LoRA adapter.
type ServingAdapter struct {
	Name string `json:"name"`
	ServingFile
	Scale       float64 `json:"scale"`
	TrainedBase string  `json:"trained_base,omitempty"` // the label its training recorded
	// TrainedBaseDigest is the digest of the checkpoint it was trained
	// on, as adapter.gguf records it (lora.BaseDigestKey).
	TrainedBaseDigest string `json:"trained_base_digest,omitempty"`
}

func (Serving) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[servingParams](a)
	if err != nil {
		return err
	}
	cfg := ServingConfig{Version: 1, Server: "llama-server", CacheTypeK: p.CacheK, CacheTypeV: p.CacheV, FlashAttn: p.FlashAttn, CtxSize: p.CtxSize, Adapters: []ServingAdapter{}}
	if kvCacheTypes[p.CacheV] {
		cfg.FlashAttn = "on" // llama.cpp requires it; auto could still fall back
	}
	basePath, baseFile, err := ggufIn(a.InputDirs["model"])
	if err != nil {
		return fmt.Errorf("model: %s: %w", inputLabel(t, "model", ""), err)
	}
	if cfg.Model, err = servingFileOf(inputLabel(t, "model", ""), basePath, baseFile); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	base, err := gguf.Open(basePath)
	if err != nil {
		return fmt.Errorf("model: %s: %w", cfg.Model.Label, err)
	}
	defer base.Close()
	if p.Draft != "" {
		d, err := servingDraft(t, a.InputDirs["draft"], base, cfg.Model.Label)
		if err != nil {
			return err
		}
		cfg.Draft = &ServingDraft{ServingFile: d, Max: p.DraftMax, Min: p.DraftMin, PMin: p.DraftPMin}
		fmt.Fprintf(a.Log, "draft %s: llama.cpp accepts its vocabulary for %s's\n", d.Label, cfg.Model.Label)
	}
	for _, name := range sortedKeysOf(p.Adapters) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ad, err := servingAdapter(t, name, a.InputDirs["adapters."+name], base, cfg.Model.Label)
		if err != nil {
			return err
		}
		ad.Scale = 1
		if s, ok := p.Scales[name]; ok {
			ad.Scale = s
		}
		cfg.Adapters = append(cfg.Adapters, ad)
	}
	if p.Router != "" {
		r, err := servingRouter(t, a.InputDirs["router"], cfg)
		if err != nil {
			return err
		}
		cfg.Router = &r
	}
	cfg.Args = servingArgs(cfg)
	fmt.Fprintf(a.Log, "llama-server %s\n", strings.Join(cfg.Args, " "))
	if err := writeJSONFile(filepath.Join(a.Out, servingFile), cfg); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(a.Out, servingArgsFile), []byte(strings.Join(cfg.Args, "\n")+"\n"), 0o644)
}

// servingFileOf digests a served file.
func servingFileOf(label, path, name string) (ServingFile, error) {
	d, size, err := cache.DigestFile(path)
	if err != nil {
		return ServingFile{}, err
	}
	return ServingFile{Label: label, Path: name, Digest: d.String(), Size: size}, nil
}

// servingDraft checks the draft against the base as llama.cpp does.
func servingDraft(t *target.Target, dir string, base *gguf.File, baseLabel string) (ServingFile, error) {
	l := inputLabel(t, "draft", "")
	path, file, err := ggufIn(dir)
	if err != nil {
		return ServingFile{}, fmt.Errorf("draft: %s: %w", l, err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return ServingFile{}, fmt.Errorf("draft: %s: %w", l, err)
	}
	defer f.Close()
	tv, err := spec.VocabOf(base)
	if err != nil {
		return ServingFile{}, fmt.Errorf("model: %s: %w", baseLabel, err)
	}
	dv, err := spec.VocabOf(f)
	if err != nil {
		return ServingFile{}, fmt.Errorf("draft: %s: %w", l, err)
	}
	if err := spec.Compatible(tv, dv); err != nil {
		return ServingFile{}, fmt.Errorf("draft: llama.cpp cannot use %s to draft for %s: %w", l, baseLabel, err)
	}
	return servingFileOf(l, path, "draft/"+file)
}

// servingAdapter checks an adapter against the base: it was trained on the
// checkpoint the base was converted from, where both record it (the lora
// and gguf rules do), and, as llama_adapter_lora_init checks, every
// lora_a/lora_b pair names a tensor of the base, of a shape that fits.
func servingAdapter(t *target.Target, name, dir string, base *gguf.File, baseLabel string) (ServingAdapter, error) {
	l := inputLabel(t, "adapters", name)
	path := filepath.Join(dir, adapterFile)
	f, err := gguf.Open(path)
	if err != nil {
		return ServingAdapter{}, fmt.Errorf("adapters: %s: %s: %w (name a lora target)", name, l, err)
	}
	defer f.Close()
	if typ, _ := f.String("general.type"); typ != "adapter" {
		return ServingAdapter{}, fmt.Errorf("adapters: %s: %s's %s is not a llama.cpp adapter (general.type %q)", name, l, adapterFile, typ)
	}
	ba, _ := base.String("general.architecture")
	if aa, _ := f.String("general.architecture"); aa != ba {
		return ServingAdapter{}, fmt.Errorf("adapters: %s: %s is an adapter for a %q model; the base is %q", name, l, aa, ba)
	}
	pairs := 0
	for _, ta := range f.Tensors {
		w, ok := strings.CutSuffix(ta.Name, ".lora_a")
		if !ok {
			continue
		}
		tb, ok := f.Tensor(w + ".lora_b")
		if !ok {
			return ServingAdapter{}, fmt.Errorf("adapters: %s: %s: LoRA tensor pair for %q is missing one component", name, l, w)
		}
		m, ok := base.Tensor(w)
		if !ok {
			return ServingAdapter{}, fmt.Errorf("adapters: %s: %s was not trained for this base: LoRA tensor %q does not exist in the base model", name, l, w)
		}
		if len(m.Shape) < 2 || len(ta.Shape) < 2 || len(tb.Shape) < 2 || m.Shape[0] != ta.Shape[0] || m.Shape[1] != tb.Shape[1] || ta.Shape[1] != tb.Shape[0] {
			return ServingAdapter{}, fmt.Errorf("adapters: %s: %s was not trained for this base: tensor %q has shape %v in the base, and the adapter's A %v and B %v do not fit it",
				name, l, w, m.Shape, ta.Shape, tb.Shape)
		}
		pairs++
	}
	if pairs == 0 {
		return ServingAdapter{}, fmt.Errorf("adapters: %s: %s's %s has no LoRA tensors", name, l, adapterFile)
	}
	trained := lora.BaseOf(f)
	if src, _ := base.String(ggufconv.SourceDigestKey); trained.Digest != "" && src != "" && trained.Digest != src {
		on := "a checkpoint"
		if trained.Label != "" {
			on = trained.Label
		}
		return ServingAdapter{}, fmt.Errorf("adapters: %s: %s was trained on %s (digest %.12s), but %s was converted from another checkpoint (digest %.12s): train the adapter on the checkpoint the model is made from",
			name, l, on, trained.Digest, baseLabel, src)
	}
	sf, err := servingFileOf(l, path, "lora/"+name+".gguf")
	if err != nil {
		return ServingAdapter{}, err
	}
	ad := ServingAdapter{Name: name, ServingFile: sf, TrainedBaseDigest: trained.Digest}
	if b, err := os.ReadFile(filepath.Join(dir, "adapter_config.json")); err == nil {
		var c struct {
			Base string `json:"base_model_name_or_path"`
		}
		if json.Unmarshal(b, &c) == nil {
			ad.TrainedBase = c.Base
		}
	}
	return ad, nil
}

// servingRouter checks that router.json routes between this config's
// base and adapters only, by digest.
func servingRouter(t *target.Target, dir string, cfg ServingConfig) (ServingFile, error) {
	l := inputLabel(t, "router", "")
	path := filepath.Join(dir, "router.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return ServingFile{}, fmt.Errorf("router: %s: %w (name a router target)", l, err)
	}
	var r RouterConfig
	if err := json.Unmarshal(b, &r); err != nil {
		return ServingFile{}, fmt.Errorf("router: %s: router.json: %w", l, err)
	}
	if r.Base.Digest != cfg.Model.Digest {
		return ServingFile{}, fmt.Errorf("router: %s routes for base %s (%s, digest %.12s), not this config's model %s (digest %.12s)",
			l, r.Base.Model, r.Base.File, r.Base.Digest, cfg.Model.Label, cfg.Model.Digest)
	}
	shipped := make(map[string]string)
	for _, ad := range cfg.Adapters {
		shipped[ad.Digest] = ad.Name
	}
	for _, dom := range sortedKeysOf(r.Modifiers) {
		m := r.Modifiers[dom]
		if _, ok := shipped[m.Digest]; !ok {
			return ServingFile{}, fmt.Errorf("router: %s sends %s to %s (digest %.12s), which this config does not serve: add it to adapters", l, dom, m.Label, m.Digest)
		}
	}
	return servingFileOf(l, path, "router.json")
}

// servingArgs is llama-server's command line for cfg, with the flag
// names of the bundled llama.cpp (common/arg.cpp; --draft-max and
// --draft-min were removed there in favour of --spec-draft-n-*).
func servingArgs(cfg ServingConfig) []string {
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	args := []string{"-m", cfg.Model.Path, "-c", strconv.Itoa(cfg.CtxSize), "-fa", cfg.FlashAttn, "-ctk", cfg.CacheTypeK, "-ctv", cfg.CacheTypeV}
	if d := cfg.Draft; d != nil {
		args = append(args, "-md", d.Path, "--spec-draft-n-max", strconv.Itoa(d.Max), "--spec-draft-n-min", strconv.Itoa(d.Min), "--spec-draft-p-min", g(d.PMin),
			"-ctkd", cfg.CacheTypeK, "-ctvd", cfg.CacheTypeV)
	}
	for _, ad := range cfg.Adapters {
		args = append(args, "--lora-scaled", ad.Path+":"+g(ad.Scale))
	}
	return args
}
