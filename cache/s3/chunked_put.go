package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/chunker"
)

// putChunked stores blob d of size bytes, read from f, as chunks and a
// chunk list. The chunker cuts the file (with safetensors and GGUF
// structure cuts) and workers hash the chunks while the blob's own digest
// is computed beside them; one listing pass finds the chunks the bucket
// lacks, which workers upload in parallel (each verified against its digest
// as it is sent); the chunk list goes last, and only if the whole content
// hashed to d. An interrupted push is resumed by the next one: the chunks
// it sent are found by the listing.
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
	refs, err := cutChunks(f, size, s.chunkParams, runtime.GOMAXPROCS(0))
	w := <-whole
	switch {
	case err != nil:
		return err
	case w.err != nil:
		return w.err
	case w.d != d:
		return mismatch(size, w.d)
	}
	if err := s.putChunks(ctx, d, size, f, refs); err != nil {
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

// cutChunks returns the chunks of the size bytes of r (structure cuts
// included), cut and hashed by workers (see chunker.Parallel).
func cutChunks(r io.ReaderAt, size int64, p chunker.Params, workers int) ([]cache.ChunkRef, error) {
	// Tensors of a few KiB (norms, biases) join the next one; a projection
	// of a small model still gets its own chunks.
	cuts := chunker.StructureCuts(r, size, p.Min/8)
	var mu sync.Mutex
	digests := make(map[chunker.Chunk]cache.Digest)
	chunks, err := chunker.Parallel(r, size, p, cuts, workers, func(c chunker.Chunk, data []byte) {
		d := cache.DigestBytes(data)
		mu.Lock()
		digests[c] = d
		mu.Unlock()
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
// that the bucket lacks, each once, conc at a time.
func (s *Store) putChunks(ctx context.Context, d cache.Digest, size int64, f io.ReaderAt, refs []cache.ChunkRef) error {
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
	have, err := s.presentChunks(ctx, uniq)
	if err != nil {
		return err
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
				b := buf[:j.ref.Size]
				if int64(len(buf)) < j.ref.Size {
					b = make([]byte, j.ref.Size)
				}
				if _, err := f.ReadAt(b, j.off); err != nil {
					cancel(fmt.Errorf("reading chunk at %d: %w", j.off, err))
					continue
				}
				if err := s.uploadBytes(ctx, s.chunkKey(j.ref.Digest), j.ref.Digest, b, true); err != nil {
					cancel(err)
					continue
				}
				s.repaired(j.ref.Digest)
				s.stats.chunksUp.Add(1)
				s.stats.chunkBytesUp.Add(j.ref.Size)
				s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Bytes: j.ref.Size})
			}
		})
	}
	for _, j := range todo {
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
