package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
)

// Chunked blobs (see doc.go): a blob larger than the chunking threshold is
// stored as content-defined chunks under chunks/ plus its chunk list under
// chunked/, so that versions of a file that share bytes share chunks.
const (
	// defaultChunkThreshold: blobs larger than this are chunked.
	defaultChunkThreshold = 16 << 20
	// listPage is the most keys one LIST request returns (S3's maximum).
	listPage = 1000
)

// LocalChunks is a local cache's index of the chunks of the blobs it holds
// (cache.ChunkIndex): a pull copies the chunks it finds there instead of
// downloading them. Both methods must be safe for concurrent use.
type LocalChunks interface {
	// Find returns a file and an offset where size bytes that should hash
	// to chunk c may be read; the caller verifies them.
	Find(c cache.Digest, size int64) (path string, off int64, ok bool)
	// Record notes the chunks of blob d, now in the local cache.
	Record(d cache.Digest, chunks []cache.ChunkRef) error
}

// chunkKey is where chunk c lives: <prefix>/chunks/<64 hex>.
func (s *Store) chunkKey(c cache.Digest) string { return s.objectKey("chunks/" + c.String()) }

// chunkListKey is where the chunk list of blob d lives: <prefix>/chunked/<64 hex>.
func (s *Store) chunkListKey(d cache.Digest) string { return s.objectKey("chunked/" + d.String()) }

// chunkedActionKey is where the result of action k lives when it names a
// chunked blob: <prefix>/ac-chunked/<64 hex>.json, which cogumi versions
// that cannot read chunked blobs never look at.
func (s *Store) chunkedActionKey(k cache.ActionKey) string {
	return s.objectKey("ac-chunked/" + k.String() + ".json")
}

// chunkConc is the number of chunks moved at once: twice the parallel
// requests of a whole blob's transfer, since chunks are small objects
// whose requests spend more of their time waiting.
func (s *Store) chunkConc() int { return 2 * s.conc }

// chunks reports whether a blob of size bytes is stored chunked.
func (s *Store) chunks(size int64) bool {
	return s.chunkThreshold > 0 && size > s.chunkThreshold
}

// namesChunked reports whether action result r names a blob that this
// store chunks (its entry then goes under ac-chunked/).
func (s *Store) namesChunked(r *cache.ActionResult) bool {
	if s.chunks(r.LogSize) {
		return true
	}
	for _, f := range r.Outputs.Files {
		if s.chunks(f.Size) {
			return true
		}
	}
	return false
}

// statChunkList asks, with one HEAD, whether the bucket has the chunk list
// of blob d, and returns the blob's size and the list's stored size.
func (s *Store) statChunkList(ctx context.Context, d cache.Digest) (BlobInfo, error) {
	key := s.chunkListKey(d)
	if s.isCorrupt(d) {
		return BlobInfo{}, s.corruptAt(d, key, "found corrupt earlier; a miss until uploaded again")
	}
	var oi minio.ObjectInfo
	err := s.do(ctx, "HEAD", key, s.idle, func(ctx context.Context, _ *activity) error {
		var err error
		oi, err = s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return BlobInfo{}, err
	}
	h := oi.Metadata
	size, perr := strconv.ParseInt(h.Get("X-Amz-Meta-"+metaSize), 10, 64)
	if h.Get("X-Amz-Meta-"+metaDigest) != d.String() || h.Get("X-Amz-Meta-"+metaFormat) != formatChunkList || perr != nil || size < 0 {
		return BlobInfo{}, s.corruptAt(d, key, "the chunk list's metadata does not name it")
	}
	return BlobInfo{Size: size, StoredSize: oi.Size, Format: formatChunkList, LastModified: oi.LastModified}, nil
}

// getObject fetches a whole small object, at most limit bytes.
func (s *Store) getObject(ctx context.Context, key string, limit int64) ([]byte, minio.ObjectInfo, error) {
	return s.getObjectInto(ctx, key, limit, nil)
}

// getObjectInto is getObject reading into buf when the object fits it.
func (s *Store) getObjectInto(ctx context.Context, key string, limit int64, buf []byte) ([]byte, minio.ObjectInfo, error) {
	var data []byte
	var info minio.ObjectInfo
	err := s.do(ctx, "GET", key, s.idle, func(ctx context.Context, a *activity) error {
		rc, oi, h, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer rc.Close()
		oi.Metadata = h
		info = oi
		if oi.Size >= 0 && oi.Size <= limit {
			if oi.Size <= int64(cap(buf)) {
				data = buf[:oi.Size]
			} else {
				data = make([]byte, oi.Size)
			}
			_, err = io.ReadFull(touchReader{rc, a}, data)
			return err
		}
		data, err = io.ReadAll(io.LimitReader(touchReader{rc, a}, limit+1))
		return err
	})
	return data, info, err
}

// getChunkList fetches and checks the chunk list of blob d of size bytes
// (-1: any size).
func (s *Store) getChunkList(ctx context.Context, d cache.Digest, size int64) ([]cache.ChunkRef, int64, error) {
	if s.isCorrupt(d) {
		return nil, 0, s.corruptAt(d, s.chunkListKey(d), "found corrupt earlier; a miss until uploaded again")
	}
	key := s.chunkListKey(d)
	limit := int64(chunkListHeader + maxChunks*chunkListEntry + 4)
	if size >= 0 {
		limit = chunkListHeader + min(maxChunks, size)*chunkListEntry + 4
	}
	data, _, err := s.getObject(ctx, key, limit)
	if err != nil {
		return nil, 0, err
	}
	if int64(len(data)) > limit {
		return nil, 0, s.corruptAt(d, key, "the chunk list is larger than the blob allows")
	}
	refs, total, err := parseChunkList(data, d, size)
	if err != nil {
		return nil, 0, s.corruptAt(d, key, err.Error())
	}
	return refs, total, nil
}

// putChunkList stores the chunk list of blob d, which makes the blob
// visible: put it only after every chunk.
func (s *Store) putChunkList(ctx context.Context, d cache.Digest, size int64, refs []cache.ChunkRef) error {
	body := marshalChunkList(d, size, refs)
	key := s.chunkListKey(d)
	return s.do(ctx, "PUT", key, s.idle, func(ctx context.Context, a *activity) error {
		_, err := s.core.PutObject(ctx, s.bucket, key, touchReader{bytes.NewReader(body), a}, int64(len(body)), "", "",
			putOptions(d, size, formatChunkList))
		return err
	})
}

// presentChunks reports which of the chunks cs the bucket has, by listing
// rather than a HEAD per chunk: a LIST request starting just before the
// first chunk not yet settled returns up to 1,000 keys in order, which
// settles every chunk up to the last key returned. So it costs at most one
// request per chunk when the bucket is huge and the chunks are few, and
// about one per 1,000 chunks of the bucket otherwise. Chunks this store
// found corrupt count as missing, so that a push repairs them.
func (s *Store) presentChunks(ctx context.Context, cs []cache.Digest) (map[cache.Digest]bool, error) {
	keys := make([]string, 0, len(cs))
	for _, c := range cs {
		keys = append(keys, s.chunkKey(c))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	dir := s.objectKey("chunks/")
	have := make(map[cache.Digest]bool)
	for i := 0; i < len(keys); {
		start := keys[i][:len(keys[i])-1] // sorts just before keys[i]
		var page minio.ListBucketV2Result
		err := s.do(ctx, "LIST", dir, s.idle, func(ctx context.Context, _ *activity) error {
			var err error
			page, err = s.core.ListObjectsV2(s.bucket, dir, start, "", "", listPage)
			return err
		})
		if err != nil {
			return nil, err
		}
		listed := make(map[string]bool, len(page.Contents))
		last := ""
		for _, o := range page.Contents {
			listed[o.Key] = true
			last = max(last, o.Key)
		}
		for ; i < len(keys) && (!page.IsTruncated || keys[i] <= last); i++ {
			if listed[keys[i]] {
				c, err := cache.ParseDigest(strings.TrimPrefix(keys[i], dir))
				if err == nil && !s.isCorrupt(c) {
					have[c] = true
				}
			}
		}
		if page.IsTruncated && last == "" {
			return nil, fmt.Errorf("listing %s: the server returned an empty truncated page", s.objectURL(dir))
		}
	}
	return have, nil
}

// getChunk fetches chunk c with one GET and returns its verified bytes:
// the object is in a blob's format (raw or zstd frames, see doc.go). A
// raw chunk's bytes are read into buf if it is large enough.
func (s *Store) getChunk(ctx context.Context, c cache.ChunkRef, buf []byte) ([]byte, error) {
	key := s.chunkKey(c.Digest)
	if s.isCorrupt(c.Digest) {
		return nil, s.corruptAt(c.Digest, key, "found corrupt earlier; a miss until uploaded again")
	}
	body, oi, err := s.getObjectInto(ctx, key, maxObjectSize(c.Size, minFrameSize), buf)
	if err != nil {
		return nil, err
	}
	bad := func(reason string) ([]byte, error) { return nil, s.corruptAt(c.Digest, key, reason) }
	size, format, err := blobMeta(oi.Metadata, c.Digest)
	switch {
	case err != nil:
		return bad(err.Error())
	case size != c.Size:
		return bad(fmt.Sprintf("the bucket holds %d bytes, the chunk list says %d", size, c.Size))
	case int64(len(body)) > maxObjectSize(c.Size, minFrameSize):
		return bad("the object is larger than its content allows")
	}
	data := body
	if format == formatFrames {
		if data, err = s.decodeFrames(c.Digest, size, body); err != nil {
			return bad(err.Error())
		}
	}
	if int64(len(data)) != size {
		return bad(fmt.Sprintf("%d bytes stored, want %d; truncated?", len(data), size))
	}
	if got := cache.DigestBytes(data); got != c.Digest {
		return bad("the content hashes to " + got.String())
	}
	return data, nil
}

// decodeFrames decodes a whole zstd-frames object held in memory.
func (s *Store) decodeFrames(d cache.Digest, size int64, body []byte) ([]byte, error) {
	total := int64(len(body))
	if total < trailerSize {
		return nil, fmt.Errorf("object of %d bytes is too short for a trailer; truncated?", total)
	}
	t, err := parseTrailer(body[total-trailerSize:], d, size, total)
	if err != nil {
		return nil, err
	}
	l, err := parseIndex(body[total-trailerSize-t.indexLen():total-trailerSize], t, total)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, size)
	for f := range l.frames() {
		stored := body[f.storedOff:f.end]
		if f.raw {
			out = append(out, stored...)
			continue
		}
		n := len(out)
		out, err = s.dec.DecodeAll(stored, out)
		if err != nil || int64(len(out)-n) != f.len {
			return nil, fmt.Errorf("frame %d does not decode to its %d bytes (%v)", f.index, f.len, err)
		}
	}
	return out, nil
}
