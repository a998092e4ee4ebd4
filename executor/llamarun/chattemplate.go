package llamarun

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/executor/toolchain"
)

//go:embed chattemplate.mjs
var chatTemplateJS []byte

// ChatTemplateCheck is the chat template check (chattemplate.mjs).
func ChatTemplateCheck() Script {
	return Script{file: "cogumi_chat_template.mjs", what: "the chat template check", body: chatTemplateJS}
}

// NamedTemplate is one chat template to check.
type NamedTemplate struct {
	Name     string `json:"name"`
	Template string `json:"template"`
}

// ChatMessage is one message of the conversation rendered.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// TwoTurns is the conversation a chat template is checked with: two user
// turns and the assistant's reply between them, ending where the model
// would answer (add_generation_prompt).
func TwoTurns() []ChatMessage {
	return []ChatMessage{
		{Role: "user", Content: "Hello! What is the capital of France?"},
		{Role: "assistant", Content: "The capital of France is Paris."},
		{Role: "user", Content: "And of Italy?"},
	}
}

// TemplateJob is one run of the check.
type TemplateJob struct {
	Templates []NamedTemplate `json:"templates"`
	BOS       string          `json:"bos_token"`
	EOS       string          `json:"eos_token"`
	Messages  []ChatMessage   `json:"messages"`
}

// Rendered is one template's result: the text, or the Jinja error.
type Rendered struct {
	Name     string `json:"name"`
	Rendered string `json:"rendered"`
	Error    string `json:"error"`
}

// TemplateError is a chat template that does not render.
type TemplateError struct {
	Name  string // "default" for tokenizer.chat_template
	Jinja string // the version of @huggingface/jinja
	Err   string // its error
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("chat template %q %s (@huggingface/jinja %s, as node-llama-cpp renders it, with a two-turn conversation)", e.Name, e.Err, e.Jinja)
}

// RenderChatTemplates renders every template of job with tc's
// @huggingface/jinja, writing the script and its files into dir. A
// template that does not render is a *TemplateError (the first one).
func RenderChatTemplates(ctx context.Context, tc toolchain.NodeLlama, dir string, job TemplateJob) ([]Rendered, error) {
	sp, err := ChatTemplateCheck().Write(dir)
	if err != nil {
		return nil, err
	}
	if job.Messages == nil {
		job.Messages = TwoTurns()
	}
	in, out := filepath.Join(dir, "cogumi_chat_templates.json"), filepath.Join(dir, "cogumi_chat_templates_rendered.json")
	b, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		return nil, fmt.Errorf("writing the chat templates: %w", err)
	}
	cmd := exec.CommandContext(ctx, tc.Node, sp, in, out)
	cmd.Env = append(os.Environ(), "COGUMI_NODE_LLAMA="+tc.Root)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s (node-llama-cpp %s): %w\n%s", ChatTemplateCheck().what, tc.Version, err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Jinja   string     `json:"jinja"`
		Results []Rendered `json:"results"`
	}
	if b, err = os.ReadFile(out); err != nil {
		return nil, fmt.Errorf("reading the rendered chat templates: %w", err)
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Results) != len(job.Templates) {
		return nil, fmt.Errorf("%s: %d results for %d templates (%v)", out, len(res.Results), len(job.Templates), err)
	}
	for _, r := range res.Results {
		if r.Error != "" {
			return res.Results, &TemplateError{Name: r.Name, Jinja: res.Jinja, Err: r.Error}
		}
	}
	return res.Results, nil
}
