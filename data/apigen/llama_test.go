package apigen

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
)

// TestRealModelOutput points the client at testdata/llama/serve_openai.mjs:
// llama.cpp (node-llama-cpp) generating with a tiny random Llama. Its text
// is nonsense, but it is a real model's output, tokens and usage.
func TestRealModelOutput(t *testing.T) {
	missing := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: run `npm ci` in testdata/llama)", msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found")
	}
	dir := os.Getenv("COGUMI_NODE_LLAMA")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", "testdata", "llama"))
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		missing("node-llama-cpp not installed under " + dir)
	}
	work := t.TempDir()
	ckpt := filepath.Join(work, "ckpt")
	if err := tinyllama.Write(ckpt, tinyllama.Options{Seed: 3, Tokenizer: tinyllama.Tokenizer("spm")}); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rep, err := ggufconv.Convert(context.Background(), m, work, ggufconv.Options{Type: "F32", Name: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	server, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "llama", "serve_openai.mjs"))
	cmd := exec.Command(node, server, filepath.Join(work, rep.File))
	cmd.Env = append(os.Environ(), "COGUMI_NODE_LLAMA="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				urlc <- u
			}
		}
		close(urlc)
	}()
	var url string
	select {
	case url = <-urlc:
	case <-time.After(60 * time.Second):
		t.Fatal("serve_openai.mjs did not start in 60s")
	}
	if url == "" {
		t.Fatal("serve_openai.mjs exited")
	}
	memo := newMemo()
	reqs := make([]Request, 4)
	for i := range reqs {
		reqs[i] = Request{ID: fmt.Sprint(i), Seed: int64(i), Messages: []Message{{Role: "user", Content: fmt.Sprintf("Write question number %d about math.", i)}}}
	}
	c := Config{Endpoint: url, Model: "tiny", Memo: memo, Concurrency: 2, Params: map[string]any{"max_tokens": 8}, Price: Price{1, 2}}
	ans, r, err := Run(context.Background(), c, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range ans {
		if a.Usage.PromptTokens < 5 || a.Usage.CompletionTokens < 1 || a.Usage.CompletionTokens > 8 {
			t.Fatalf("answer %d: %+v", i, a)
		}
		t.Logf("answer %d (%d tokens, %s): %q", i, a.Usage.CompletionTokens, a.FinishReason, a.Content)
	}
	if r.Sent != 4 || r.TokensOut == 0 || r.Cost == 0 {
		t.Fatalf("%+v", r)
	}
	ans2, r2, err := Run(context.Background(), c, reqs)
	if err != nil || r2.Reused != 4 || r2.Sent != 0 || ans2[0].Content != ans[0].Content {
		t.Fatalf("%+v, %v", r2, err)
	}
}
