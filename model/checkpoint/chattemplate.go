package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ChatTemplate is one named chat template of a checkpoint.
type ChatTemplate struct {
	Name     string // "default", "tool_use", ...: letters, digits and _
	Template string // Jinja
}

// The files besides tokenizer_config.json that may hold chat templates.
const (
	ChatTemplateJinjaFile  = "chat_template.jinja"
	ChatTemplateJSONFile   = "chat_template.json"
	AdditionalTemplatesDir = "additional_chat_templates"
)

// chatTemplates reads the checkpoint's chat templates as gguf-py's
// SpecialVocab does: tokenizer_config.json's chat_template (a string, or a
// list of {"name", "template"}) when the key is there, else
// chat_template.jinja (with additional_chat_templates/*.jinja, as a list
// whose first entry is "default"), else chat_template.json's
// chat_template. The list form is returned as gguf-py's add_chat_template
// reads it: names cleaned (every character but ASCII letters and digits
// becomes _), entries without a name or a template skipped, a later entry
// of a name replacing an earlier one in its place. def is the "default"
// entry or the string form; named are the others.
func (m *Model) chatTemplates(tc *tokenizerConfig) (def string, named []ChatTemplate, err error) {
	var raw json.RawMessage
	if tc.ChatTemplate != nil {
		raw = tc.ChatTemplate
	} else if b, err := os.ReadFile(filepath.Join(m.dir, ChatTemplateJinjaFile)); err == nil {
		extra, _ := filepath.Glob(filepath.Join(m.dir, AdditionalTemplatesDir, "*.jinja"))
		if len(extra) == 0 {
			return string(b), nil, nil
		}
		sort.Strings(extra) // Python's glob order is the directory's; sorted is one of them
		list := []ChatTemplate{{"default", string(b)}}
		for _, p := range extra {
			t, err := os.ReadFile(p)
			if err != nil {
				return "", nil, fmt.Errorf("checkpoint: %w", err)
			}
			list = append(list, ChatTemplate{strings.TrimSuffix(filepath.Base(p), ".jinja"), string(t)})
		}
		def, named = cleanTemplates(list)
		return def, named, nil
	} else {
		var doc struct {
			ChatTemplate json.RawMessage `json:"chat_template"`
		}
		if _, err := m.readJSON(ChatTemplateJSONFile, &doc); err != nil {
			return "", nil, err
		}
		raw = doc.ChatTemplate
	}
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil, nil
	}
	var entries []struct {
		Name     string  `json:"name"`
		Template *string `json:"template"`
	}
	if json.Unmarshal(raw, &entries) != nil {
		// gguf-py warns "Bad type for chat_template field" and goes on.
		return "", nil, nil
	}
	var list []ChatTemplate
	for _, e := range entries {
		if e.Template != nil {
			list = append(list, ChatTemplate{e.Name, *e.Template})
		}
	}
	def, named = cleanTemplates(list)
	return def, named, nil
}

// cleanTemplates splits a list of templates into the default and the
// named others, as gguf-py's add_chat_template does.
func cleanTemplates(list []ChatTemplate) (def string, named []ChatTemplate) {
	for _, t := range list {
		name := strings.Map(func(r rune) rune {
			if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return r
			}
			return '_'
		}, t.Name)
		switch {
		case name == "":
		case name == "default":
			def = t.Template
		default:
			replaced := false
			for i := range named {
				if named[i].Name == name {
					named[i].Template, replaced = t.Template, true
				}
			}
			if !replaced {
				named = append(named, ChatTemplate{name, t.Template})
			}
		}
	}
	return def, named
}
