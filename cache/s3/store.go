package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
)

// Object metadata names (x-amz-meta-cogumi-*). They let HasBlob answer
// with one HEAD and tell a reader how the object is laid out.
const (
	metaDigest = "cogumi-digest"
	metaSize   = "cogumi-size"
	metaFormat = "cogumi-format"
)

// BlobInfo is what a HEAD request tells about a stored blob.
type BlobInfo struct {
	Size         int64  // original bytes
	StoredSize   int64  // bytes in the bucket
	Format       string // "raw" or "zstd-frames-v1"
	LastModified time.Time
}

// blobMeta reads and checks the cogumi metadata of blob d's object.
func blobMeta(h http.Header, d cache.Digest) (size int64, format string, err error) {
	if got := h.Get("X-Amz-Meta-" + metaDigest); got != d.String() {
		if got == "" {
			return 0, "", fmt.Errorf("the object has no cogumi metadata (written by another tool?)")
		}
		return 0, "", fmt.Errorf("its metadata names blob %.80s", got)
	}
	size, err = strconv.ParseInt(h.Get("X-Amz-Meta-"+metaSize), 10, 64)
	if err != nil || size < 0 || size >= cache.MaxBlobSize {
		return 0, "", fmt.Errorf("its metadata gives an impossible size %.40q", h.Get("X-Amz-Meta-"+metaSize))
	}
	format = h.Get("X-Amz-Meta-" + metaFormat)
	if format != formatRaw && format != formatFrames {
		return 0, "", fmt.Errorf("unknown format %.40q (written by a newer cogumi?)", format)
	}
	return size, format, nil
}

// StatBlob asks the bucket about blob d with one HEAD request, and a second
// for its chunk list if it is not stored whole (Format is then
// "chunk-list-v1" and StoredSize the list's: its chunks are shared). A
// missing blob is an ErrNotFound error; an object without valid cogumi
// metadata, or one this store found corrupt, is a *cache.CorruptError.
func (s *Store) StatBlob(ctx context.Context, d cache.Digest) (BlobInfo, error) {
	info, err := s.statWhole(ctx, d)
	if isPlainMiss(err) {
		return s.statChunkList(ctx, d)
	}
	return info, err
}

// FindBlob reports whether the bucket has blob d of size bytes, whole or
// chunked, looking first where a blob of that size is written; errors
// other than a miss are returned.
func (s *Store) FindBlob(ctx context.Context, d cache.Digest, size int64) (bool, error) {
	first, second := s.statWhole, s.statChunkList
	if s.chunks(size) {
		first, second = second, first
	}
	info, err := first(ctx, d)
	if isPlainMiss(err) {
		info, err = second(ctx, d)
	}
	switch {
	case isMiss(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return info.Size == size, nil
}

// isPlainMiss reports a miss that is no corruption: nothing is there.
func isPlainMiss(err error) bool {
	var ce *cache.CorruptError
	return isMiss(err) && !errors.As(err, &ce)
}

// statWhole is StatBlob for a blob stored whole, under cas/.
func (s *Store) statWhole(ctx context.Context, d cache.Digest) (BlobInfo, error) {
	if s.isCorrupt(d) {
		return BlobInfo{}, s.corruptErr(d, "found corrupt earlier; a miss until uploaded again")
	}
	key := s.blobKey(d)
	var oi minio.ObjectInfo
	err := s.do(ctx, "HEAD", key, s.idle, func(ctx context.Context, _ *activity) error {
		var err error
		oi, err = s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return BlobInfo{}, err
	}
	size, format, err := blobMeta(oi.Metadata, d)
	if err != nil {
		return BlobInfo{}, &cache.CorruptError{What: "blob " + d.String() + " at " + s.objectURL(key), Reason: err.Error()}
	}
	if format == formatRaw && oi.Size != size || format == formatFrames && (oi.Size < trailerSize || oi.Size > maxObjectSize(size, minFrameSize)) {
		return BlobInfo{}, &cache.CorruptError{What: "blob " + d.String() + " at " + s.objectURL(key),
			Reason: fmt.Sprintf("%d bytes stored cannot hold %d bytes in format %s", oi.Size, size, format)}
	}
	return BlobInfo{Size: size, StoredSize: oi.Size, Format: format, LastModified: oi.LastModified}, nil
}

// HasBlob reports whether the bucket holds blob d of size bytes, with one
// HEAD request; any failure reads as false.
func (s *Store) HasBlob(ctx context.Context, d cache.Digest, size int64) bool {
	ok, _ := s.FindBlob(ctx, d, size)
	return ok
}

// Check makes one cheap request (a HEAD of the bucket) to find out whether
// the store is usable, for a command that wants to say so up front.
func (s *Store) Check(ctx context.Context) error {
	return s.do(ctx, "HEAD bucket", "", s.idle, func(ctx context.Context, _ *activity) error {
		ok, err := s.client.BucketExists(ctx, s.bucket)
		if err == nil && !ok {
			err = minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404, Message: "The specified bucket does not exist"}
		}
		return err
	})
}

// PutBytes stores b and returns its digest.
func (s *Store) PutBytes(ctx context.Context, b []byte) (cache.Digest, error) {
	d := cache.DigestBytes(b)
	return d, s.PutBlob(ctx, d, int64(len(b)), bytes.NewReader(b))
}

// PutBlob streams size bytes from r into blob d, unless the bucket
// already has it (one HEAD). The content is hashed as it goes; on a
// mismatch, a short or a long stream, nothing is stored. Memory stays
// bounded whatever the size: large blobs go up as a parallel multipart
// upload of compressed frames (see doc.go).
func (s *Store) PutBlob(ctx context.Context, d cache.Digest, size int64, r io.Reader) error {
	if s.chunks(size) {
		return s.putStreamChunked(ctx, d, size, r)
	}
	if skip, err := s.beforePut(ctx, d, size); skip || err != nil {
		return err
	}
	return s.upload(ctx, d, size, &streamSource{r: r, size: size, frameSize: s.frameSize})
}

// beforePut checks a put of blob d and reports whether the bucket already
// has it (and it was not found corrupt).
func (s *Store) beforePut(ctx context.Context, d cache.Digest, size int64) (skip bool, err error) {
	if !s.cfg.Upload {
		return false, fmt.Errorf("storing blob %s in %s: %w", d.Short(), s, ErrReadOnly)
	}
	if size < 0 || size >= cache.MaxBlobSize {
		return false, fmt.Errorf("storing blob %s: impossible size %d", d.Short(), size)
	}
	if _, err := partSize(size, s.frameSize, s.partSize); err != nil {
		return false, fmt.Errorf("storing blob %s in %s: %w", d.Short(), s, err)
	}
	info, err := s.StatBlob(ctx, d)
	switch {
	case err == nil && info.Size == size:
		s.stats.blobsSkipped.Add(1)
		return true, nil
	case err == nil, isMiss(err):
		return false, nil
	}
	return false, err
}

// GetAction fetches and validates the result stored under k, with two
// GETs sent together: under ac/ and ac-chunked/ (see doc.go), the latter
// preferred. It does not check that the output blobs are in the bucket (that
// would cost a request per blob): callers put blobs first, and a blob that
// has since gone missing is a miss when it is read.
func (s *Store) GetAction(ctx context.Context, k cache.ActionKey) (*cache.ActionResult, error) {
	// Both places at once: a miss costs no more time than one GET.
	type got struct {
		r   *cache.ActionResult
		err error
	}
	ch := make(chan got, 1)
	go func() {
		r, err := s.getAction(ctx, k, s.chunkedActionKey(k))
		ch <- got{r, err}
	}()
	r, err := s.getAction(ctx, k, s.actionKey(k))
	c := <-ch
	if c.err == nil || !isPlainMiss(c.err) {
		return c.r, c.err
	}
	return r, err
}

// getAction fetches and validates the result of action k stored at key.
func (s *Store) getAction(ctx context.Context, k cache.ActionKey, key string) (*cache.ActionResult, error) {
	var data []byte
	err := s.do(ctx, "GET", key, s.idle, func(ctx context.Context, a *activity) error {
		rc, _, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(io.LimitReader(touchReader{rc, a}, maxActionJSON+1))
		return err
	})
	if err != nil {
		return nil, err
	}
	corrupt := func(label, reason string) error {
		what := "action result " + k.String()
		if label != "" {
			what += " (" + truncate(label, 200) + ")"
		}
		return &cache.CorruptError{What: what + " at " + s.objectURL(key), Reason: reason}
	}
	if len(data) > maxActionJSON {
		return nil, corrupt("", fmt.Sprintf("more than the limit of %d bytes", maxActionJSON))
	}
	var r cache.ActionResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, corrupt("", "invalid JSON: "+truncate(err.Error(), 200))
	}
	if r.Key != k {
		return nil, corrupt(r.Label, "it is for key "+r.Key.String())
	}
	if err := r.Validate(); err != nil {
		return nil, corrupt(r.Label, err.Error())
	}
	return &r, nil
}

// PutAction validates r and writes it (the same JSON as the local
// cache) under r.Key, replacing any entry there; a PUT is atomic in S3.
// Put every blob r names first. BlobsRemote, a local annotation, is not
// stored. Unlike blobs, the payload is signed even over http://: an action
// result is not content-addressed, so only the signature protects it.
func (s *Store) PutAction(ctx context.Context, r *cache.ActionResult) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("storing action result: %w", err)
	}
	if !s.cfg.Upload {
		return fmt.Errorf("storing action %s in %s: %w", r.Key.Short(), s, ErrReadOnly)
	}
	c := *r
	c.BlobsRemote = false
	data, err := json.MarshalIndent(&c, "", "\t")
	if err != nil {
		return fmt.Errorf("storing action %s: %w", r.Key.Short(), err)
	}
	data = append(data, '\n')
	key := s.actionKey(r.Key)
	if s.namesChunked(r) {
		key = s.chunkedActionKey(r.Key)
	}
	return s.do(ctx, "PUT", key, s.idle, func(ctx context.Context, a *activity) error {
		_, err := s.core.PutObject(ctx, s.bucket, key, touchReader{bytes.NewReader(data), a}, int64(len(data)), "", "",
			minio.PutObjectOptions{ContentType: "application/json"})
		return err
	})
}

// isMiss reports an ErrNotFound error (a *cache.CorruptError is one too).
func isMiss(err error) bool { return errors.Is(err, cache.ErrNotFound) }

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
