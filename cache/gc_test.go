package cache

import (
	"os"
	"testing"
	"time"
)

func putResult(t *testing.T, c *Local, name string, content string, age time.Duration) ActionKey {
	t.Helper()
	ctx := t.Context()
	d, err := c.PutBytes(ctx, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	r := &ActionResult{Key: KeyFromRecords([]string{name}), Label: "//p:" + name,
		Outputs: Manifest{Files: []FileEntry{{Path: "o", Digest: d, Size: int64(len(content))}}}}
	if err := c.PutAction(ctx, r); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(c.actionPath(r.Key), when, when); err != nil {
		t.Fatal(err)
	}
	return r.Key
}

func TestGCByAgeKeepsLinkedAndShared(t *testing.T) {
	ctx := t.Context()
	c, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := putResult(t, c, "old", "old bytes", 40*24*time.Hour)
	linked := putResult(t, c, "linked", "linked bytes", 40*24*time.Hour)
	shared := putResult(t, c, "shared-old", "shared bytes", 40*24*time.Hour)
	fresh := putResult(t, c, "fresh", "fresh bytes", time.Hour)
	putResult(t, c, "shared-new", "shared bytes", time.Hour)

	later := time.Now().Add(2 * time.Hour) // past the blob grace period
	rep, err := c.GC(GCOptions{OlderThan: 30 * 24 * time.Hour, Keep: map[ActionKey]bool{linked: true}, DryRun: true, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Actions) != 2 || rep.Blobs != 1 {
		t.Fatalf("dry run: %d actions, %d blobs; want 2 (old, shared-old) and 1 (old bytes)", len(rep.Actions), rep.Blobs)
	}
	if _, err := c.GetAction(ctx, old); err != nil {
		t.Fatal("dry run removed something")
	}
	if _, err := c.GC(GCOptions{OlderThan: 30 * 24 * time.Hour, Keep: map[ActionKey]bool{linked: true}, Now: later}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[ActionKey]bool{old: false, linked: true, shared: false, fresh: true} {
		_, err := c.GetAction(ctx, k)
		if (err == nil) != want {
			t.Errorf("after gc, action present = %v, want %v", err == nil, want)
		}
	}
	if c.HasBlob(ctx, DigestBytes([]byte("old bytes")), 9) {
		t.Error("unreferenced blob kept")
	}
	if !c.HasBlob(ctx, DigestBytes([]byte("shared bytes")), 12) {
		t.Error("blob still referenced by a fresh result was removed")
	}
}

func TestGCMaxSizeRemovesOldestFirst(t *testing.T) {
	ctx := t.Context()
	c, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := putResult(t, c, "a", "aaaaaaaaaa", 3*time.Hour)
	b := putResult(t, c, "b", "bbbbbbbbbb", 2*time.Hour)
	cc := putResult(t, c, "c", "cccccccccc", 1*time.Hour)
	rep, err := c.GC(GCOptions{MaxSize: 20, Now: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Actions) != 1 || rep.Actions[0] != a || rep.BytesLeft != 20 {
		t.Fatalf("removed %v, %d bytes left; want only the oldest, 20 left", rep.Actions, rep.BytesLeft)
	}
	for _, k := range []ActionKey{b, cc} {
		if _, err := c.GetAction(ctx, k); err != nil {
			t.Errorf("newer result removed: %v", err)
		}
	}
	u, err := c.Usage()
	if err != nil || u.Actions != 2 {
		t.Errorf("usage after gc = %+v, %v", u, err)
	}
}
