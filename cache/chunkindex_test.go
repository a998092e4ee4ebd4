package cache

import (
	"context"
	"os"
	"testing"
)

func TestChunkIndex(t *testing.T) {
	c, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("0123456789abcdefghij")
	d, err := c.PutBytes(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	refs := []ChunkRef{{DigestBytes(data[:10]), 10}, {DigestBytes(data[10:]), 10}}
	if err := c.ChunkIndex().Record(d, refs); err != nil {
		t.Fatal(err)
	}
	x := c.ChunkIndex() // another process: loads the file
	path, off, ok := x.Find(refs[1].Digest, 10)
	if !ok || path != c.BlobPath(d) || off != 10 {
		t.Fatalf("Find = %q, %d, %v; want the blob at 10", path, off, ok)
	}
	if _, _, ok := x.Find(DigestBytes([]byte("other")), 5); ok {
		t.Error("Find of an unknown chunk succeeded")
	}
	c.removeBlob(d)
	if _, _, ok := c.ChunkIndex().Find(refs[0].Digest, 10); ok {
		t.Error("Find succeeded after the blob was removed")
	}
}

func TestVerifyChunkIndex(t *testing.T) {
	c, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("0123456789abcdefghij")
	d, _ := c.PutBytes(context.Background(), data)
	gone := DigestBytes([]byte("gone"))
	x := c.ChunkIndex()
	_ = x.Record(d, []ChunkRef{{DigestBytes(data), 19}}) // wrong length
	_ = x.Record(gone, []ChunkRef{{gone, 4}})            // blob not here
	rep, err := c.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].What != "chunk index of blob "+d.String() {
		t.Fatalf("problems %v, want the bad index of %s only", rep.Problems, d.Short())
	}
	for _, b := range []Digest{d, gone} {
		if _, err := os.Stat(c.chunkIndexPath(b)); !os.IsNotExist(err) {
			t.Errorf("index of %s left", b.Short())
		}
	}
}
