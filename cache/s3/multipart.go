package s3

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"lukechampine.com/blake3"

	"github.com/cogumi/cogumi/cache"
)

// skipper stops trying to compress a blob that does not compress (an
// archive, quantised weights): after skipAfter frames in a row that did
// not shrink, only every skipProbe-th frame is tried, in case the content
// changes further on. It saves a zstd pass of the whole blob.
type skipper struct{ incompressible atomic.Int64 }

const (
	skipAfter = 4
	skipProbe = 8
)

func (k *skipper) try(frame int64) bool {
	return k.incompressible.Load() < skipAfter || frame%skipProbe == 0
}

func (k *skipper) record(shrank bool) {
	if shrank {
		k.incompressible.Store(0)
	} else {
		k.incompressible.Add(1)
	}
}

// upFrame is one frame read and compressed, on its way to a part.
type upFrame struct {
	i          int64
	raw, comp  []byte // comp is nil for a frame stored raw
	rawBuf, cb []byte // the pooled buffers, to give back
}

// upPart is one multipart part being filled or sent.
type upPart struct {
	num      int
	buf      []byte
	rawBytes int64 // original bytes of the frames in it, for progress
}

// bufPool is a free list of equal buffers; the pipeline's semaphores bound
// how many exist.
type bufPool struct {
	ch   chan []byte
	size int64
}

func newPool(n int, size int64) *bufPool { return &bufPool{ch: make(chan []byte, n), size: size} }

func (p *bufPool) get() []byte {
	select {
	case b := <-p.ch:
		return b[:p.size]
	default:
		return make([]byte, p.size)
	}
}

func (p *bufPool) put(b []byte) {
	select {
	case p.ch <- b:
	default:
	}
}

// uploadMultipart runs the parallel upload pipeline: workers read and
// compress frames, this goroutine puts them in order (hashing them and
// building the index) into parts, and uploaders send parts in parallel.
// Memory: a few frames plus (threads+1) parts, whatever the blob's size.
// Nothing is visible in the bucket unless the content hashed to d.
func (s *Store) uploadMultipart(ctx context.Context, d cache.Digest, size int64, src source) (err error) {
	key := s.blobKey(d)
	psize, err := partSize(size, s.frameSize, s.partSize)
	if err != nil {
		return err
	}
	threads := int(max(1, min(int64(s.conc), partMemory/psize)))
	var uploadID string
	err = s.do(ctx, "start upload", key, s.idle, func(ctx context.Context, _ *activity) error {
		var err error
		uploadID, err = s.core.NewMultipartUpload(ctx, s.bucket, key, putOptions(d, size, formatFrames))
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.abort(key, uploadID)
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	workers := max(2, runtime.GOMAXPROCS(0))
	slots := make(chan struct{}, workers+2)
	frames := make(chan *upFrame, workers+2)
	// Compressed buffers have room for zstd's worst case, so that an
	// incompressible frame does not make EncodeAll allocate a new one.
	rawPool, compPool := newPool(workers+2, s.frameSize), newPool(workers+2, s.frameSize+s.frameSize/128+1<<10)
	skip := new(skipper)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { s.readFrames(ctx, cancel, src, slots, frames, rawPool, compPool, skip) })
	}
	go func() {
		wg.Wait()
		close(frames)
	}()

	parts := make(chan *upPart)
	partPool := newPool(threads+1, psize)
	var done []minio.CompletePart
	var mu sync.Mutex
	var uwg sync.WaitGroup
	for range threads {
		uwg.Go(func() {
			for p := range parts {
				cp, err := s.putPart(ctx, key, uploadID, p)
				if err != nil {
					cancel(err)
					continue // drain, so that the assembler never blocks
				}
				mu.Lock()
				done = append(done, cp)
				mu.Unlock()
				partPool.put(p.buf)
				s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Bytes: p.rawBytes})
			}
		})
	}
	err = s.assemble(ctx, d, size, src, frames, slots, rawPool, compPool, parts, partPool, psize)
	if err != nil {
		cancel(err) // stop the uploaders early
	}
	close(parts)
	uwg.Wait()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return err
	}
	slices.SortFunc(done, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	err = s.do(ctx, "complete upload", key, completeIdle, func(ctx context.Context, _ *activity) error {
		_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, done, minio.PutObjectOptions{})
		return err
	})
	if err != nil && isMiss(err) {
		// A retried Complete finds the upload gone when the first one
		// succeeded but its answer was lost: check the object.
		if info, serr := s.StatBlob(ctx, d); serr == nil && info.Size == size {
			return nil
		}
	}
	return err
}

// readFrames is one worker of the upload pipeline: it reads and compresses
// frames until the source is exhausted or the upload fails.
func (s *Store) readFrames(ctx context.Context, cancel context.CancelCauseFunc, src source, slots chan struct{}, out chan<- *upFrame, rawPool, compPool *bufPool, skip *skipper) {
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		rawBuf := rawPool.get()
		i, n, ok, err := src.next(rawBuf)
		if err != nil || !ok {
			if err != nil {
				cancel(err)
			}
			rawPool.put(rawBuf)
			<-slots
			return
		}
		f := &upFrame{i: i, raw: rawBuf[:n], rawBuf: rawBuf}
		if skip.try(i) {
			f.cb = compPool.get()
			f.comp = s.compress(f.raw, f.cb)
			skip.record(f.comp != nil)
		}
		select {
		case out <- f:
		case <-ctx.Done():
			return
		}
	}
}

// assemble takes frames in order, hashes them, records the index and fills
// parts; after the last frame it checks the digest and sends the final part
// with the index and trailer.
func (s *Store) assemble(ctx context.Context, d cache.Digest, size int64, src source, frames <-chan *upFrame, slots chan struct{},
	rawPool, compPool *bufPool, parts chan<- *upPart, partPool *bufPool, psize int64) error {
	h := blake3.New(32, nil)
	var ib indexBuilder
	pending := make(map[int64]*upFrame)
	part := &upPart{num: 1, buf: partPool.get()[:0]}
	send := func(last bool) error {
		if part.num > maxParts {
			return fmt.Errorf("more than %d parts (part size %d)", maxParts, psize)
		}
		select {
		case parts <- part:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if !last {
			part = &upPart{num: part.num + 1, buf: partPool.get()[:0]}
		}
		return nil
	}
	for next := int64(0); next < frameCount(size, s.frameSize); {
		f, ok := pending[next]
		if !ok {
			select {
			case f, ok := <-frames:
				if !ok {
					if err := context.Cause(ctx); err != nil {
						return err
					}
					return fmt.Errorf("frame %d never came", next)
				}
				pending[f.i] = f
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			continue
		}
		delete(pending, next)
		next++
		_, _ = h.Write(f.raw)
		stored := int64(len(f.raw))
		if f.comp != nil {
			stored = int64(len(f.comp))
		}
		// Keep every part but the last within psize, and at least S3's
		// 5 MiB (psize - frameSize is more).
		if int64(len(part.buf))+stored > psize {
			if err := send(false); err != nil {
				return err
			}
		}
		if f.comp != nil {
			part.buf = append(part.buf, f.comp...)
			ib.add(len(f.comp), false)
		} else {
			part.buf = append(part.buf, f.raw...)
			ib.add(len(f.raw), true)
		}
		part.rawBytes += int64(len(f.raw))
		rawPool.put(f.rawBuf)
		if f.cb != nil {
			compPool.put(f.cb)
		}
		<-slots
	}
	if err := src.finish(); err != nil {
		return err
	}
	var got cache.Digest
	h.Sum(got[:0])
	if got != d {
		return mismatch(size, got)
	}
	part.buf = append(part.buf, ib.tail(d, size, s.frameSize)...)
	return send(true)
}

// putPart uploads one part, with retries.
func (s *Store) putPart(ctx context.Context, key, uploadID string, p *upPart) (minio.CompletePart, error) {
	var op minio.ObjectPart
	err := s.do(ctx, "upload part "+strconv.Itoa(p.num)+" of", key, s.idle, func(ctx context.Context, a *activity) error {
		var err error
		op, err = s.core.PutObjectPart(ctx, s.bucket, key, uploadID, p.num, touchReader{bytes.NewReader(p.buf), a},
			int64(len(p.buf)), minio.PutObjectPartOptions{DisableContentSha256: true})
		return err
	})
	return minio.CompletePart{PartNumber: p.num, ETag: op.ETag}, err
}

// abort abandons a multipart upload, best effort: what it cannot remove, a
// bucket lifecycle rule (AbortIncompleteMultipartUpload) should.
func (s *Store) abort(key, uploadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID)
}
