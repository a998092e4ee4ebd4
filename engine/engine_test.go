package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events map[string]Event
}

func (r *recorder) Planned(int)            {}
func (r *recorder) Started(string, string) {}
func (r *recorder) Waiting(string)         {}
func (r *recorder) Warn(string)            {}
func (r *recorder) Output(string, string)  {}
func (r *recorder) Done(ev Event, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[ev.Label] = ev
}

func runT(name, command string, srcs ...string) *target.Target {
	t := &target.Target{
		Label: label.Label{Pkg: "p", Name: name}, Kind: "run",
		Attrs: map[string]cty.Value{
			"command": cty.StringVal(command),
			"outs":    cty.ListVal([]cty.Value{cty.StringVal("o")}),
		},
	}
	for _, s := range srcs {
		if l, err := label.Parse(s, "p"); err == nil {
			t.Inputs = append(t.Inputs, target.Input{Attr: "srcs", Label: l})
		} else {
			t.Inputs = append(t.Inputs, target.Input{Attr: "srcs", File: "p/" + s})
		}
	}
	return t
}

func build(t *testing.T, root string, c *cache.Local, targets []*target.Target, roots ...string) map[string]Event {
	t.Helper()
	rec := &recorder{events: make(map[string]Event)}
	e, err := New(Config{Root: root, Targets: targets, Rules: rules.Default(), Cache: c, Jobs: 4, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	var ls []label.Label
	for _, r := range roots {
		l, _ := label.Parse(r, "")
		ls = append(ls, l)
	}
	if _, err := e.Build(context.Background(), ls); err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return rec.events
}

// A diamond builds each node once, in dependency order, and a second
// build is all cache hits; changing the leaf re-runs exactly its dependents.
func TestBuildDiamond(t *testing.T) {
	root := t.TempDir()
	c, err := cache.OpenLocal(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(root, "p", "leaf.txt"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("one\n")
	targets := func() []*target.Target {
		return []*target.Target{
			runT("a", "cat $SRCS > $OUT/o", "leaf.txt"),
			runT("b", "cat $SRCS | tr a-z A-Z > $OUT/o", ":a"),
			runT("c", "cat $SRCS $SRCS > $OUT/o", ":a"),
			runT("d", "cat $SRCS > $OUT/o", ":b", ":c"),
			runT("other", "echo other > $OUT/o"),
		}
	}
	ev := build(t, root, c, targets(), "//p:d")
	for _, l := range []string{"//p:a", "//p:b", "//p:c", "//p:d"} {
		if ev[l].Result != Built {
			t.Errorf("first build: %s = %s, want built", l, ev[l].Result)
		}
	}
	if _, ok := ev["//p:other"]; ok {
		t.Error("a target outside the closure was built")
	}
	got, err := os.ReadFile(filepath.Join(root, "cogumi-out", "p", "d", "o"))
	if err != nil || string(got) != "ONE\none\none\n" {
		t.Errorf("output = %q, %v", got, err)
	}
	ev = build(t, root, c, targets(), "//p:d")
	for l, e := range ev {
		if e.Result != Cached {
			t.Errorf("second build: %s = %s, want cached", l, e.Result)
		}
	}
	write("two\n")
	ev = build(t, root, c, targets(), "//p:d")
	for _, l := range []string{"//p:a", "//p:b", "//p:c", "//p:d"} {
		if ev[l].Result != Built {
			t.Errorf("after edit: %s = %s, want built", l, ev[l].Result)
		}
	}
	if ev["//p:a"].Reason == "" || !strings.Contains(ev["//p:a"].Reason, "input p/leaf.txt changed") {
		t.Errorf("reason for //p:a = %q", ev["//p:a"].Reason)
	}
}
