package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// busyRule runs in-process on every core (as awq and gguf do) and records
// how many of its actions run at once.
type busyRule struct {
	mu           sync.Mutex
	running, max int
}

func (*busyRule) Kind() string    { return "busy" }
func (*busyRule) Version() string { return "1" }
func (*busyRule) Schema() rules.Schema {
	return rules.Schema{Attrs: []rules.Attr{{Name: "n", Type: cty.Number, Key: rules.InKey}},
		Traits: rules.Traits{Resources: true, AllCPUs: true}}
}
func (*busyRule) Check(*target.Target) []rules.AttrError { return nil }
func (*busyRule) Outs(*target.Target) []string           { return nil }
func (r *busyRule) Execute(ctx context.Context, a *rules.Action) error {
	r.mu.Lock()
	r.running++
	r.max = max(r.max, r.running)
	r.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return os.WriteFile(filepath.Join(a.Out, "done"), nil, 0o644)
}

func TestAllCPUsRulesDoNotOverlap(t *testing.T) {
	for _, c := range []struct {
		name     string
		cpus     float64 // resources.cpus of each target; 0: undeclared
		wantMax  int
		describe string
	}{
		{"undeclared", 0, 1, "actions using every core ran side by side"},
		{"declared", 1, 3, "declared cpus = 1 should let three run at once"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rule := &busyRule{}
			reg, err := rules.NewRegistry(rule)
			if err != nil {
				t.Fatal(err)
			}
			c0, err := cache.OpenLocal(filepath.Join(t.TempDir(), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			var targets []*target.Target
			var roots []label.Label
			for i := range 3 {
				l := label.Label{Pkg: "p", Name: string(rune('a' + i))}
				targets = append(targets, &target.Target{Label: l, Kind: "busy",
					Attrs: map[string]cty.Value{"n": cty.NumberIntVal(int64(i))}, Resources: target.Resources{CPUs: c.cpus}})
				roots = append(roots, l)
			}
			e, err := New(Config{Root: t.TempDir(), Targets: targets, Rules: reg, Cache: c0, Jobs: 4, CPUs: 4,
				Observer: &recorder{events: map[string]Event{}}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if _, err := e.Build(context.Background(), roots); err != nil {
				t.Fatal(err)
			}
			if rule.max != c.wantMax {
				t.Errorf("%d ran at once, want %d: %s", rule.max, c.wantMax, c.describe)
			}
		})
	}
}
