package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// memoRule stores three values in its memo, counting how many it had to
// make, and fails afterwards when told to: like an API generation whose
// last request fails.
type memoRule struct{}

func (memoRule) Kind() string    { return "memoer" }
func (memoRule) Version() string { return "1" }
func (memoRule) Schema() rules.Schema {
	return rules.Schema{Attrs: []rules.Attr{{Name: "fail", Type: cty.Bool, Key: rules.InKey}}}
}
func (memoRule) Check(*target.Target) []rules.AttrError { return nil }
func (memoRule) Outs(*target.Target) []string           { return []string{"made"} }
func (memoRule) Execute(ctx context.Context, a *rules.Action) error {
	made := 0
	for i := range 3 {
		k := fmt.Sprintf("request %d", i)
		v, ok, err := a.Memo.Get(ctx, k)
		if err != nil {
			return err
		}
		if !ok {
			made++
			v = []byte(fmt.Sprintf("answer %d", i))
			if err := a.Memo.Put(ctx, k, v); err != nil {
				return err
			}
		}
		if want := fmt.Sprintf("answer %d", i); string(v) != want {
			return fmt.Errorf("memo %q = %q, want %q", k, v, want)
		}
	}
	if v, ok := a.Target.Attrs["fail"]; ok && v.True() {
		return fmt.Errorf("failing after the requests")
	}
	return os.WriteFile(filepath.Join(a.Out, "made"), []byte(fmt.Sprint(made)), 0o644)
}

func TestMemoSurvivesFailure(t *testing.T) {
	root := t.TempDir()
	c, err := cache.OpenLocal(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := rules.NewRegistry(memoRule{})
	if err != nil {
		t.Fatal(err)
	}
	l := label.Label{Pkg: "p", Name: "gen"}
	buildOnce := func(fail bool) error {
		tg := &target.Target{Label: l, Kind: "memoer", Attrs: map[string]cty.Value{"fail": cty.BoolVal(fail)}}
		e, err := New(Config{Root: root, Targets: []*target.Target{tg}, Rules: reg, Cache: c, Jobs: 1, Observer: &recorder{events: map[string]Event{}}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		_, err = e.Build(context.Background(), []label.Label{l})
		return err
	}
	if err := buildOnce(true); err == nil {
		t.Fatal("the failing build succeeded")
	}
	if err := buildOnce(false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "cogumi-out", "p", "gen", "made"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "0" {
		t.Errorf("the second build made %s values, want 0: the failed build's values were lost", b)
	}
	// The entries are ordinary cache entries: verify finds nothing wrong.
	rep, err := c.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("verify: %+v", rep)
	}
}
