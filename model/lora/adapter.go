// Package lora reads and validates PEFT LoRA adapters (adapter_config.json
// and adapter_model.safetensors) of Llama checkpoints, merges them into
// their base exactly, and writes them as llama.cpp LoRA adapters (GGUF).
//
// An adapter comes from outside (a training run, a download), so Open checks
// everything the merge and the GGUF writer rely on: the configuration, every
// tensor's name, dtype and shape, and that A and B come in pairs of one rank;
// CheckBase then checks the pairs against the base checkpoint.
package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/safetensors"
)

// File names of a PEFT adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// prefix starts every PEFT tensor name of a causal LM:
// base_model.model.<the base's module name>.lora_A.weight.
const prefix = "base_model.model."

// Modules returns the projection names a LoRA may target, in layer order.
func Modules() []string {
	return []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
}

// DefaultModules are the modules targeted when none are given (PEFT's
// default for Llama: the attention's q, k, v and o).
func DefaultModules() []string { return []string{"q_proj", "k_proj", "v_proj", "o_proj"} }

// moduleGroup returns the submodule ("self_attn" or "mlp") of a projection.
func moduleGroup(m string) (string, bool) {
	switch m {
	case "q_proj", "k_proj", "v_proj", "o_proj":
		return "self_attn", true
	case "gate_proj", "up_proj", "down_proj":
		return "mlp", true
	}
	return "", false
}

// Config is adapter_config.json: the fields cogumi writes and checks.
type Config struct {
	PeftType      string   `json:"peft_type"`
	TaskType      string   `json:"task_type"`
	R             int      `json:"r"`
	Alpha         float64  `json:"lora_alpha"`
	Dropout       float64  `json:"lora_dropout"`
	Bias          string   `json:"bias"`
	FanInFanOut   bool     `json:"fan_in_fan_out"`
	TargetModules []string `json:"target_modules"`
	BaseModel     string   `json:"base_model_name_or_path"`
	InferenceMode bool     `json:"inference_mode"`
}

// Scale is the factor of the update: W' = W + Scale · B·A (PEFT's
// scaling = lora_alpha / r, without rsLoRA).
func (c Config) Scale() float64 { return c.Alpha / float64(c.R) }

// Pair is one adapted linear: its base weight W [Out, In] gets Scale·B·A,
// with A [R, In] and B [Out, R].
type Pair struct {
	Module string // the base's module: model.layers.3.self_attn.q_proj
	Layer  int
	Proj   string // q_proj ...
	A, B   safetensors.Info
	In     int
	Out    int
}

// Weight is the name of the base tensor the pair adapts.
func (p Pair) Weight() string { return p.Module + ".weight" }

// Adapter is an open, validated PEFT adapter. Its weights stay
// memory-mapped until Close.
type Adapter struct {
	dir   string
	cfg   Config
	file  *safetensors.File
	pairs []Pair // by layer, then in Modules order
}

// Find returns the directory at or below dir holding adapter_config.json
// (an artifact may keep the adapter in a subdirectory).
func Find(dir string) (string, error) {
	if fi, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil && fi.Mode().IsRegular() {
		return dir, nil
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == ConfigFile {
			found = append(found, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("lora adapter: %w", err)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("lora adapter: no %s at or below %s: not a PEFT LoRA adapter", ConfigFile, dir)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("lora adapter: %d directories below %s hold an %s; an adapter input must hold exactly one",
		len(found), dir, ConfigFile)
}

// Open opens and validates the adapter in dir (the directory holding
// adapter_config.json).
func Open(dir string) (*Adapter, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	cfg, err := readConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	wPath := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(wPath); err != nil {
		if bins, _ := filepath.Glob(filepath.Join(dir, "adapter_model.bin")); len(bins) > 0 {
			return nil, fmt.Errorf("lora adapter %s: only adapter_model.bin (PyTorch pickle); save the adapter with safe_serialization=True", dir)
		}
		return nil, fmt.Errorf("lora adapter %s: no %s: the adapter has no weights", dir, WeightsFile)
	}
	f, err := safetensors.Open(wPath)
	if err != nil {
		return nil, fmt.Errorf("lora adapter: %w", err)
	}
	a := &Adapter{dir: dir, cfg: cfg, file: f}
	if err := a.pairUp(); err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

func readConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("lora adapter: no %s: not a PEFT LoRA adapter directory", path)
		}
		return Config{}, fmt.Errorf("lora adapter: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Config{}, fmt.Errorf("lora adapter %s: not valid JSON: %v", path, err)
	}
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("lora adapter %s: %s", path, fmt.Sprintf(format, args...))
	}
	if tm, ok := raw["target_modules"]; ok && len(tm) > 0 && tm[0] == '"' {
		return bad("target_modules is a regular expression; cogumi reads adapters that list their modules")
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return bad("%v", err)
	}
	if c.PeftType != "LORA" {
		return bad("peft_type is %q; cogumi reads LoRA adapters (\"LORA\")", c.PeftType)
	}
	if c.R <= 0 {
		return bad("r is %d; the rank must be at least 1", c.R)
	}
	if !(c.Alpha > 0) || math.IsInf(c.Alpha, 0) {
		return bad("lora_alpha is %v; it must be a positive number", c.Alpha)
	}
	if c.FanInFanOut {
		return bad("fan_in_fan_out is true (GPT-2 Conv1D layout); Llama adapters store A [r, in] and B [out, r]")
	}
	if c.Bias != "" && c.Bias != "none" {
		return bad("bias is %q; cogumi merges adapters without bias terms (\"none\")", c.Bias)
	}
	for _, k := range []string{"use_dora", "use_rslora"} {
		var on bool
		if v, ok := raw[k]; ok && json.Unmarshal(v, &on) == nil && on {
			return bad("%s is true; cogumi handles plain LoRA", k)
		}
	}
	for _, k := range []string{"alpha_pattern", "rank_pattern"} {
		var pat map[string]json.RawMessage
		if v, ok := raw[k]; ok && json.Unmarshal(v, &pat) == nil && len(pat) > 0 {
			return bad("%s gives some modules their own %s; cogumi merges (and llama.cpp's adapter stores) one alpha and rank for all", k, strings.TrimSuffix(k, "_pattern"))
		}
	}
	var mts []string
	if v, ok := raw["modules_to_save"]; ok && json.Unmarshal(v, &mts) == nil && len(mts) > 0 {
		return bad("modules_to_save %v: the adapter replaces whole modules, which a LoRA merge cannot express", mts)
	}
	for _, m := range c.TargetModules {
		if _, ok := moduleGroup(m); !ok {
			return bad("target module %q: cogumi handles %s", m, strings.Join(Modules(), ", "))
		}
	}
	return c, nil
}

// parseName splits a PEFT tensor name into the module, its layer and
// projection, and "A" or "B".
func parseName(name string) (module string, layer int, proj, ab string, err error) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", 0, "", "", fmt.Errorf("does not start with %q", prefix)
	}
	switch {
	case strings.HasSuffix(rest, ".lora_A.weight"):
		module, ab = strings.TrimSuffix(rest, ".lora_A.weight"), "A"
	case strings.HasSuffix(rest, ".lora_B.weight"):
		module, ab = strings.TrimSuffix(rest, ".lora_B.weight"), "B"
	default:
		return "", 0, "", "", fmt.Errorf("is neither a lora_A.weight nor a lora_B.weight")
	}
	parts := strings.Split(module, ".")
	if len(parts) != 5 || parts[0] != "model" || parts[1] != "layers" {
		return "", 0, "", "", fmt.Errorf("is not a decoder layer's projection (model.layers.N.self_attn.q_proj, ...)")
	}
	layer, err = strconv.Atoi(parts[2])
	if err != nil || layer < 0 || strconv.Itoa(layer) != parts[2] {
		return "", 0, "", "", fmt.Errorf("layer %q is not a number", parts[2])
	}
	group, ok := moduleGroup(parts[4])
	if !ok || group != parts[3] {
		return "", 0, "", "", fmt.Errorf("%s.%s is not one of the Llama projections (%s)", parts[3], parts[4], strings.Join(Modules(), ", "))
	}
	return module, layer, parts[4], ab, nil
}

// pairUp validates every tensor and matches A with B.
func (a *Adapter) pairUp() error {
	path := a.file.Path()
	byModule := map[string]*Pair{}
	seen := map[string]bool{}
	for _, info := range a.file.Infos() {
		module, layer, proj, ab, err := parseName(info.Name)
		if err != nil {
			return fmt.Errorf("lora adapter %s: tensor %q %v", path, info.Name, err)
		}
		if info.DType != safetensors.F32 && info.DType != safetensors.F16 && info.DType != safetensors.BF16 {
			return fmt.Errorf("lora adapter %s: tensor %q has dtype %s; LoRA weights are F32, F16 or BF16", path, info.Name, info.DType)
		}
		if len(info.Shape) != 2 || info.Shape[0] <= 0 || info.Shape[1] <= 0 {
			return fmt.Errorf("lora adapter %s: tensor %q has shape %v; LoRA weights are 2-D", path, info.Name, info.Shape)
		}
		p := byModule[module]
		if p == nil {
			p = &Pair{Module: module, Layer: layer, Proj: proj}
			byModule[module] = p
		}
		r := int64(a.cfg.R)
		if ab == "A" {
			if info.Shape[0] != r {
				return fmt.Errorf("lora adapter %s: tensor %q has shape %v; lora_A is [r, in] and r is %d (%s)", path, info.Name, info.Shape, r, ConfigFile)
			}
			p.A, p.In = info, int(info.Shape[1])
		} else {
			if info.Shape[1] != r {
				return fmt.Errorf("lora adapter %s: tensor %q has shape %v; lora_B is [out, r] and r is %d (%s)", path, info.Name, info.Shape, r, ConfigFile)
			}
			p.B, p.Out = info, int(info.Shape[0])
		}
		seen[proj] = true
	}
	if len(byModule) == 0 {
		return fmt.Errorf("lora adapter %s: no lora_A/lora_B tensors", path)
	}
	for _, p := range byModule {
		switch {
		case p.A.Name == "":
			return fmt.Errorf("lora adapter %s: %s has lora_B but no lora_A", path, p.Module)
		case p.B.Name == "":
			return fmt.Errorf("lora adapter %s: %s has lora_A but no lora_B", path, p.Module)
		}
		if len(a.cfg.TargetModules) > 0 && !slices.Contains(a.cfg.TargetModules, p.Proj) {
			return fmt.Errorf("lora adapter %s: %s is adapted, but %s lists target_modules %v", path, p.Module, ConfigFile, a.cfg.TargetModules)
		}
		a.pairs = append(a.pairs, *p)
	}
	order := map[string]int{}
	for i, m := range Modules() {
		order[m] = i
	}
	sort.Slice(a.pairs, func(i, j int) bool {
		if a.pairs[i].Layer != a.pairs[j].Layer {
			return a.pairs[i].Layer < a.pairs[j].Layer
		}
		return order[a.pairs[i].Proj] < order[a.pairs[j].Proj]
	})
	return nil
}

// Dir returns the adapter's directory.
func (a *Adapter) Dir() string { return a.dir }

// Config returns adapter_config.json.
func (a *Adapter) Config() Config { return a.cfg }

// Pairs returns the adapted linears, by layer and projection.
func (a *Adapter) Pairs() []Pair { return slices.Clone(a.pairs) }

// Close unmaps the weights.
func (a *Adapter) Close() error { return a.file.Close() }

// ReadA returns A [R, In] as float32, row-major.
func (a *Adapter) ReadA(p Pair) ([]float32, error) { return a.read(p.A) }

// ReadB returns B [Out, R] as float32, row-major.
func (a *Adapter) ReadB(p Pair) ([]float32, error) { return a.read(p.B) }

func (a *Adapter) read(info safetensors.Info) ([]float32, error) {
	out := make([]float32, info.NumElements())
	if err := a.file.ReadF32Rows(info.Name, 0, int(info.Rows()), out); err != nil {
		return nil, fmt.Errorf("lora adapter: %w", err)
	}
	return out, nil
}

// CheckBase verifies that every adapted linear exists in the base
// checkpoint with the shape [Out, In] the adapter was trained for.
func (a *Adapter) CheckBase(m *checkpoint.Model) error {
	cfg := m.Config()
	for _, p := range a.pairs {
		if p.Layer >= cfg.NumHiddenLayers {
			return fmt.Errorf("lora adapter %s: %s: the base %s has %d layers", a.dir, p.Module, m.Dir(), cfg.NumHiddenLayers)
		}
		t, ok := m.Tensor(p.Weight())
		if !ok {
			return fmt.Errorf("lora adapter %s: %s: the base %s has no tensor %s", a.dir, p.Module, m.Dir(), p.Weight())
		}
		if len(t.Shape) != 2 || t.Shape[0] != int64(p.Out) || t.Shape[1] != int64(p.In) {
			return fmt.Errorf("lora adapter %s: %s: B·A is [%d, %d] but the base's %s is %v: the adapter was trained on another model",
				a.dir, p.Module, p.Out, p.In, p.Weight(), t.Shape)
		}
		if !t.DType.IsFloat() {
			return fmt.Errorf("lora adapter %s: the base's %s has dtype %s; a LoRA merges into float weights", a.dir, p.Weight(), t.DType)
		}
	}
	return nil
}
