package ggufconv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/model/checkpoint"
	"go.yaml.in/yaml/v3"
)

// ModelCardFile is the checkpoint's model card, whose YAML front matter
// (license, base_model, tags, ...) llama.cpp's converter reads.
const ModelCardFile = "README.md"

// modelCard is the front matter of a model card: its top-level keys.
type modelCard map[string]*yaml.Node

// readModelCard reads the YAML front matter of dir/README.md as gguf-py's
// Metadata.load_model_card does: the lines between a first line "---" and
// the next "---", with "- no" quoted (YAML 1.1 would read it as false) and
// tabs turned into two spaces. No file or no front matter is an empty card.
func readModelCard(dir string) (modelCard, error) {
	b, err := os.ReadFile(filepath.Join(dir, ModelCardFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] != "---" {
		return nil, nil
	}
	var front []string
	for _, l := range lines[1:] {
		if l == "---" {
			break
		}
		front = append(front, l)
	}
	y := strings.Join(front, "\n") + "\n"
	y = strings.ReplaceAll(y, "- no\n", "- \"no\"\n")
	y = strings.ReplaceAll(y, "\t", "  ")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(y), &doc); err != nil {
		return nil, fmt.Errorf("%s front matter: %w", ModelCardFile, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil // not a mapping: the converter ignores it
	}
	m := doc.Content[0]
	card := modelCard{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		card[m.Content[i].Value] = m.Content[i+1]
	}
	return card, nil
}

// isNull reports a YAML null (~, null, or nothing).
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// scalar returns a scalar's text; ok is false for null, lists and maps.
func scalar(n *yaml.Node) (string, bool) {
	if n == nil || isNull(n) || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

// strings returns a scalar or a list of scalars as a list.
func (c modelCard) strings(key string) []string {
	n := c[key]
	if s, ok := scalar(n); ok {
		return []string{s}
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, e := range n.Content {
		if s, ok := scalar(e); ok {
			out = append(out, s)
		}
	}
	return out
}

// lineage reads base_model-like keys: the first present of keys, a string
// or a list of ids, URLs and maps. present is false when no key is there.
func (c modelCard) lineage(keys ...string) (list []Lineage, present bool) {
	var n *yaml.Node
	for _, k := range keys {
		if v, ok := c[k]; ok {
			present = true
			n = v
			break
		}
	}
	if !present {
		return nil, false
	}
	list = []Lineage{}
	var items []*yaml.Node
	switch {
	case isNull(n):
	case n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	}
	for _, it := range items {
		if s, ok := scalar(it); ok {
			list = append(list, lineageOf(s))
			continue
		}
		if it.Kind != yaml.MappingNode {
			list = append(list, Lineage{}) // the converter logs and writes an empty entry
			continue
		}
		var l Lineage
		fields := map[string]*string{"name": &l.Name, "author": &l.Author, "version": &l.Version,
			"organization": &l.Organization, "description": &l.Description, "url": &l.URL,
			"doi": &l.DOI, "uuid": &l.UUID, "repo_url": &l.RepoURL}
		for i := 0; i+1 < len(it.Content); i += 2 {
			if p, ok := fields[it.Content[i].Value]; ok {
				if s, ok := scalar(it.Content[i+1]); ok {
					*p = s
				}
			}
		}
		list = append(list, l)
	}
	return list, true
}

// authorshipSources are where deriveAuthorship looks, in llama.cpp's
// order of precedence after the overrides.
type authorshipSources struct {
	dir         string // the checkpoint: README.md and config.json
	fallbackID  string // stands for the checkpoint directory's name
	totalParams int64
}

// deriveAuthorship is gguf-py's Metadata.apply_metadata_heuristic: the
// model card's keys, then config.json's _name_or_path (a Hugging Face id),
// then the fallback id, each filling only what is still unset.
func deriveAuthorship(src authorshipSources) (Authorship, error) {
	var a Authorship
	card, err := readModelCard(src.dir)
	if err != nil {
		return a, err
	}
	use := func(field, key string) {
		p := a.field(field)
		if *p != "" {
			return
		}
		n, ok := card[key]
		if !ok {
			return
		}
		if field == "license" && n.Kind == yaml.SequenceNode {
			*p = strings.Join(card.strings(key), ",")
			return
		}
		if s, ok := scalar(n); ok {
			*p = s
		}
	}
	if card != nil {
		for _, prefix := range []string{"", "model_"} {
			for _, f := range [][2]string{{"name", "name"}, {"author", "author"}, {"version", "version"},
				{"organization", "organization"}, {"description", "description"}, {"finetune", "finetune"},
				{"basename", "basename"}, {"size_label", "size_label"}, {"source.url", "url"},
				{"source.doi", "doi"}, {"source.uuid", "uuid"}, {"source.repo_url", "repo_url"}} {
				use(f[0], prefix+f[1])
			}
		}
		use("name", "model_name")
		use("author", "model_creator")
		use("basename", "model_type")
		if l, ok := card.lineage("base_model", "base_models", "base_model_sources"); ok {
			a.BaseModels = l
		}
		if l, ok := card.lineage("datasets", "dataset", "dataset_sources"); ok {
			a.Datasets = l
		}
		use("license", "license")
		use("license.name", "license_name")
		use("license.link", "license_link")
		for _, k := range []string{"tags", "pipeline_tag"} {
			if _, ok := card[k]; ok {
				a.Tags = append(a.Tags, card.strings(k)...)
			}
		}
		for _, k := range []string{"languages", "language"} {
			if _, ok := card[k]; ok {
				a.Languages = append(a.Languages, card.strings(k)...)
			}
		}
	}
	fromID := func(id string) {
		m := ParseModelID(id, src.totalParams)
		set := func(p *string, v string) {
			if *p == "" {
				*p = v
			}
		}
		if m.FullName != "" {
			set(&a.Name, IDToTitle(m.FullName))
		}
		if m.Org != "" {
			set(&a.Organization, IDToTitle(m.Org))
		}
		set(&a.Basename, m.Basename)
		set(&a.Finetune, m.Finetune)
		set(&a.Version, m.Version)
		set(&a.SizeLabel, m.SizeLabel)
	}
	var cfg struct {
		NameOrPath *string `json:"_name_or_path"`
	}
	if b, err := os.ReadFile(filepath.Join(src.dir, checkpoint.ConfigFile)); err == nil && json.Unmarshal(b, &cfg) == nil &&
		cfg.NameOrPath != nil && strings.Count(*cfg.NameOrPath, "/") <= 1 {
		fromID(*cfg.NameOrPath)
	}
	if src.fallbackID != "" {
		name := a.Name
		fromID(src.fallbackID)
		// cogumi's fallback is the model target's name, used as it is
		// written (llama.cpp title-cases the directory's name).
		if name == "" {
			a.Name = src.fallbackID
		}
	}
	return a, nil
}

// merge sets every field o sets (a metadata override).
func (a *Authorship) merge(o *Authorship) {
	for _, k := range append([]string{"name"}, OverrideKeys()...) {
		if v := *o.field(k); v != "" {
			*a.field(k) = v
		}
	}
	if o.BaseModels != nil {
		a.BaseModels = o.BaseModels
	}
	if o.Datasets != nil {
		a.Datasets = o.Datasets
	}
	if o.Tags != nil {
		a.Tags = o.Tags
	}
	if o.Languages != nil {
		a.Languages = o.Languages
	}
}

// LineageOf reads base models or datasets named as a model card's
// base_model does (Hugging Face ids or URLs).
func LineageOf(ids []string) []Lineage {
	out := []Lineage{}
	for _, id := range ids {
		out = append(out, lineageOf(id))
	}
	return out
}
