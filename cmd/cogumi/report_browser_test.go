package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cogumi/cogumi/internal/browsertest"
)

// The report of a build with a failed gate, opened in headless Chromium:
// every target is drawn with its status, the gate's message is visible,
// clicking a target shows why it ran, and nothing goes to the console.
// The screenshot goes to $COGUMI_REPORT_SCREENSHOT when set.
func TestReportInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	ws := t.TempDir()
	script, err := os.ReadFile(filepath.Join("..", "..", "testdata", "script", "gate.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The gate scenario's workspace, without its deliberately bad package.
	parts := regexp.MustCompile(`(?m)^-- (\S+) --\n`).Split(string(script), -1)
	names := regexp.MustCompile(`(?m)^-- (\S+) --\n`).FindAllStringSubmatch(string(script), -1)
	for i, m := range names {
		if strings.HasPrefix(m[1], "bad") {
			continue
		}
		p := filepath.Join(ws, m[1])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(parts[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("COGUMI_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	page := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr bytes.Buffer
	rc := run(context.Background(), []string{"-C", ws, "build", "-k", "--report", page, "//models:publish", "//models:publish_ok"}, &stdout, &stderr)
	if rc == 0 {
		t.Fatalf("build succeeded, want the gate to fail:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "report: "+page) {
		t.Fatalf("no report written:\n%s", stderr.String())
	}

	type drawn struct{ Label, Status string }
	var nodes []drawn
	var failures, panel string
	err = chromedp.Do(b.Ctx,
		chromedp.Navigate("file://"+page),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var err error
			nodes, err = chromedp.Run(ctx, chromedp.Evaluate[[]drawn](
				`[...document.querySelectorAll('#g .n')].map(n => ({Label: n.dataset.label, Status: n.dataset.status}))`))
			if err != nil {
				return err
			}
			if failures, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('summary').innerText`)); err != nil {
				return err
			}
			_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](
				`document.querySelector('.n[data-label="//models:final_val"] rect').dispatchEvent(new MouseEvent('click', {bubbles: true}))`))
			if err != nil {
				return err
			}
			panel, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('panel').innerText`))
			return err
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"//models:final_val": "built", "//models:base_val": "built", "//models:final": "built",
		"//models:ok": "built", "//models:publish_ok": "built",
		"//models:release": "failed", "//models:publish": "skipped by a gate",
	}
	got := make(map[string]string)
	for _, n := range nodes {
		got[n.Label] = n.Status
	}
	for l, s := range want {
		if got[l] != s {
			t.Errorf("%s drawn as %q, want %q", l, got[l], s)
		}
	}
	if len(got) != len(want) {
		t.Errorf("drawn %v, want %d targets", got, len(want))
	}
	if !strings.Contains(failures, "//models:release: gate not met (3 thresholds)") ||
		!strings.Contains(failures, "perplexity 12.0 > max 11.5 (//models:final_val)") {
		t.Errorf("the failed gate's message is not shown:\n%s", failures)
	}
	if !strings.Contains(panel, "never built") || !strings.Contains(panel, "local") {
		t.Errorf("clicking //models:final_val shows:\n%s", panel)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console: %s", strings.Join(errs, "\n"))
	}
	if shot := os.Getenv("COGUMI_REPORT_SCREENSHOT"); shot != "" {
		png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
