package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine/target"
)

// Router writes the configuration of perplexity routing between a base
// model and domain modifiers:
//
//	router "router" {
//	  model     = ":final"                    # the base model (a GGUF file)
//	  base_eval = ":final_val"                # an evaluation of it with by = "domain"
//	  modifiers = { coding = ":code", reasoning = ":reasoning" }   # LoRA targets
//	  threshold = 12.4
//	}
//
// Its artifact is router.json: the base model and each modifier's adapter
// by file, digest and size, and the share of the validation examples each
// modifier would serve.
//
// The base model is an attribute, not derived from the evaluation: a rule
// sees only its own target, and the model must be an input for its digest
// to be in router.json (and its bytes in the action key). Execute checks
// that base_eval evaluated that very model.
type Router struct{}

func (Router) Kind() string    { return "router" }
func (Router) Version() string { return "1" }

// routerParams are the attributes of a router target.
type routerParams struct {
	Model     string            `cogumi:"model,key,required,input=label" doc:"the base model: a target whose artifact holds one GGUF file (or a label of the file)"`
	BaseEval  string            `cogumi:"base_eval,key,required,input=label" doc:"an evaluation of the base model with by set (metrics.json and scores.jsonl)"`
	Modifiers map[string]string `cogumi:"modifiers,key,required,input=labelmap" doc:"a LoRA target per group of base_eval, whose artifact holds adapter.gguf"`
	Threshold float64           `cogumi:"threshold,key,required" doc:"base perplexity above which a prompt goes to its domain's modifier"`
}

func (Router) Schema() Schema {
	return Schema{Summary: "router.json: perplexity routing between a base model and LoRA modifiers", Attrs: attrsOf[routerParams]()}
}

func (Router) Check(t *target.Target) []AttrError {
	p, errs := decode[routerParams](t)
	if len(errs) > 0 {
		return errs
	}
	if p.Threshold <= 0 {
		errs = append(errs, AttrError{Attr: "threshold", Msg: fmt.Sprintf("threshold %g: a perplexity threshold must be positive", p.Threshold)})
	}
	if len(p.Modifiers) == 0 {
		errs = append(errs, AttrError{Attr: "modifiers", Msg: "name at least one modifier (a domain and a LoRA target)"})
	}
	return errs
}

func (Router) Outs(*target.Target) []string { return []string{"router.json"} }

// RouterConfig is router.json, read by `cogumi route`.
type RouterConfig struct {
	Version    int                       `json:"version"`
	Metric     string                    `json:"metric"`
	Threshold  float64                   `json:"threshold"`
	Base       RouterBase                `json:"base"`
	Modifiers  map[string]RouterModifier `json:"modifiers"`
	Validation RouterValidation          `json:"validation"`
}

// RouterBase is the base model of a router.
type RouterBase struct {
	Eval   string `json:"eval"`
	Model  string `json:"model"`
	File   string `json:"file"`
	Digest string `json:"digest"` // BLAKE3, hex
	Size   int64  `json:"size"`
}

// RouterModifier is one domain's LoRA adapter.
type RouterModifier struct {
	Label  string  `json:"label"`
	File   string  `json:"file"`
	Digest string  `json:"digest"`
	Size   int64   `json:"size"`
	Share  float64 `json:"share"` // of all validation examples
}

// RouterValidation counts the validation examples and those routed to a modifier.
type RouterValidation struct {
	Examples int64 `json:"examples"`
	Routed   int64 `json:"routed"`
}

// adapterFile is the llama.cpp adapter in a LoRA artifact.
const adapterFile = "adapter.gguf"

func (Router) Execute(ctx context.Context, a *Action) error {
	t := a.Target
	p, err := decodeAction[routerParams](a)
	if err != nil {
		return err
	}
	eval, err := gateEvalInput(t, a.inputDir, "base_eval")
	if err != nil {
		return err
	}
	modelLabel := inputLabel(t, "model", "")
	if eval.File.Model != "" && eval.File.Model != modelLabel {
		return fmt.Errorf("base_eval: %s evaluated %s, not model %s: route with the model that was evaluated", eval.Label, eval.File.Model, modelLabel)
	}
	if eval.File.By == "" || len(eval.File.Groups) == 0 {
		return fmt.Errorf("base_eval: %s has no groups: evaluate with by = \"domain\" so examples have a domain", eval.Label)
	}
	evalDir := a.InputDirs["base_eval"]
	if info, err := os.Stat(evalDir); err == nil && !info.IsDir() {
		// Only the named file is staged, and the router needs scores.jsonl.
		return fmt.Errorf("base_eval: %s names one file; name the evaluation target itself so that its %s comes too", eval.Label, metrics.ScoresName)
	}
	scores, err := metrics.ReadScores(filepath.Join(evalDir, metrics.ScoresName))
	if err != nil {
		return fmt.Errorf("base_eval: %s: %w", eval.Label, err)
	}
	if len(scores) == 0 {
		return fmt.Errorf("base_eval: %s scored no examples", eval.Label)
	}
	modelPath, modelFile, err := ggufIn(a.InputDirs["model"])
	if err != nil {
		return fmt.Errorf("model: %s: %w", modelLabel, err)
	}
	d, size, err := cache.DigestFile(modelPath)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	threshold := p.Threshold
	cfg := RouterConfig{Version: 1, Metric: "perplexity", Threshold: threshold,
		Base:      RouterBase{Eval: eval.Label, Model: modelLabel, File: modelFile, Digest: d.String(), Size: size},
		Modifiers: make(map[string]RouterModifier)}
	domains := sortedKeysOf(p.Modifiers)
	groups := metrics.GroupsOf(scores)
	for _, dom := range domains {
		if _, ok := eval.File.Groups[dom]; !ok {
			return fmt.Errorf("modifiers: %q is not a %s of %s (its groups: %s)", dom, eval.File.By, eval.Label, strings.Join(groups, ", "))
		}
	}
	r := metrics.Route(scores, threshold, domains)
	for _, dom := range domains {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := inputLabel(t, "modifiers", dom)
		path := filepath.Join(a.InputDirs["modifiers."+dom], adapterFile)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("modifiers: %s: %s has no %s in its artifact: name a LoRA target", dom, l, adapterFile)
		}
		d, size, err := cache.DigestFile(path)
		if err != nil {
			return fmt.Errorf("modifiers: %s: %w", dom, err)
		}
		cfg.Modifiers[dom] = RouterModifier{Label: l, File: adapterFile, Digest: d.String(), Size: size, Share: r.Shares[dom]}
		fmt.Fprintf(a.Log, "%-12s %s: %d of %d validation examples (%.1f%%) have base perplexity > %g\n",
			dom, l, r.Counts[dom], r.Examples, 100*r.Shares[dom], threshold)
	}
	cfg.Validation = RouterValidation{Examples: r.Examples, Routed: r.Routed}
	fmt.Fprintf(a.Log, "routed %d of %d examples to a modifier; the rest stay on %s\n", r.Routed, r.Examples, cfg.Base.File)
	return writeJSONFile(filepath.Join(a.Out, "router.json"), cfg)
}

// ggufIn finds the one GGUF file of a model input: the input itself when
// its label names a file, else the only *.gguf file of the artifact. It
// returns the path and the file's name in the artifact.
func ggufIn(dir string) (string, string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return "", "", err
	}
	if !info.IsDir() {
		return dir, filepath.Base(dir), nil
	}
	var found []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".gguf") {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		return "", "", err
	}
	rel := make([]string, len(found))
	for i, f := range found {
		r, _ := filepath.Rel(dir, f)
		rel[i] = filepath.ToSlash(r)
	}
	switch len(found) {
	case 1:
		return found[0], rel[0], nil
	case 0:
		return "", "", fmt.Errorf("its artifact holds no .gguf file: name a gguf target")
	}
	return "", "", fmt.Errorf("its artifact holds %d .gguf files (%s): name one as label/file", len(found), strings.Join(rel, ", "))
}
