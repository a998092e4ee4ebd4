package s3

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/cachetest"
	"github.com/cogumi/cogumi/cache/chunker"
	"github.com/cogumi/cogumi/internal/s3test"
)

// smallChunks makes a few MiB a chunked blob of dozens of chunks.
func smallChunks(s *Store) {
	s.chunkThreshold = 256 << 10
	s.chunkParams = chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
}

// checkpoint writes a safetensors file of n tensors of 128 KiB; the
// tensors in changed get other bytes (seeded by version).
func checkpoint(t *testing.T, dir string, n, version int, changed ...int) (string, cache.Digest, int64) {
	t.Helper()
	js := "{"
	for i := range n {
		if i > 0 {
			js += ","
		}
		js += fmt.Sprintf(`"layer.%02d":{"dtype":"U8","shape":[131072],"data_offsets":[%d,%d]}`, i, i<<17, (i+1)<<17)
	}
	js += "}"
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(js)))
	b.WriteString(js)
	for i := range n {
		seed := uint64(i)
		for _, c := range changed {
			if c == i {
				seed += uint64(version) << 32
			}
		}
		r := rand.New(rand.NewPCG(seed, 7))
		t := make([]byte, 1<<17)
		for j := range t {
			t[j] = byte(r.Uint32())
		}
		b.Write(t)
	}
	path := filepath.Join(dir, fmt.Sprintf("v%d.safetensors", version))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, cache.DigestBytes(b.Bytes()), int64(b.Len())
}

func TestChunkedDedup(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	dir := t.TempDir()
	s := openTest(t, srv)
	smallChunks(s)
	p1, d1, n1 := checkpoint(t, dir, 32, 1)
	p2, d2, n2 := checkpoint(t, dir, 32, 2, 5, 20)
	if err := s.PutFile(ctx, d1, n1, p1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ChunkBytesUp != n1 || st.ChunksSkipped != 0 {
		t.Fatalf("first push: %d chunk bytes up of %d, %d skipped", st.ChunkBytesUp, n1, st.ChunksSkipped)
	}
	if _, err := s.client.StatObject(ctx, srv.Bucket, s.blobKey(d1), minio.StatObjectOptions{}); err == nil {
		t.Error("a chunked blob also went up whole")
	}
	before := s.Stats()
	if err := s.PutFile(ctx, d2, n2, p2); err != nil {
		t.Fatal(err)
	}
	up := s.Stats().ChunkBytesUp - before.ChunkBytesUp
	// Two tensors of 32 changed, and the header's chunk: about 2/32.
	if up > n2/8 {
		t.Errorf("second version: %d bytes of %d uploaded, want at most 1/8", up, n2)
	}
	t.Logf("second version: %d of %d bytes uploaded (%.1f%%)", up, n2, 100*float64(up)/float64(n2))
	// Another machine that has version 1 pulls version 2: only the
	// changed chunks come down, the rest is copied from its cache.
	local, err := cache.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := openTest(t, srv, func(c *Config) {
		c.URL = "s3://" + srv.Bucket + "/" + s.prefix
		c.LocalChunks = local.ChunkIndex()
	})
	smallChunks(r)
	pull := func(d cache.Digest, n int64) {
		t.Helper()
		tmp := filepath.Join(local.Dir(), "tmp", "dl")
		if err := r.GetFile(ctx, d, n, tmp); err != nil {
			t.Fatal(err)
		}
		if got, _, err := local.AdoptFile(tmp); err != nil || got != d {
			t.Fatalf("adopted %s, %v", got, err)
		}
	}
	pull(d1, n1)
	if st := r.Stats(); st.ChunkBytesDown != n1 || st.ChunksLocal != 0 {
		t.Errorf("first pull: %d bytes down, %d chunks local", st.ChunkBytesDown, st.ChunksLocal)
	}
	before = r.Stats()
	pull(d2, n2)
	down := r.Stats().ChunkBytesDown - before.ChunkBytesDown
	if down > n2/8 {
		t.Errorf("second pull: %d bytes of %d downloaded, want at most 1/8", down, n2)
	}
	if got, err := os.ReadFile(local.BlobPath(d2)); err != nil || cache.DigestBytes(got) != d2 {
		t.Fatalf("pulled blob wrong: %v", err)
	}
	// ReadBlob streams a chunked blob too.
	if got := cachetest.ReadAll(t, r, d2); cache.DigestBytes(got) != d2 {
		t.Error("ReadBlob of a chunked blob returned other bytes")
	}
}

// TestOldLayoutReadable: a bucket written by a cogumi that does not chunk
// (large blobs whole under cas/, results under ac/) serves a chunking one.
func TestOldLayoutReadable(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	old := openTest(t, srv, func(c *Config) { c.ChunkThreshold = -1 })
	path, d, n := checkpoint(t, t.TempDir(), 16, 1)
	if err := old.PutFile(ctx, d, n, path); err != nil {
		t.Fatal(err)
	}
	res := cachetest.SampleResult(t, old, "old")
	res.Outputs.Files = append(res.Outputs.Files, cache.FileEntry{Path: "z/model.safetensors", Digest: d, Size: n})
	if err := old.PutAction(ctx, res); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, srv, func(c *Config) { c.URL = "s3://" + srv.Bucket + "/" + old.prefix })
	smallChunks(s)
	if _, err := s.GetAction(ctx, res.Key); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.FindBlob(ctx, d, n); !ok || err != nil {
		t.Fatalf("FindBlob of an old whole blob = %v, %v", ok, err)
	}
	dst := filepath.Join(t.TempDir(), "m")
	if err := s.GetFile(ctx, d, n, dst); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cache.DigestFile(dst); got != d {
		t.Error("GetFile of an old whole blob returned other bytes")
	}
}

// TestChunkedActionPrefix: a result naming a chunked blob goes under
// ac-chunked/, where older cogumi versions never look; others stay in ac/.
func TestChunkedActionPrefix(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	smallChunks(s)
	path, d, n := checkpoint(t, t.TempDir(), 8, 1)
	if err := s.PutFile(ctx, d, n, path); err != nil {
		t.Fatal(err)
	}
	small := cachetest.SampleResult(t, s, "small")
	big := cachetest.SampleResult(t, s, "big")
	big.Outputs.Files = append(big.Outputs.Files, cache.FileEntry{Path: "z/m.safetensors", Digest: d, Size: n})
	for _, r := range []*cache.ActionResult{small, big} {
		if err := s.PutAction(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAction(ctx, r.Key); err != nil {
			t.Fatal(err)
		}
	}
	c := srv.Client(t)
	for _, k := range []struct {
		key  string
		want bool
	}{{s.actionKey(small.Key), true}, {s.chunkedActionKey(small.Key), false}, {s.actionKey(big.Key), false}, {s.chunkedActionKey(big.Key), true}} {
		_, err := c.StatObject(ctx, srv.Bucket, k.key, minio.StatObjectOptions{})
		if (err == nil) != k.want {
			t.Errorf("%s exists = %v, want %v", k.key, err == nil, k.want)
		}
	}
	var chunked int
	if err := s.ListActions(ctx, func(e ActionEntry) error {
		if e.Chunked {
			chunked++
		}
		return nil
	}); err != nil || chunked != 1 {
		t.Errorf("ListActions: %d chunked entries, %v", chunked, err)
	}
}

// TestResumedPull: a pull interrupted half-way leaves its partial file;
// the next pull keeps the chunks already there.
func TestResumedPull(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	smallChunks(s)
	path, d, n := checkpoint(t, t.TempDir(), 32, 1)
	if err := s.PutFile(ctx, d, n, path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	dir := t.TempDir()
	// What an interrupted pull leaves: the first half in place, the rest zeros.
	part := append(append([]byte(nil), data[:n/2]...), make([]byte, n-n/2)...)
	if err := os.WriteFile(filepath.Join(dir, "."+d.String()+".partial"), part, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "blob")
	if err := s.GetFile(ctx, d, n, dst); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cache.DigestFile(dst); got != d {
		t.Fatal("resumed pull assembled other bytes")
	}
	st := s.Stats()
	if st.ChunkBytesLocal < n/3 || st.ChunkBytesDown > n*2/3 {
		t.Errorf("resumed pull: %d bytes kept, %d downloaded of %d", st.ChunkBytesLocal, st.ChunkBytesDown, n)
	}
	if _, err := os.Stat(filepath.Join(dir, "."+d.String()+".partial")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the partial file is left after a complete pull")
	}
}

// TestChunkExistenceByListing: a push asks about its chunks with LIST
// requests, not a HEAD each.
func TestChunkExistenceByListing(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	smallChunks(s)
	dir := t.TempDir()
	p1, d1, n1 := checkpoint(t, dir, 64, 1)
	if err := s.PutFile(ctx, d1, n1, p1); err != nil {
		t.Fatal(err)
	}
	p2, d2, n2 := checkpoint(t, dir, 64, 2, 3)
	before := s.Stats()
	if err := s.PutFile(ctx, d2, n2, p2); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	chunks := st.ChunksUp - before.ChunksUp + st.ChunksSkipped - before.ChunksSkipped
	puts := st.ChunksUp - before.ChunksUp
	// One HEAD of the chunk list, one LIST (the bucket has < 1,000
	// chunks), a PUT per new chunk, the chunk list.
	if reqs := st.Requests - before.Requests; reqs > puts+3 {
		t.Errorf("%d requests to push %d chunks of which %d new", reqs, chunks, puts)
	}
}

// TestCorruptChunk: a damaged chunk makes the blob a miss naming it, and
// the next push repairs it.
func TestCorruptChunk(t *testing.T) {
	ctx := t.Context()
	srv := s3test.Start(t)
	s := openTest(t, srv)
	smallChunks(s)
	path, d, n := checkpoint(t, t.TempDir(), 16, 1)
	if err := s.PutFile(ctx, d, n, path); err != nil {
		t.Fatal(err)
	}
	refs, _, err := s.getChunkList(ctx, d, n)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client(t)
	key := s.chunkKey(refs[3].Digest)
	info, err := c.StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Repeat([]byte{1}, int(refs[3].Size))
	meta := map[string]string{}
	for _, m := range []string{metaDigest, metaSize} {
		meta[m] = info.Metadata.Get("X-Amz-Meta-" + m)
	}
	meta[metaFormat] = formatRaw
	if _, err := c.PutObject(ctx, srv.Bucket, key, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{UserMetadata: meta}); err != nil {
		t.Fatal(err)
	}
	err = s.GetFile(ctx, d, n, filepath.Join(t.TempDir(), "x"))
	var ce *cache.CorruptError
	if !errors.As(err, &ce) || !bytes.Contains([]byte(ce.What), []byte(d.String())) {
		t.Fatalf("GetFile with a bad chunk = %v, want a *CorruptError naming the blob", err)
	}
	if s.HasBlob(ctx, d, n) {
		t.Error("HasBlob true after a bad chunk was found")
	}
	if err := s.PutFile(ctx, d, n, path); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "y")
	if err := s.GetFile(context.Background(), d, n, dst); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
}
