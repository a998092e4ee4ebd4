package s3

import (
	"context"
	"errors"
	"testing"

	"github.com/cogumi/cogumi/internal/s3test"
)

func TestRecords(t *testing.T) {
	srv := s3test.Start(t)
	s := openTest(t, srv)
	ctx := context.Background()
	for _, name := range []string{"b.json", "a.json"} {
		if err := s.PutRecord(ctx, RecordsApprovals, name, []byte(`{"n":"`+name+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRecord(ctx, RecordsApprovals, "../x", nil); err == nil {
		t.Fatal("a record named ../x was written")
	}
	var got []string
	err := s.ListRecords(ctx, RecordsApprovals, func(name string, b []byte) error {
		got = append(got, name+"="+string(b))
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != `a.json={"n":"a.json"}` || got[1] != `b.json={"n":"b.json"}` {
		t.Fatalf("ListRecords: %q, %v", got, err)
	}
	// Records are not cache entries: no action or blob listing shows them.
	n := 0
	_ = s.ListActions(ctx, func(ActionEntry) error { n++; return nil })
	_ = s.ListBlobs(ctx, func(BlobEntry) error { n++; return nil })
	if n != 0 {
		t.Fatalf("cache listings show %d records", n)
	}
	ro := openTest(t, srv, func(c *Config) { c.Upload = false; c.URL = s.cfg.URL })
	if err := ro.PutRecord(ctx, RecordsApprovals, "c.json", []byte("{}")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only PutRecord: %v", err)
	}
}
