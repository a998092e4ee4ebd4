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
// clicking a target shows why it ran, the timeline's lanes are the job
// slots the actions held, and nothing goes to the console. Then the report
// of a rebuild that changed nothing: every target up to date. The
// screenshot of the first goes to $COGUMI_REPORT_SCREENSHOT when set.
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
	// An earlier evaluation, for a history of two values.
	val := filepath.Join(ws, "models", "final_val.json")
	cur, err := os.ReadFile(val)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(val, bytes.Replace(cur, []byte(`"perplexity":12.0`), []byte(`"perplexity":13.0`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if rc := run(context.Background(), []string{"-C", ws, "build", "//models:final_val"}, &stdout, &stderr); rc != 0 {
		t.Fatalf("first build: %d\n%s", rc, stderr.String())
	}
	if err := os.WriteFile(val, cur, 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	rc := run(context.Background(), []string{"-C", ws, "build", "-k", "--report", page, "//models:publish", "//models:publish_ok"}, &stdout, &stderr)
	if rc == 0 {
		t.Fatalf("build succeeded, want the gate to fail:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "report: "+page) {
		t.Fatalf("no report written:\n%s", stderr.String())
	}

	type drawn struct{ Label, Status string }
	var nodes []drawn
	var failures, panel, gates, stages string
	var sparks int
	var laneNames []string
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
			if panel, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('panel').innerText`)); err != nil {
				return err
			}
			if gates, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('gates').innerText`)); err != nil {
				return err
			}
			if stages, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('stages').innerText`)); err != nil {
				return err
			}
			laneNames, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#timeline text.lane')].map(t => t.lastChild.nodeValue)`))
			if err != nil {
				return err
			}
			// Sparklines drawn with a size: two points of the history of final_val's perplexity.
			sparks, err = chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('#metrics .eval[data-eval="//models:final_val"] svg.spark polyline')]
				.filter(p => p.points.numberOfItems === 2 && p.getBBox().height > 0).length`))
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
	if !strings.Contains(panel, "input models/final_val.json changed") || !strings.Contains(panel, "local") {
		t.Errorf("clicking //models:final_val shows:\n%s", panel)
	}
	for _, want := range []string{"//models:release failed", "perplexity\t12.0\tlimit 11.5", "✗ not met", "✓ met",
		"//models:ok passed", "//models:final is 1.2 kB > max_bytes 1kB"} {
		if !strings.Contains(gates, want) {
			t.Errorf("the gates section lacks %q:\n%s", want, gates)
		}
	}
	if !strings.Contains(stages, "max_bytes 1 kB (//models:release)") || !strings.Contains(stages, "max_bytes 2 kB (//models:ok)") {
		t.Errorf("the models by stage lack the gates' max_bytes:\n%s", stages)
	}
	if sparks == 0 {
		t.Error("no sparkline of //models:final_val's metrics over its two builds")
	}
	// Everything ran on this machine: each lane is a job slot, the first
	// one first.
	if len(laneNames) == 0 || laneNames[0] != "local 1" {
		t.Errorf("timeline lanes %q, want local 1 first", laneNames)
	}
	for _, n := range laneNames {
		if !regexp.MustCompile(`^local [1-9][0-9]*$`).MatchString(n) {
			t.Errorf("timeline lane %q, want local <slot>", n)
		}
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

	// A rebuild of what succeeded changes nothing: every target is up to
	// date (its outputs still in place), not a cache hit, and says so.
	stderr.Reset()
	if rc := run(context.Background(), []string{"-C", ws, "build", "//models:publish_ok"}, &stdout, &stderr); rc != 0 {
		t.Fatalf("no-op rebuild: %d\n%s", rc, stderr.String())
	}
	noop := filepath.Join(t.TempDir(), "noop.html")
	if rc := run(context.Background(), []string{"-C", ws, "report", "-o", noop}, &stdout, &stderr); rc != 0 {
		t.Fatalf("report: %d\n%s", rc, stderr.String())
	}
	var counts, timeline string
	err = chromedp.Do(b.Ctx,
		chromedp.Navigate("file://"+noop),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var err error
			nodes, err = chromedp.Run(ctx, chromedp.Evaluate[[]drawn](
				`[...document.querySelectorAll('#g .n')].map(n => ({Label: n.dataset.label, Status: n.dataset.status}))`))
			if err != nil {
				return err
			}
			if counts, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#summary .counts').innerText`)); err != nil {
				return err
			}
			if timeline, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('timeline').innerText`)); err != nil {
				return err
			}
			_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](
				`document.querySelector('.n[data-label="//models:final_val"] rect').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))`))
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
	got = make(map[string]string)
	for _, n := range nodes {
		got[n.Label] = n.Status
	}
	for _, l := range []string{"//models:final_val", "//models:base_val", "//models:final", "//models:ok", "//models:publish_ok"} {
		if got[l] != "up to date" {
			t.Errorf("no-op rebuild: %s drawn as %q, want up to date", l, got[l])
		}
	}
	if len(got) != 5 || strings.TrimSpace(counts) != "5 up to date" {
		t.Errorf("no-op rebuild: drawn %v, counted %q; want 5 up to date", got, counts)
	}
	if !strings.Contains(timeline, "Nothing ran") {
		t.Errorf("no-op rebuild's timeline:\n%s", timeline)
	}
	if !strings.Contains(panel, "up to date") || !strings.Contains(panel, "nothing ran, was fetched or linked") {
		t.Errorf("hovering //models:final_val after a no-op rebuild shows:\n%s", panel)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console: %s", strings.Join(errs, "\n"))
	}
}
