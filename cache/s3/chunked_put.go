package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/chunker"
)

// putChunked stores blob d of size bytes, read from f, as chunks and a
// chunk list. The chunker cuts the file (with safetensors and GGUF
// structure cuts) and hashes the chunks while the blob's own digest is
// computed beside it and the bucket's chunks are listed; as soon as the
// listing is complete, chunks the bucket lacks are uploaded while the
// chunker goes on (each verified against its digest as it is sent). If the
// bucket holds too many chunks to list in that time, the chunks are asked
// about once all are cut (see presentChunks). The chunk list goes last, and
// only if the whole content hashed to d. An interrupted push is resumed by
// the next one: the chunks it sent are found by the listing.
func (s *Store) putChunked(ctx context.Context, d cache.Digest, size int64, f *os.File) (err error) {
	s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Start: true})
	defer func() {
		var e *Error
		if err != nil && !errors.As(err, &e) {
			err = fmt.Errorf("storing blob %s in %s: %w", d.Short(), s, err)
		}
		s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Done: true, Err: err})
	}()
	type sum struct {
		d   cache.Digest
		err error
	}
	whole := make(chan sum, 1)
	go func() {
		got, err := cache.DigestReaderAt(f, size)
		whole <- sum{got, err}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	listing := s.listChunks(ctx, size/int64(s.chunkParams.Avg)+1)
	eager := s.newEagerUploader(ctx, cancel, d, size, f, listing)
	refs, err := cutChunks(f, size, s.chunkParams, runtime.GOMAXPROCS(0), eager.offer)
	have, sent := eager.wait()
	w := <-whole
	switch {
	case err != nil:
		return err
	case context.Cause(ctx) != nil:
		return context.Cause(ctx)
	case w.err != nil:
		return w.err
	case w.d != d:
		return mismatch(size, w.d)
	}
	if err := s.putChunks(ctx, d, size, f, refs, have, sent); err != nil {
		return err
	}
	if err := s.putChunkList(ctx, d, size, refs); err != nil {
		return err
	}
	s.repaired(d)
	s.stats.blobsUp.Add(1)
	s.stats.blobBytesUp.Add(size)
	if s.cfg.LocalChunks != nil {
		_ = s.cfg.LocalChunks.Record(d, refs) // an index is a hint: losing it costs a download
	}
	return nil
}

// chunkListing is a listing of the bucket's chunks made in the background.
type chunkListing struct {
	done     chan struct{}
	have     map[cache.Digest]bool // valid once done, if complete
	complete bool
}

// listChunks lists the bucket's chunks in the background, giving up
// beyond 125 keys per chunk the blob is expected to have (so that the
// listing, a page of 1,000 keys at a time, ends about when the chunker
// does); a listing given up, or failed, is not complete.
func (s *Store) listChunks(ctx context.Context, expected int64) *chunkListing {
	l := &chunkListing{done: make(chan struct{}), have: make(map[cache.Digest]bool)}
	budget := max(listPage, 125*expected)
	errBudget := errors.New("over budget")
	go func() {
		defer close(l.done)
		n := int64(0)
		err := s.list(ctx, "chunks/", func(oi minio.ObjectInfo, name string) error {
			if n++; n > budget {
				return errBudget
			}
			if c, err := cache.ParseDigest(name); err == nil && !s.isCorrupt(c) {
				l.have[c] = true
			}
			return nil
		})
		l.complete = err == nil
	}()
	return l
}

// eagerUploader uploads the chunks offered by the chunker that a complete
// listing says the bucket lacks, while the chunker goes on.
type eagerUploader struct {
	s       *Store
	ctx     context.Context
	cancel  context.CancelCauseFunc
	d       cache.Digest
	size    int64
	f       io.ReaderAt
	listing *chunkListing
	closing sync.RWMutex // offers are sent under R, closed under W
	offers  chan chunkAt
	closed  bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	sent    map[cache.Digest]bool // uploaded (or being uploaded)
	// copies holds the buffers (nil until first used) that a chunk's bytes
	// are copied into when it is offered, so that its upload neither reads
	// nor hashes them again: one per uploader, so that memory stays
	// bounded; an offer of a chunk to upload waits for one, which keeps the
	// chunker at most that many chunks ahead of the uploads.
	copies chan []byte
}

// chunkAt is a chunk and its offset in the blob, with a copy of its bytes
// (which hashed to ref.Digest) if the chunker's worker made one.
type chunkAt struct {
	ref  cache.ChunkRef
	off  int64
	data []byte
}

func (s *Store) newEagerUploader(ctx context.Context, cancel context.CancelCauseFunc, d cache.Digest, size int64, f io.ReaderAt, l *chunkListing) *eagerUploader {
	u := &eagerUploader{s: s, ctx: ctx, cancel: cancel, d: d, size: size, f: f, listing: l,
		offers: make(chan chunkAt, 64), sent: make(map[cache.Digest]bool), copies: make(chan []byte, s.chunkConc())}
	for range s.chunkConc() {
		u.copies <- nil
		u.wg.Go(u.work)
	}
	return u
}

// offer hands chunk c at off to the uploaders (called by the chunker's
// workers, with the chunk's bytes, which hashed to c.Digest and are valid
// during the call only). If the bucket is known to lack the chunk, the
// bytes are copied into a copy buffer (waiting for one): a copy costs less
// than reading and hashing them again.
func (u *eagerUploader) offer(c cache.ChunkRef, off int64, data []byte) {
	u.closing.RLock()
	defer u.closing.RUnlock()
	if u.closed {
		return
	}
	at := chunkAt{ref: c, off: off}
	if u.wanted(c.Digest) {
		select {
		case b := <-u.copies:
			if cap(b) < len(data) {
				b = make([]byte, max(len(data), u.s.chunkParams.Max))
			}
			at.data = b[:len(data)]
			copy(at.data, data)
		case <-u.ctx.Done():
			return
		}
	}
	select {
	case u.offers <- at:
	case <-u.ctx.Done():
		u.release(at)
	}
}

// wanted reports whether the listing is complete and lacks chunk c, and c
// is not being uploaded already.
func (u *eagerUploader) wanted(c cache.Digest) bool {
	select {
	case <-u.listing.done:
	default:
		return false
	}
	if !u.listing.complete || u.listing.have[c] {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return !u.sent[c]
}

// release gives at's copy buffer back.
func (u *eagerUploader) release(at chunkAt) {
	if at.data != nil {
		u.copies <- at.data[:0]
	}
}

func (u *eagerUploader) work() {
	<-u.listing.done
	var buf []byte
	for o := range u.offers {
		if err := u.upload(o, &buf); err != nil {
			u.cancel(err)
		}
		u.release(o)
	}
}

// upload uploads offered chunk o unless the bucket has it or it is being
// uploaded: from its copy, else read into *buf (allocated when first
// needed) and hashed again.
func (u *eagerUploader) upload(o chunkAt, buf *[]byte) error {
	c := o.ref
	if !u.listing.complete || u.ctx.Err() != nil || u.listing.have[c.Digest] {
		return nil
	}
	u.mu.Lock()
	dup := u.sent[c.Digest]
	u.sent[c.Digest] = true
	u.mu.Unlock()
	if dup {
		return nil
	}
	if o.data != nil {
		return u.s.sendChunk(u.ctx, u.d, u.size, c, o.data)
	}
	if *buf == nil {
		*buf = make([]byte, u.s.chunkParams.Max)
	}
	b := (*buf)[:min(int64(len(*buf)), c.Size)]
	if int64(len(b)) < c.Size {
		b = make([]byte, c.Size)
	}
	return u.s.putChunk(u.ctx, u.d, u.size, u.f, c, o.off, b)
}

// wait stops taking offers, waits for the uploads in flight and returns
// the chunks the listing found (nil if it was not complete) and those
// uploaded meanwhile.
func (u *eagerUploader) wait() (have, sent map[cache.Digest]bool) {
	u.closing.Lock()
	close(u.offers)
	u.closed = true
	u.closing.Unlock()
	u.wg.Wait()
	if !u.listing.complete {
		return nil, u.sent
	}
	return u.listing.have, u.sent
}

// putChunk reads chunk c at off of f into b, checks that it hashes to its
// digest (the file may have changed since it was cut) and uploads it.
func (s *Store) putChunk(ctx context.Context, d cache.Digest, size int64, f io.ReaderAt, c cache.ChunkRef, off int64, b []byte) error {
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("reading chunk at %d: %w", off, err)
	}
	if got := cache.DigestBytes(b); got != c.Digest {
		return mismatch(c.Size, got)
	}
	return s.sendChunk(ctx, d, size, c, b)
}

// sendChunk uploads chunk c of blob d, whose bytes b hash to c.Digest.
func (s *Store) sendChunk(ctx context.Context, d cache.Digest, size int64, c cache.ChunkRef, b []byte) error {
	if err := s.uploadBytes(ctx, s.chunkKey(c.Digest), c.Digest, b, true); err != nil {
		return err
	}
	s.repaired(c.Digest)
	s.stats.chunksUp.Add(1)
	s.stats.chunkBytesUp.Add(c.Size)
	s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Bytes: c.Size})
	return nil
}

// cutChunks returns the chunks of the size bytes of r (structure cuts
// included), cut and hashed by workers (see chunker.Parallel); offer, if
// set, is told about every chunk known to be in the result as soon as it is
// hashed (from several goroutines); the others, cut speculatively, are
// known once all are cut.
func cutChunks(r io.ReaderAt, size int64, p chunker.Params, workers int, offer func(cache.ChunkRef, int64, []byte)) ([]cache.ChunkRef, error) {
	// Tensors of a few KiB (norms, biases) join the next one; a projection
	// of a small model still gets its own chunks.
	cuts := chunker.StructureCuts(r, size, p.Min/8)
	var mu sync.Mutex
	digests := make(map[chunker.Chunk]cache.Digest)
	chunks, err := chunker.Parallel(r, size, p, cuts, workers, func(c chunker.Chunk, data []byte, final bool) {
		d := cache.DigestBytes(data)
		mu.Lock()
		digests[c] = d
		mu.Unlock()
		if offer != nil && final {
			offer(cache.ChunkRef{Digest: d, Size: c.Len}, c.Off, data)
		}
	})
	if err != nil {
		return nil, err
	}
	refs := make([]cache.ChunkRef, len(chunks))
	for i, c := range chunks {
		refs[i] = cache.ChunkRef{Digest: digests[c], Size: c.Len}
	}
	return refs, nil
}

// putChunks uploads the chunks of refs (the blob's chunks, read from f)
// that the bucket lacks, each once, a few at a time: those neither in have
// nor in sent, or, if have is nil, those a listing does not find (see
// presentChunks).
func (s *Store) putChunks(ctx context.Context, d cache.Digest, size int64, f io.ReaderAt, refs []cache.ChunkRef, have, sent map[cache.Digest]bool) error {
	type at struct {
		ref cache.ChunkRef
		off int64
	}
	var todo []at
	seen := make(map[cache.Digest]bool, len(refs))
	var uniq []cache.Digest
	off := int64(0)
	for _, r := range refs {
		if !seen[r.Digest] {
			seen[r.Digest] = true
			uniq = append(uniq, r.Digest)
			todo = append(todo, at{r, off})
		}
		off += r.Size
	}
	if have == nil {
		var err error
		if have, err = s.presentChunks(ctx, uniq); err != nil {
			return err
		}
	}
	var skipped int64
	jobs := make(chan at)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range s.chunkConc() {
		wg.Go(func() {
			buf := make([]byte, s.chunkParams.Max)
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				b := buf[:min(int64(len(buf)), j.ref.Size)]
				if int64(len(b)) < j.ref.Size {
					b = make([]byte, j.ref.Size)
				}
				if err := s.putChunk(ctx, d, size, f, j.ref, j.off, b); err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, j := range todo {
		if sent[j.ref.Digest] && !have[j.ref.Digest] {
			continue // uploaded while the chunker ran
		}
		if have[j.ref.Digest] {
			skipped += j.ref.Size
			s.stats.chunksSkipped.Add(1)
			continue
		}
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	s.stats.chunkBytesSkipped.Add(skipped)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// putFileChunked is PutFile for a blob to be chunked: nothing to do if
// the bucket has its chunk list.
func (s *Store) putFileChunked(ctx context.Context, d cache.Digest, size int64, path string) error {
	if !s.cfg.Upload {
		return fmt.Errorf("storing blob %s in %s: %w", d.Short(), s, ErrReadOnly)
	}
	if size >= cache.MaxBlobSize {
		return fmt.Errorf("storing blob %s: impossible size %d", d.Short(), size)
	}
	if !s.isCorrupt(d) {
		info, err := s.statChunkList(ctx, d)
		switch {
		case err == nil && info.Size == size:
			s.stats.blobsSkipped.Add(1)
			return nil
		case err != nil && !isMiss(err):
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	if info.Size() != size {
		return fmt.Errorf("storing blob %s from %s: the file has %d bytes, want %d", d.Short(), path, info.Size(), size)
	}
	return s.putChunked(ctx, d, size, f)
}

// putStreamChunked is PutBlob for a blob to be chunked: the stream is
// spooled to a temporary file (the chunker and the parallel uploads read
// it at random offsets), which is then stored like PutFile's.
func (s *Store) putStreamChunked(ctx context.Context, d cache.Digest, size int64, r io.Reader) error {
	tmp, err := os.CreateTemp("", "cogumi-put-*")
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d.Short(), err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(r, size+1))
	switch {
	case err != nil:
		return fmt.Errorf("storing blob %s: reading the content: %w", d.Short(), err)
	case n < size:
		return fmt.Errorf("storing blob %s: the stream ended after %d bytes, want %d", d.Short(), n, size)
	case n > size:
		return fmt.Errorf("storing blob %s: the stream holds more than %d bytes", d.Short(), size)
	}
	return s.putFileChunked(ctx, d, size, tmp.Name())
}
