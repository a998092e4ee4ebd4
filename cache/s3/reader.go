package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"

	"github.com/cogumi/cogumi/cache/b3tree"

	"github.com/minio/minio-go/v7"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"

	"github.com/cogumi/cogumi/cache"
)

// Chunks: consecutive frames fetched with one ranged GET, read and decoded
// frame by frame as the response streams in. Fewer, larger requests cost a
// server less (versitygw: 0.35 s of CPU per GiB in 8 MiB ranges, 0.24 s in
// 64 MiB ones). A chunk is only formed from frames already admitted to the
// reader's window, so a fetcher never waits for the consumer mid-response.
const (
	chunkFrames = 8
	chunkBytes  = 64 << 20 // stored bytes
)

// dlFrame is one frame being fetched for a reader.
type dlFrame struct {
	f    frame
	done chan struct{} // closed when data or err is set
	data []byte        // nil once written to the sink
	buf  []byte        // pooled buffer behind data, if any
	cv   [8]uint32     // BLAKE3 chaining value, for splittable frames but the last
	err  error
}

// blobReader streams a verified blob from prefetched frames.
type blobReader struct {
	s         *Store
	d         cache.Digest
	key, etag string
	l         *layout
	tail      []byte
	tailOff   int64    // object offset of tail[0]
	sink      *os.File // if set, frames are written here by the fetchers
	sinkMu    sync.Mutex
	ctx       context.Context
	cancel    context.CancelCauseFunc
	order     chan *dlFrame // frames in blob order, fetched or being fetched
	wg        sync.WaitGroup
	rawPool   *bufPool
	compPool  *bufPool
	split     bool           // frames are BLAKE3 subtrees, hashed by the fetchers
	height    int            // of those subtrees
	tree      b3tree.Stack   // their chaining values so far
	h         *blake3.Hasher // otherwise: the whole content, in order
	cur       *dlFrame
	unread    []byte // of cur
	got       int64
	err       error // sticky: io.EOF after the end
	closeOnce sync.Once
}

// newBlobReader starts the dispatcher and the fetchers. The window is the
// frames admitted but not yet consumed.
func (s *Store) newBlobReader(ctx context.Context, d cache.Digest, key, etag string, l *layout, tail []byte, tailOff int64, sink *os.File) *blobReader {
	ctx, cancel := context.WithCancelCause(ctx)
	// Without a sink, frames wait in the window with their bytes: keep it
	// small, and each frame its own GET so that the few in flight are
	// fetched in parallel.
	window, maxChunk := s.conc, 1
	if sink != nil && b3tree.Splittable(l.frameSize) {
		window, maxChunk = s.conc*chunkFrames, chunkFrames
	}
	r := &blobReader{
		s: s, d: d, key: key, etag: etag, l: l, tail: tail, tailOff: tailOff, sink: sink,
		ctx: ctx, cancel: cancel,
		order:    make(chan *dlFrame, window),
		rawPool:  newPool(s.conc+2, l.frameSize),
		compPool: newPool(s.conc, l.frameSize),
		split:    b3tree.Splittable(l.frameSize),
		height:   bits.TrailingZeros64(uint64(l.frameSize / guts.ChunkSize)),
	}
	if !r.split {
		r.h = blake3.New(32, nil)
	}
	s.progress(ProgressEvent{Digest: d, Size: l.size, Start: true})
	jobs := make(chan []*dlFrame)
	r.wg.Go(func() { r.dispatch(jobs, maxChunk) })
	for range s.conc {
		r.wg.Go(func() {
			for c := range jobs {
				r.fetchChunk(c)
			}
		})
	}
	return r
}

// dispatch admits frames to the window in order and groups them into
// chunks of up to maxChunk frames for the fetchers.
func (r *blobReader) dispatch(jobs chan<- []*dlFrame, maxChunk int) {
	defer close(jobs)
	defer close(r.order)
	var chunk []*dlFrame
	var stored int64
	flush := func() bool {
		if len(chunk) == 0 {
			return true
		}
		select {
		case jobs <- chunk:
		case <-r.ctx.Done():
			return false
		}
		chunk, stored = nil, 0
		return true
	}
	for f := range r.l.frames() {
		j := &dlFrame{f: f, done: make(chan struct{})}
		select {
		case r.order <- j:
		default:
			// The window is full: send what is admitted before waiting,
			// or the consumer could wait for a frame nobody fetches.
			if !flush() {
				return
			}
			select {
			case r.order <- j:
			case <-r.ctx.Done():
				return
			}
		}
		inTail := f.storedOff >= r.tailOff
		if len(chunk) > 0 && (inTail || stored+f.storedLen() > chunkBytes) && !flush() {
			return
		}
		chunk = append(chunk, j)
		stored += f.storedLen()
		if (inTail || len(chunk) == maxChunk) && !flush() {
			return
		}
	}
	flush()
}

// fetchChunk gets the frames of c, with one ranged GET unless they are in
// the tail, and closes each frame's done as soon as it is ready. A GET that
// fails midway is retried from the first frame not yet done.
func (r *blobReader) fetchChunk(c []*dlFrame) {
	next := 0
	var err error
	if c[0].f.storedOff >= r.tailOff {
		for _, j := range c {
			j.err = r.ready(j, r.tail[j.f.storedOff-r.tailOff:j.f.end-r.tailOff], nil)
			close(j.done)
		}
		return
	}
	err = r.s.do(r.ctx, "GET", r.key, r.s.idle, func(ctx context.Context, a *activity) error {
		first, last := c[next].f, c[len(c)-1].f
		var o minio.GetObjectOptions
		if err := o.SetRange(first.storedOff, last.end-1); err != nil {
			return passThrough{err}
		}
		if r.etag != "" {
			if err := o.SetMatchETag(r.etag); err != nil {
				return passThrough{err}
			}
		}
		rc, oi, h, err := r.s.core.GetObject(ctx, r.s.bucket, r.key, o)
		if err != nil {
			return err
		}
		defer rc.Close()
		if start, end, _, err := contentRange(h, oi.Size); err != nil || start != first.storedOff || end != last.end-1 {
			return passThrough{fmt.Errorf("reading %s from %s: the server answered another range than asked (%v)", r.key, r.s, err)}
		}
		body := touchReader{rc, a}
		for next < len(c) {
			j := c[next]
			pool := r.compPool
			if j.f.raw {
				pool = r.rawPool
			}
			buf := pool.get()
			if _, err := io.ReadFull(body, buf[:j.f.storedLen()]); err != nil {
				pool.put(buf)
				return err
			}
			j.err = r.ready(j, buf[:j.f.storedLen()], buf)
			close(j.done)
			next++
			if j.err != nil {
				return passThrough{j.err}
			}
		}
		return nil
	})
	for _, j := range c[next:] {
		j.err = err
		close(j.done)
	}
}

// ready turns a frame's stored bytes (in buf, a pooled buffer, or nil for
// bytes of the tail) into its original bytes, hashes it if it is a
// subtree, and writes it to the sink if there is one, after which it no
// longer needs a buffer. The last frame is kept: the reader hashes it when
// it merges the tree.
func (r *blobReader) ready(j *dlFrame, stored, buf []byte) error {
	f := j.f
	if f.raw {
		j.data, j.buf = stored, buf
	} else {
		out := r.rawPool.get()
		data, err := r.s.dec.DecodeAll(stored, out[:0])
		if buf != nil {
			r.compPool.put(buf)
		}
		if err != nil || int64(len(data)) != f.len {
			r.rawPool.put(out)
			reason := fmt.Sprintf("frame %d decodes to %d bytes, want %d", f.index, len(data), f.len)
			if err != nil {
				reason = fmt.Sprintf("frame %d does not decode: %v", f.index, err)
			}
			return r.s.corruptErr(r.d, reason)
		}
		j.data, j.buf = data, out
	}
	last := f.index == r.l.numFrames()-1
	if r.split && !last {
		j.cv = b3tree.SubtreeCV(j.data, uint64(f.off/guts.ChunkSize))
	}
	if r.sink == nil {
		return nil
	}
	// One writer at a time: concurrent writes to one file serialize in the
	// kernel anyway (ext4's inode lock), where waiters spin and burn the
	// CPU that decoding and hashing need.
	r.sinkMu.Lock()
	defer r.sinkMu.Unlock()
	for off := 0; off < len(j.data); off += writeChunk {
		if _, err := r.sink.WriteAt(j.data[off:min(off+writeChunk, len(j.data))], f.off+int64(off)); err != nil {
			return fmt.Errorf("downloading blob %s: %w", r.d.Short(), err)
		}
	}
	if r.split && !last {
		if j.buf != nil {
			r.rawPool.put(j.buf)
		}
		j.data, j.buf = nil, nil
	}
	return nil
}

// nextFrame returns the next frame's bytes (nil if they went to the sink),
// verified: the last frame is returned only if the whole content hashes to
// the blob's digest.
func (r *blobReader) nextFrame() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.cur != nil && r.cur.buf != nil {
		r.rawPool.put(r.cur.buf)
	}
	r.cur = nil
	var j *dlFrame
	var ok bool
	select {
	case j, ok = <-r.order:
	case <-r.ctx.Done():
		return nil, r.fail(context.Cause(r.ctx))
	}
	if !ok {
		if err := context.Cause(r.ctx); err != nil {
			return nil, r.fail(err)
		}
		if r.l.numFrames() == 0 && r.d != cache.DigestBytes(nil) {
			return nil, r.fail(r.s.corruptErr(r.d, "the content hashes to another digest"))
		}
		r.err = io.EOF
		r.s.stats.blobsDown.Add(1)
		r.s.stats.blobBytesDown.Add(r.l.size)
		r.s.progress(ProgressEvent{Digest: r.d, Size: r.l.size, Done: true})
		return nil, io.EOF
	}
	select {
	case <-j.done:
	case <-r.ctx.Done():
		return nil, r.fail(context.Cause(r.ctx))
	}
	if j.err != nil {
		return nil, r.fail(j.err)
	}
	r.cur = j
	r.got += j.f.len
	last := j.f.index == r.l.numFrames()-1
	switch {
	case r.split && !last:
		r.tree.Push(j.cv, r.height)
	case r.split:
		if got := cache.Digest(r.tree.Finish(j.data)); got != r.d || r.got != r.l.size {
			return nil, r.fail(r.s.corruptErr(r.d, "the content hashes to "+got.String()))
		}
	default:
		_, _ = r.h.Write(j.data)
		if last {
			var got cache.Digest
			r.h.Sum(got[:0])
			if got != r.d || r.got != r.l.size {
				return nil, r.fail(r.s.corruptErr(r.d, "the content hashes to "+got.String()))
			}
		}
	}
	r.s.progress(ProgressEvent{Digest: r.d, Size: r.l.size, Bytes: j.f.len})
	return j.data, nil
}

// fail makes err the reader's sticky error and stops the fetchers.
func (r *blobReader) fail(err error) error {
	var ce *cache.CorruptError
	var e *Error
	if !errors.As(err, &ce) && !errors.As(err, &e) {
		err = fmt.Errorf("reading blob %s from %s: %w", r.d.Short(), r.s, err)
	}
	r.err = err
	r.cancel(err)
	r.s.progress(ProgressEvent{Digest: r.d, Size: r.l.size, Done: true, Err: err})
	return err
}

// Read implements io.Reader.
func (r *blobReader) Read(p []byte) (int, error) {
	if len(r.unread) == 0 {
		data, err := r.nextFrame()
		if err != nil {
			return 0, err
		}
		r.unread = data
	}
	n := copy(p, r.unread)
	r.unread = r.unread[n:]
	return n, nil
}

// writeChunk is the largest write WriteTo makes. On a Linux 6.18 VM with
// ext4, writing a file in 8 MiB pieces cost 4 times the system CPU of
// 128 KiB pieces (1 MiB: 2 times, erratically); 128 KiB costs nothing
// elsewhere.
const writeChunk = 128 << 10

// WriteTo writes the rest of the blob to w straight from the frames
// (io.Copy uses it), without copying through a small buffer.
func (r *blobReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(r.unread) > 0 {
			n, err := w.Write(r.unread[:min(len(r.unread), writeChunk)])
			total += int64(n)
			r.unread = r.unread[n:]
			if err != nil {
				return total, r.fail(err)
			}
		}
		data, err := r.nextFrame()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		r.unread = data
	}
}

// Close stops any fetch in flight and waits for the fetchers.
func (r *blobReader) Close() error {
	r.closeOnce.Do(func() {
		if r.err == nil {
			r.s.progress(ProgressEvent{Digest: r.d, Size: r.l.size, Done: true, Err: errClosed})
		}
		r.cancel(errClosed)
		r.wg.Wait()
	})
	return nil
}
