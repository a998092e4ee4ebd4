package checkpoint_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
)

// TestChatTemplates reads chat templates from the places gguf-py's
// SpecialVocab reads them, with its precedence and its list handling.
func TestChatTemplates(t *testing.T) {
	type named = checkpoint.ChatTemplate
	for _, tc := range []struct {
		name  string
		field any               // tokenizer_config.json's chat_template; nil: absent
		files map[string]string // other files of the checkpoint
		def   string
		named []named
	}{
		{"string", "S", nil, "S", nil},
		{"list", []map[string]any{{"name": "default", "template": "D"}, {"name": "tool-use", "template": "T"},
			{"name": "", "template": "no name"}, {"name": "x"}, {"name": "rag", "template": "R"}, {"name": "tool use", "template": "T2"}},
			nil, "D", []named{{"tool_use", "T2"}, {"rag", "R"}}},
		{"list without default", []map[string]any{{"name": "rag", "template": "R"}}, nil, "", []named{{"rag", "R"}}},
		{"config wins", "S", map[string]string{"chat_template.jinja": "J"}, "S", nil},
		{"jinja", nil, map[string]string{"chat_template.jinja": "J", "chat_template.json": `{"chat_template": "N"}`}, "J", nil},
		{"jinja and additional", nil, map[string]string{"chat_template.jinja": "J",
			"additional_chat_templates/tool_use.jinja": "T", "additional_chat_templates/rag.jinja": "R"},
			"J", []named{{"rag", "R"}, {"tool_use", "T"}}},
		{"json", nil, map[string]string{"chat_template.json": `{"chat_template": "N"}`}, "N", nil},
		{"bad type", map[string]any{"x": 1}, nil, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := tinyllama.Write(dir, tinyllama.Options{Seed: 1}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, checkpoint.TokenizerConfigFile)
			var doc map[string]any
			b, err := os.ReadFile(p)
			if err != nil || json.Unmarshal(b, &doc) != nil {
				t.Fatalf("tokenizer_config.json: %v", err)
			}
			delete(doc, "chat_template")
			if tc.field != nil {
				doc["chat_template"] = tc.field
			}
			b, _ = json.Marshal(doc)
			files := map[string]string{checkpoint.TokenizerConfigFile: string(b)}
			for k, v := range tc.files {
				files[k] = v
			}
			for name, body := range files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			v := openVocab(t, dir)
			if v.ChatTemplate != tc.def || !reflect.DeepEqual(v.NamedChatTemplates, tc.named) {
				t.Errorf("default %q, named %v; want %q, %v", v.ChatTemplate, v.NamedChatTemplates, tc.def, tc.named)
			}
		})
	}
}
