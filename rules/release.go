package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/data/metrics"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/model/release"
)

// Release assembles what is shipped: the files, their manifest and a
// model card.
//
//	release "release" {
//	  files = {
//	    "tiny-Q4_K_M.gguf"     = ":final"              # a path in the release per label
//	    "adapters/coding.gguf" = ":code/adapter.gguf"
//	    "router.json"          = ":router/router.json"
//	  }
//	  gates      = [":release_gate"]   # gate targets: the release depends on them being met
//	  evals      = [":final_val"]      # evaluations whose metrics the card shows
//	  license    = "apache-2.0"
//	  base_model = "meta-llama/Llama-3.1-8B-Instruct"
//	  tags       = ["gguf", "llama"]
//	}
//
// Its artifact is the files at their paths, manifest.json (package
// model/release: each file's BLAKE3, SHA-256, size, the label and action
// key that made it; every gate's checks; every evaluation's metrics;
// cogumi's version; the workspace's git commit) and README.md, the model
// card. The provenance comes from the engine (Traits.Provenance), which
// puts it in the key: the same key always means the same bytes, and a
// rebuild with nothing changed is a cache hit. A gate that is not met
// fails its own action, so a release that depends on it is never built.
type Release struct{}

func (Release) Kind() string    { return "release" }
func (Release) Version() string { return "1" }

// releaseParams are the attributes of a release target.
type releaseParams struct {
	Files       map[string]string `cogumi:"files,key,required,input=labelmap" doc:"what to ship: a path in the release per label (an artifact becomes a directory, a label/file a file)"`
	Gates       []string          `cogumi:"gates,key,input=sources" doc:"gate targets the release depends on: their checks go into the manifest and the card"`
	Evals       []string          `cogumi:"evals,key,input=sources" doc:"evaluations (metrics.json) whose metrics, overall and per group, the manifest and card show"`
	Name        string            `cogumi:"name,key" doc:"the model's name, the card's title (default: the first file's name without extension)"`
	Description string            `cogumi:"description,key" doc:"a paragraph for the model card"`
	License     string            `cogumi:"license,key" default:"other" doc:"the card's license (a Hugging Face license id)"`
	BaseModel   string            `cogumi:"base_model,key" doc:"the card's base_model (a Hugging Face repository)"`
	Tags        []string          `cogumi:"tags,key" doc:"the card's tags ([\"gguf\", \"llama\"])"`
}

func (Release) Schema() Schema {
	return Schema{Summary: "a release: files to ship, manifest.json with their digests and provenance, a model card",
		Attrs: attrsOf[releaseParams](), Traits: Traits{Provenance: true}}
}

func (Release) Check(t *target.Target) []AttrError {
	p, errs := decode[releaseParams](t)
	if len(errs) > 0 {
		return errs
	}
	if len(p.Files) == 0 {
		errs = append(errs, AttrError{Attr: "files", Msg: "name at least one file to ship: { \"model.gguf\" = \":final\" }"})
	}
	paths := sortedKeysOf(p.Files)
	for i, dst := range paths {
		if err := release.CheckPath(dst); err != nil {
			errs = append(errs, AttrError{Attr: "files", Msg: err.Error()})
			continue
		}
		if dst == release.CardName {
			errs = append(errs, AttrError{Attr: "files", Msg: fmt.Sprintf("%q is the model card the release writes: ship the file under another name", dst)})
		}
		if i > 0 && strings.HasPrefix(dst, paths[i-1]+"/") {
			errs = append(errs, AttrError{Attr: "files", Msg: fmt.Sprintf("%q is inside %q: give each label a path of its own", dst, paths[i-1])})
		}
	}
	for _, attr := range []string{"gates", "evals"} {
		for _, in := range t.Inputs {
			if in.Attr == attr && in.IsFile() {
				errs = append(errs, AttrError{Attr: attr, Msg: fmt.Sprintf("%q is a file: name a target (\":release_gate\")", in.File)})
			}
		}
	}
	return errs
}

// Outs: the shipped paths depend on the inputs' artifacts.
func (Release) Outs(*target.Target) []string { return nil }

func (Release) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[releaseParams](a)
	if err != nil {
		return err
	}
	prov := a.Provenance
	if prov == nil {
		return fmt.Errorf("release: the engine gave no provenance of the inputs")
	}
	m := &release.Manifest{Version: release.FormatVersion, Name: p.Name, Cogumi: prov.CogumiVersion, Commit: prov.Commit,
		Files: []release.File{}, Gates: []release.Gate{}, Metrics: []release.Metrics{},
		Card: release.CardInfo{License: p.License, BaseModel: p.BaseModel, Tags: append([]string{}, p.Tags...), Description: p.Description}}
	byAttr := func(attr string) []InputProvenance {
		var out []InputProvenance
		for _, in := range prov.Inputs {
			if in.Attr == attr {
				out = append(out, in)
			}
		}
		return out
	}
	for _, in := range byAttr("files") {
		if err := ctx.Err(); err != nil {
			return err
		}
		files, err := releaseCopy(in, a.Out)
		if err != nil {
			return fmt.Errorf("files: %q = %s: %w", in.Key, in.Label, err)
		}
		m.Files = append(m.Files, files...)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if m.Name == "" {
		base := path.Base(m.Files[0].Path)
		m.Name = strings.TrimSuffix(base, path.Ext(base))
	}
	for _, in := range byAttr("gates") {
		g, err := releaseGate(in)
		if err != nil {
			return fmt.Errorf("gates: %s: %w", in.Label, err)
		}
		m.Gates = append(m.Gates, g)
	}
	for _, in := range byAttr("evals") {
		f, err := releaseEval(in)
		if err != nil {
			return fmt.Errorf("evals: %s: %w", in.Label, err)
		}
		m.Metrics = append(m.Metrics, release.Metrics{Label: in.Label, ActionKey: in.ActionKey, File: f})
	}
	card := release.Card(m)
	cardPath := filepath.Join(a.Out, release.CardName)
	if err := os.WriteFile(cardPath, card, 0o644); err != nil {
		return err
	}
	size, b3, s2, err := release.HashFile(cardPath)
	if err != nil {
		return err
	}
	m.ModelCard = release.File{Path: release.CardName, Size: size, BLAKE3: b3, SHA256: s2}
	js, err := m.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.Out, release.ManifestName), js, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(a.Log, "release %s: %d file(s), %d gate(s), %d evaluation(s); digest %s\n",
		m.Name, len(m.Files), len(m.Gates), len(m.Metrics), release.Digest(js))
	return nil
}

// releaseCopy copies what one input names into out at the path its key
// gives: a file, or each file of a directory below it. It returns the
// manifest entries.
func releaseCopy(in InputProvenance, out string) ([]release.File, error) {
	info, err := os.Stat(in.Dir)
	if err != nil {
		return nil, err
	}
	var rels []string
	if info.IsDir() {
		err = filepath.WalkDir(in.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			r, _ := filepath.Rel(in.Dir, p)
			rels = append(rels, filepath.ToSlash(r))
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		rels = []string{""}
	}
	sort.Strings(rels)
	var files []release.File
	for _, r := range rels {
		dst, src := in.Key, in.Dir
		if r != "" {
			dst, src = in.Key+"/"+r, filepath.Join(in.Dir, filepath.FromSlash(r))
		}
		if dst == release.ManifestName || dst == release.CardName {
			return nil, fmt.Errorf("%s would overwrite the release's own %s: ship it under another path", r, dst)
		}
		f, err := releaseCopyFile(src, filepath.Join(out, filepath.FromSlash(dst)))
		if err != nil {
			return nil, err
		}
		f.Path, f.Label, f.ActionKey = dst, in.Label, in.ActionKey
		files = append(files, f)
	}
	return files, nil
}

// releaseCopyFile copies src to dst, hashing it on the way.
func releaseCopyFile(src, dst string) (release.File, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return release.File{}, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return release.File{}, fmt.Errorf("%s is shipped twice", filepath.Base(dst))
	}
	r, err := os.Open(src)
	if err != nil {
		return release.File{}, err
	}
	defer r.Close()
	w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return release.File{}, err
	}
	size, b3, s2, err := release.HashReader(io.TeeReader(r, w))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return release.File{}, err
	}
	return release.File{Size: size, BLAKE3: b3, SHA256: s2}, nil
}

// releaseGate reads the gate.json of a gate input.
func releaseGate(in InputProvenance) (release.Gate, error) {
	p := in.Dir
	if info, err := os.Stat(p); err == nil && info.IsDir() {
		p = filepath.Join(p, "gate.json")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return release.Gate{}, fmt.Errorf("its artifact has no gate.json: name a gate target")
	}
	var rep gateReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return release.Gate{}, fmt.Errorf("gate.json: %w", err)
	}
	if !rep.Pass {
		return release.Gate{}, fmt.Errorf("gate.json says the gate was not met")
	}
	return release.Gate{Label: in.Label, ActionKey: in.ActionKey, Metrics: rep.Metrics, Baseline: rep.Baseline, Checks: rep.Checks}, nil
}

// releaseEval reads the metrics.json of an evaluation input.
func releaseEval(in InputProvenance) (metrics.File, error) {
	p := in.Dir
	if info, err := os.Stat(p); err == nil && info.IsDir() {
		p = filepath.Join(p, metrics.FileName)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return metrics.File{}, fmt.Errorf("its artifact has no %s: name an evaluation", metrics.FileName)
	}
	f, err := metrics.Parse(b, in.Label+"'s "+metrics.FileName)
	if err != nil {
		return metrics.File{}, err
	}
	return *f, nil
}
