package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
)

// PutFile stores the file at path as blob d of size bytes, unless the bucket
// already has it. Unlike PutBlob it reads the file with parallel ReadAt
// calls, so reading, compressing and uploading all run in parallel. The
// content is verified against d as it goes.
func (s *Store) PutFile(ctx context.Context, d cache.Digest, size int64, path string) error {
	if s.chunks(size) {
		return s.putFileChunked(ctx, d, size, path)
	}
	if skip, err := s.beforePut(ctx, d, size); skip || err != nil {
		return err
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
	return s.upload(ctx, d, size, &fileSource{f: f, size: size, frameSize: s.frameSize})
}

// source yields a blob's bytes frame by frame, to several goroutines.
type source interface {
	// next reads the next frame into buf (at least a frame long) and
	// returns its number and length; ok is false once all are read.
	next(buf []byte) (i int64, n int, ok bool, err error)
	// finish checks, after the last frame, that nothing follows it.
	finish() error
}

// streamSource reads frames from a stream, one at a time, in order.
type streamSource struct {
	mu              sync.Mutex
	r               io.Reader
	size, frameSize int64
	i               int64
	err             error // sticky
}

func (s *streamSource) next(buf []byte) (int64, int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.i >= frameCount(s.size, s.frameSize) {
		return 0, 0, false, s.err
	}
	i := s.i
	n := int(min(s.frameSize, s.size-i*s.frameSize))
	got, err := io.ReadFull(s.r, buf[:n])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		s.err = fmt.Errorf("the stream ended after %d bytes, want %d", i*s.frameSize+int64(got), s.size)
	} else if err != nil {
		s.err = fmt.Errorf("reading the content: %w", err)
	}
	if s.err != nil {
		return 0, 0, false, s.err
	}
	s.i++
	return i, n, true, nil
}

func (s *streamSource) finish() error {
	var b [1]byte
	n, err := io.ReadFull(s.r, b[:])
	if n > 0 {
		return fmt.Errorf("the stream holds more than %d bytes", s.size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the content: %w", err)
	}
	return nil
}

// fileSource reads frames of a file in parallel.
type fileSource struct {
	f               *os.File
	size, frameSize int64
	i               atomic.Int64
}

func (s *fileSource) next(buf []byte) (int64, int, bool, error) {
	i := s.i.Add(1) - 1
	if i >= frameCount(s.size, s.frameSize) {
		return 0, 0, false, nil
	}
	n := int(min(s.frameSize, s.size-i*s.frameSize))
	got, err := s.f.ReadAt(buf[:n], i*s.frameSize)
	if got < n {
		return 0, 0, false, fmt.Errorf("reading %s at %d: %d bytes of %d (%v; did the file change?)", s.f.Name(), i*s.frameSize, got, n, err)
	}
	return i, n, true, nil
}

func (s *fileSource) finish() error { return nil }

// partSize chooses the largest multipart part for a blob of size bytes: at
// least minPart, and large enough that the object fits in maxParts parts.
func partSize(size, frameSize, minPart int64) (int64, error) {
	// A part is sent before the frame that would overflow it, so every
	// part but the last holds more than p - frameSize bytes.
	obj := maxObjectSize(size, frameSize)
	p := max(minPart, minS3Part+frameSize, (obj+maxParts-2)/(maxParts-1)+frameSize)
	p = (p + 1<<20 - 1) &^ (1<<20 - 1)
	if p > maxPartSize {
		return 0, fmt.Errorf("a blob of %d bytes is larger than S3 allows (%d parts of at most %d bytes)", size, maxParts, int64(maxPartSize))
	}
	return p, nil
}

// upload stores blob d from src: one PUT up to a part's size, else a
// parallel multipart upload.
func (s *Store) upload(ctx context.Context, d cache.Digest, size int64, src source) (err error) {
	s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Start: true})
	defer func() { s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Done: true, Err: err}) }()
	if size <= s.partSize {
		if err = s.uploadSingle(ctx, s.blobKey(d), d, size, src); err == nil {
			s.progress(ProgressEvent{Digest: d, Upload: true, Size: size, Bytes: size})
		}
	} else {
		err = s.uploadMultipart(ctx, d, size, src)
	}
	var e *Error
	if err != nil && !errors.As(err, &e) {
		err = fmt.Errorf("storing blob %s in %s: %w", d.Short(), s, err)
	}
	if err != nil {
		return err
	}
	s.repaired(d)
	s.stats.blobsUp.Add(1)
	s.stats.blobBytesUp.Add(size)
	return nil
}

// putOptions carries the metadata every blob object has.
func putOptions(d cache.Digest, size int64, format string) minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		UserMetadata: map[string]string{
			metaDigest: d.String(),
			metaSize:   strconv.FormatInt(size, 10),
			metaFormat: format,
		},
		// Blobs are verified by digest on every read, so signing their
		// payload over http:// would only cost a SHA-256 pass.
		DisableContentSha256: true,
	}
}

// mismatch is the error of content that does not hash to its name.
func mismatch(size int64, got cache.Digest) error {
	return fmt.Errorf("the content (%d bytes) hashes to %s; nothing stored", size, got.Short())
}

// uploadSingle reads the whole (small) blob or chunk d, verifies it,
// compresses it if that saves space, and stores it with one PUT at key.
func (s *Store) uploadSingle(ctx context.Context, key string, d cache.Digest, size int64, src source) error {
	buf := make([]byte, size)
	for off := int64(0); ; {
		_, n, ok, err := src.next(buf[off:])
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		off += int64(n)
	}
	if err := src.finish(); err != nil {
		return err
	}
	if got := cache.DigestBytes(buf); got != d {
		return mismatch(size, got)
	}
	return s.uploadBytes(ctx, key, d, buf, false)
}

// uploadBytes compresses buf (a whole small blob or a chunk, which the
// caller checked hashes to d) if that saves space, and stores it with one
// PUT at key. With sample, a buffer whose first compressSample bytes do not
// shrink is stored raw without trying the rest.
func (s *Store) uploadBytes(ctx context.Context, key string, d cache.Digest, buf []byte, sample bool) error {
	size := int64(len(buf))
	var ib indexBuilder
	var body []byte
	if sample && size > 4*compressSample && s.compress(buf[:compressSample], nil) == nil {
		// A sample that does not shrink: weights in a format that zstd
		// cannot help (quantised, random), stored raw without trying the
		// rest (most of a chunked push's CPU time otherwise).
		return s.putObject(ctx, key, d, size, buf, formatRaw)
	}
	for off := int64(0); off < size; off += s.frameSize {
		raw := buf[off:min(off+s.frameSize, size)]
		if c := s.compress(raw, nil); c != nil {
			body = append(body, c...)
			ib.add(len(c), false)
		} else {
			body = append(body, raw...)
			ib.add(len(raw), true)
		}
	}
	body = append(body, ib.tail(d, size, s.frameSize)...)
	format := formatFrames
	// Raw when compression saves little: such objects read as plain files
	// to anyone inspecting the bucket. Never an empty object (see doc.go).
	if size > 0 && int64(len(body)) > size-size/32 {
		body, format = buf, formatRaw
	}
	return s.putObject(ctx, key, d, size, body, format)
}

// compressSample is how much of a blob or chunk uploadBytes tries to
// compress first: if that does not shrink, neither will the rest.
const compressSample = 64 << 10

// putObject stores body, blob or chunk d of size bytes in format, at key.
func (s *Store) putObject(ctx context.Context, key string, d cache.Digest, size int64, body []byte, format string) error {
	return s.do(ctx, "PUT", key, s.idle, func(ctx context.Context, a *activity) error {
		_, err := s.core.PutObject(ctx, s.bucket, key, touchReader{bytes.NewReader(body), a}, int64(len(body)), "", "", putOptions(d, size, format))
		return err
	})
}

// compress returns raw compressed into dst, or nil when that saves less
// than 1/32 (the frame is then stored raw, and reads skip a decode).
func (s *Store) compress(raw, dst []byte) []byte {
	c := s.enc.EncodeAll(raw, dst[:0])
	if len(c) > len(raw)-len(raw)/32 || len(c) >= len(raw) {
		return nil
	}
	return c
}
