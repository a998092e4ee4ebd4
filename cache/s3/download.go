package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
)

// errClosed cancels the fetches of a reader closed before its end.
var errClosed = errors.New("blob reader closed")

// ReadBlob opens blob d for streaming. The first GET fetches the
// object's end (metadata, trailer, index, and all of a small blob); the
// reader then fetches a few frames ahead with parallel ranged GETs and
// verifies the content as it goes: a mismatch fails the read of the last
// frame with a *cache.CorruptError, before its bytes are returned. Memory
// is a few frames whatever the size. Close the reader.
func (s *Store) ReadBlob(ctx context.Context, d cache.Digest) (io.ReadCloser, error) {
	r, err := s.openBlob(ctx, d, -1, nil)
	if isPlainMiss(err) {
		refs, _, cerr := s.getChunkList(ctx, d, -1)
		if cerr == nil {
			return s.newChunkedReader(ctx, d, refs), nil
		}
		if !isPlainMiss(cerr) {
			return nil, cerr
		}
	}
	return r, err
}

// GetFile downloads blob d of size bytes to dst: parallel ranged GETs whose
// frames are decoded, hashed and written (pwrite) by the fetching workers
// into a temporary file beside dst, which is renamed over dst once the
// whole content is verified. The file has mode 0644; a failed download
// leaves dst as it was.
func (s *Store) GetFile(ctx context.Context, d cache.Digest, size int64, dst string) (err error) {
	// A blob of this size is written chunked (or whole); look there first,
	// then in the other place.
	chunkedFirst := s.chunks(size)
	if chunkedFirst {
		if err := s.getFileChunked(ctx, d, size, dst); !isPlainMiss(err) {
			return err
		}
	}
	err = s.getFileWhole(ctx, d, size, dst)
	if !chunkedFirst && isPlainMiss(err) {
		if cerr := s.getFileChunked(ctx, d, size, dst); !isPlainMiss(cerr) {
			return cerr
		}
	}
	return err
}

// getFileChunked is GetFile for a chunked blob.
func (s *Store) getFileChunked(ctx context.Context, d cache.Digest, size int64, dst string) error {
	refs, _, err := s.getChunkList(ctx, d, size)
	if err != nil {
		return err
	}
	return s.getChunked(ctx, d, size, refs, dst)
}

// getFileWhole is GetFile for a blob stored whole.
func (s *Store) getFileWhole(ctx context.Context, d cache.Digest, size int64, dst string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".part-*")
	if err != nil {
		return fmt.Errorf("downloading blob %s: %w", d.Short(), err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	r, err := s.openBlob(ctx, d, size, f)
	if err != nil {
		return err
	}
	defer r.Close()
	for err == nil {
		_, err = r.nextFrame()
	}
	if err != io.EOF {
		return err
	}
	if err = f.Chmod(0o644); err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("downloading blob %s to %s: %w", d.Short(), dst, err)
	}
	return nil
}

// openBlob reads the end of blob d's object and starts fetching frames.
// A size other than -1 is the size the caller expects. With a sink, the
// fetchers write each frame there at its offset instead of handing it on.
func (s *Store) openBlob(ctx context.Context, d cache.Digest, size int64, sink *os.File) (*blobReader, error) {
	if s.isCorrupt(d) {
		return nil, s.corruptErr(d, "found corrupt earlier; a miss until uploaded again")
	}
	key := s.blobKey(d)
	var tail []byte
	var total int64
	var hdr http.Header
	var etag string
	err := s.do(ctx, "GET", key, s.idle, func(ctx context.Context, a *activity) error {
		var o minio.GetObjectOptions
		if err := o.SetRange(0, -tailWindow); err != nil {
			return passThrough{err}
		}
		rc, oi, h, err := s.core.GetObject(ctx, s.bucket, key, o)
		if err != nil {
			return err
		}
		defer rc.Close()
		start, end, t, err := contentRange(h, oi.Size)
		if err != nil || end != t-1 || t-start > tailWindow {
			return passThrough{fmt.Errorf("reading blob %s from %s: the server ignored the Range header (%v)", d.Short(), s, err)}
		}
		tail = make([]byte, t-start)
		if _, err := io.ReadFull(touchReader{rc, a}, tail); err != nil {
			return err
		}
		total, hdr, etag = t, h, oi.ETag
		return nil
	})
	if err != nil {
		return nil, err
	}
	stored, format, err := blobMeta(hdr, d)
	if err != nil {
		return nil, s.corruptErr(d, err.Error())
	}
	if size >= 0 && stored != size {
		// The digest says which content; one of the two sizes is wrong,
		// and without a way to tell which, the blob is a miss.
		return nil, &cache.CorruptError{What: "blob " + d.String() + " at " + s.objectURL(key),
			Reason: fmt.Sprintf("the bucket holds %d bytes, want %d", stored, size)}
	}
	l, err := s.parseLayout(ctx, d, key, etag, stored, format, total, tail)
	if err != nil {
		return nil, err
	}
	return s.newBlobReader(ctx, d, key, etag, l, tail, total-int64(len(tail)), sink), nil
}

// contentRange parses "bytes START-END/TOTAL". A response without it (an
// empty object) covers the whole object of n bytes.
func contentRange(h http.Header, n int64) (start, end, total int64, err error) {
	cr := h.Get("Content-Range")
	if cr == "" {
		return 0, n - 1, n, nil
	}
	spec, ok := strings.CutPrefix(cr, "bytes ")
	rng, tot, ok2 := strings.Cut(spec, "/")
	a, b, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %.80q", cr)
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || end >= total {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %.80q", cr)
	}
	return start, end, total, nil
}

// parseLayout checks the end of an object of total bytes against its
// metadata and returns where its frames are, fetching the rest of a large
// index if the tail did not hold all of it.
func (s *Store) parseLayout(ctx context.Context, d cache.Digest, key, etag string, size int64, format string, total int64, tail []byte) (*layout, error) {
	if format == formatRaw {
		if total != size {
			return nil, s.corruptErr(d, fmt.Sprintf("raw object of %d bytes, metadata says %d; truncated?", total, size))
		}
		return rawLayout(size, s.frameSize), nil
	}
	if len(tail) < trailerSize {
		return nil, s.corruptErr(d, fmt.Sprintf("object of %d bytes is too short for a trailer; truncated?", total))
	}
	t, err := parseTrailer(tail[len(tail)-trailerSize:], d, size, total)
	if err != nil {
		return nil, s.corruptErr(d, err.Error())
	}
	have := int64(len(tail)) - trailerSize // index bytes the tail holds
	var index []byte
	if t.indexLen() <= have {
		index = tail[have-t.indexLen() : have]
	} else {
		head, err := s.getRange(ctx, key, etag, total-trailerSize-t.indexLen(), t.indexLen()-have)
		if err != nil {
			return nil, err
		}
		index = append(head, tail[:have]...)
	}
	l, err := parseIndex(index, t, total)
	if err != nil {
		return nil, s.corruptErr(d, err.Error())
	}
	return l, nil
}

// getRange fetches n bytes at off of the object with the given ETag.
func (s *Store) getRange(ctx context.Context, key, etag string, off, n int64) ([]byte, error) {
	buf := make([]byte, n)
	return buf, s.getRangeInto(ctx, key, etag, off, buf)
}

// getRangeInto fills buf from the object at off, with retries. If-Match
// makes a replaced object fail (412) rather than mix two objects' bytes.
func (s *Store) getRangeInto(ctx context.Context, key, etag string, off int64, buf []byte) error {
	return s.do(ctx, "GET", key, s.idle, func(ctx context.Context, a *activity) error {
		var o minio.GetObjectOptions
		if err := o.SetRange(off, off+int64(len(buf))-1); err != nil {
			return passThrough{err}
		}
		if etag != "" {
			if err := o.SetMatchETag(etag); err != nil {
				return passThrough{err}
			}
		}
		rc, oi, h, err := s.core.GetObject(ctx, s.bucket, key, o)
		if err != nil {
			return err
		}
		defer rc.Close()
		if start, end, _, err := contentRange(h, oi.Size); err != nil || start != off || end != off+int64(len(buf))-1 {
			return passThrough{fmt.Errorf("reading %s from %s: the server answered another range than asked (%v)", key, s, err)}
		}
		_, err = io.ReadFull(touchReader{rc, a}, buf)
		return err
	})
}
