package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// Every build leaves a record: per target its result, reason, times, where
// it ran and the bytes it moved; a failure keeps its log tail. Only the
// newest keepRecords are kept.
func TestBuildRecord(t *testing.T) {
	root := t.TempDir()
	c, err := cache.OpenLocal(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "p", "leaf.txt"), []byte("leaf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := []*target.Target{
		runT("a", "cat $SRCS > $OUT/o", "leaf.txt"),
		runT("b", "cat $SRCS $SRCS > $OUT/o", ":a"),
		runT("bad", "echo something broke; exit 3", ":a"),
		runT("after", "cat $SRCS > $OUT/o", ":bad"),
	}
	buildOnce := func() {
		e, err := New(Config{Root: root, Targets: targets, Rules: rules.Default(), Cache: c, Jobs: 4, KeepGoing: true})
		if err != nil {
			t.Fatal(err)
		}
		roots := []label.Label{{Pkg: "p", Name: "b"}, {Pkg: "p", Name: "after"}}
		if _, err := e.Build(context.Background(), roots); err == nil {
			t.Fatal("build succeeded, want //p:bad to fail")
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	buildOnce()
	dir := StateDir(c, root)
	recs, err := BuildRecords(dir)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records = %d, %v; want 1", len(recs), err)
	}
	r := recs[0]
	if strings.Join(r.Roots, " ") != "//p:b //p:after" || r.Summary.Failed != 1 || r.Ended.Before(r.Started) {
		t.Errorf("record = %+v", r)
	}
	by := make(map[string]ActionRecord)
	var order []string
	for _, a := range r.Actions {
		by[a.Label] = a
		order = append(order, a.Label)
	}
	if got := strings.Join(order, " "); got != "//p:a //p:b //p:bad //p:after" {
		t.Errorf("actions in order %s", got)
	}
	a := by["//p:a"]
	if a.Result != Built || a.Kind != "run" || a.Reason != "never built" || a.Executor != "local" || a.Slot != 1 ||
		a.BytesIn != 5 || a.BytesOut != 5 || a.End.Before(a.Start) || a.Start.Before(r.Started) || a.Key.IsZero() {
		t.Errorf("//p:a = %+v", a)
	}
	if b := by["//p:b"]; b.BytesIn != 5 || b.BytesOut != 10 || strings.Join(b.Deps, " ") != "//p:a" || b.Start.Before(a.End) {
		t.Errorf("//p:b = %+v", b)
	}
	if bad := by["//p:bad"]; bad.Result != Failed || !strings.Contains(bad.LogTail, "something broke") ||
		!strings.Contains(bad.Error, "status 3") || !bad.Ran() {
		t.Errorf("//p:bad = %+v", bad)
	}
	if after := by["//p:after"]; after.Result != Skipped || after.Ran() {
		t.Errorf("//p:after = %+v", after)
	}

	for range keepRecords + 2 {
		time.Sleep(time.Millisecond) // ids are timestamps
		buildOnce()
	}
	recs, err = BuildRecords(dir)
	if err != nil || len(recs) != keepRecords {
		t.Fatalf("records kept = %d, %v; want %d", len(recs), err, keepRecords)
	}
	last := recs[len(recs)-1]
	if last.ID <= r.ID || last.Summary.Cached != 2 {
		t.Errorf("newest record = %+v", last.Summary)
	}
	// A rebuild that changed nothing: both hits were up to date, their
	// outputs already in place.
	for _, a := range last.Actions[:2] {
		if a.Result != Cached || !a.UpToDate {
			t.Errorf("no-op rebuild: %s = %s, up to date %v; want an up-to-date cache hit", a.Label, a.Result, a.UpToDate)
		}
	}
	// //p:a's outputs removed: still a cache hit, linked again, so not up
	// to date; //p:b's were left in place.
	if err := os.RemoveAll(filepath.Join(root, "cogumi-out", "p", "a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	buildOnce()
	recs, err = BuildRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	last = recs[len(recs)-1]
	if a := last.Actions[0]; a.Label != "//p:a" || a.Result != Cached || a.UpToDate {
		t.Errorf("outputs removed: %s = %s, up to date %v; want a cache hit, linked again", a.Label, a.Result, a.UpToDate)
	}
	if b := last.Actions[1]; b.Result != Cached || !b.UpToDate {
		t.Errorf("%s = %s, up to date %v; want up to date", b.Label, b.Result, b.UpToDate)
	}
	if _, err := os.Stat(filepath.Join(root, "cogumi-out", "p", "a", "o")); err != nil {
		t.Errorf("//p:a's output was not linked again: %v", err)
	}
}
