package s3

import (
	"io"
	"net/http"
	"sync/atomic"

	"github.com/cogumi/cogumi/cache"
)

// Stats counts what a store did since Open. Wire bytes are HTTP bodies as
// sent and received (compressed, retries included); blob bytes are the
// original content of blobs fully moved.
type Stats struct {
	Requests      int64 // HTTP requests sent, retries included
	Retries       int64 // requests repeated after a transient failure
	BytesUp       int64 // HTTP body bytes sent
	BytesDown     int64 // HTTP body bytes received
	BlobsUp       int64 // blobs uploaded
	BlobsDown     int64 // blobs downloaded and verified
	BlobBytesUp   int64 // their original sizes
	BlobBytesDown int64
	BlobsSkipped  int64 // uploads skipped: the bucket had the blob

	// Chunked blobs (see doc.go): chunks moved, and chunks not moved
	// because the bucket (on a push) or the local cache (on a pull) had them.
	ChunksUp, ChunkBytesUp           int64
	ChunksSkipped, ChunkBytesSkipped int64
	ChunksDown, ChunkBytesDown       int64
	ChunksLocal, ChunkBytesLocal     int64
}

// counters is the live form of Stats.
type counters struct {
	requests, retries, bytesUp, bytesDown          atomic.Int64
	blobsUp, blobsDown, blobBytesUp, blobBytesDown atomic.Int64
	blobsSkipped                                   atomic.Int64
	chunksUp, chunkBytesUp                         atomic.Int64
	chunksSkipped, chunkBytesSkipped               atomic.Int64
	chunksDown, chunkBytesDown                     atomic.Int64
	chunksLocal, chunkBytesLocal                   atomic.Int64
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests: c.requests.Load(), Retries: c.retries.Load(),
		BytesUp: c.bytesUp.Load(), BytesDown: c.bytesDown.Load(),
		BlobsUp: c.blobsUp.Load(), BlobsDown: c.blobsDown.Load(),
		BlobBytesUp: c.blobBytesUp.Load(), BlobBytesDown: c.blobBytesDown.Load(),
		BlobsSkipped: c.blobsSkipped.Load(),
		ChunksUp:     c.chunksUp.Load(), ChunkBytesUp: c.chunkBytesUp.Load(),
		ChunksSkipped: c.chunksSkipped.Load(), ChunkBytesSkipped: c.chunkBytesSkipped.Load(),
		ChunksDown: c.chunksDown.Load(), ChunkBytesDown: c.chunkBytesDown.Load(),
		ChunksLocal: c.chunksLocal.Load(), ChunkBytesLocal: c.chunkBytesLocal.Load(),
	}
}

// ProgressEvent tells Config.Progress how one blob transfer goes. A
// transfer sends one event with Start set, events with Bytes as content
// arrives or leaves, and one with Done set (and Err if it failed).
type ProgressEvent struct {
	Digest cache.Digest
	Upload bool  // false: a download
	Size   int64 // the blob's size: the total, for a rate and an ETA
	Bytes  int64 // original bytes moved since the previous event
	Start  bool
	Done   bool
	Err    error
}

// progress reports an event if a hook is set.
func (s *Store) progress(ev ProgressEvent) {
	if s.cfg.Progress != nil {
		s.cfg.Progress(ev)
	}
}

// countingTransport counts requests and body bytes of every HTTP exchange.
type countingTransport struct {
	base http.RoundTripper
	c    *counters
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	if req.Body != nil && req.Body != http.NoBody {
		// A RoundTripper must not modify the request it is given.
		r := req.Clone(req.Context())
		r.Body = &countingBody{ReadCloser: req.Body, n: &t.c.bytesUp}
		req = r
	}
	resp, err := t.base.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.c.bytesDown}
	}
	return resp, err
}

// countingBody adds the bytes read through it to n.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// touchReader touches an activity as bytes are read through it, keeping a
// request that is moving data alive (see guard).
type touchReader struct {
	r io.Reader
	a *activity
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.a.touch()
	}
	return n, err
}
