package s3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
)

// ActionEntry is an action result object, as a listing shows it.
type ActionEntry struct {
	Key          cache.ActionKey
	Chunked      bool  // under ac-chunked/: it names a chunked blob
	Size         int64 // bytes of JSON
	LastModified time.Time
}

// BlobEntry is a blob object, as a listing shows it.
type BlobEntry struct {
	Digest       cache.Digest
	StoredSize   int64 // bytes in the bucket (compressed); StatBlob gives the original size
	LastModified time.Time
}

// ListActions calls fn for every action result under the prefix, those
// under ac/ then those under ac-chunked/, each in key order, with its
// LastModified (for `cache gc --remote --older-than`). Objects there that
// cogumi did not name are skipped. An error from fn stops the listing and
// is returned as it is.
func (s *Store) ListActions(ctx context.Context, fn func(ActionEntry) error) error {
	for _, dir := range []string{"ac/", "ac-chunked/"} {
		err := s.list(ctx, dir, func(oi minio.ObjectInfo, name string) error {
			hex, ok := strings.CutSuffix(name, ".json")
			k, err := cache.ParseActionKey(hex)
			if !ok || err != nil {
				return nil
			}
			return fn(ActionEntry{Key: k, Chunked: dir == "ac-chunked/", Size: oi.Size, LastModified: oi.LastModified})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ListBlobs calls fn for every blob under the prefix, in digest order.
// Objects under cas/ that cogumi did not name are skipped. An error from
// fn stops the listing and is returned as it is.
func (s *Store) ListBlobs(ctx context.Context, fn func(BlobEntry) error) error {
	return s.listDigests(ctx, "cas/", fn)
}

// list walks the objects under dir (of the prefix). A failed page is
// retried from the last key seen, so a long listing survives a blip.
func (s *Store) list(ctx context.Context, dir string, fn func(minio.ObjectInfo, string) error) error {
	prefix := s.objectKey(dir)
	last := ""
	return s.do(ctx, "LIST", prefix, s.idle, func(ctx context.Context, a *activity) error {
		opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: true, StartAfter: last}
		for oi := range s.client.ListObjects(ctx, s.bucket, opts) {
			if oi.Err != nil {
				return oi.Err
			}
			a.touch()
			if err := fn(oi, strings.TrimPrefix(oi.Key, prefix)); err != nil {
				return passThrough{err}
			}
			last = oi.Key
		}
		return nil
	})
}

// DeleteAction removes the result of action k. Removing what is not there
// succeeds (S3 semantics).
func (s *Store) DeleteAction(ctx context.Context, k cache.ActionKey) error {
	if err := s.remove(ctx, s.chunkedActionKey(k)); err != nil {
		return err
	}
	return s.remove(ctx, s.actionKey(k))
}

// DeleteBlob removes blob d. Delete action results before the blobs they
// name, so that no result points at a missing blob.
func (s *Store) DeleteBlob(ctx context.Context, d cache.Digest) error {
	if err := s.remove(ctx, s.chunkListKey(d)); err != nil {
		return err
	}
	return s.remove(ctx, s.blobKey(d))
}

// ListChunkLists calls fn for every chunk list (chunked blob) under the
// prefix, in digest order; StoredSize is the list's.
func (s *Store) ListChunkLists(ctx context.Context, fn func(BlobEntry) error) error {
	return s.listDigests(ctx, "chunked/", fn)
}

// ListChunks calls fn for every chunk under the prefix, in digest order.
func (s *Store) ListChunks(ctx context.Context, fn func(BlobEntry) error) error {
	return s.listDigests(ctx, "chunks/", fn)
}

func (s *Store) listDigests(ctx context.Context, dir string, fn func(BlobEntry) error) error {
	return s.list(ctx, dir, func(oi minio.ObjectInfo, name string) error {
		d, err := cache.ParseDigest(name)
		if err != nil {
			return nil
		}
		return fn(BlobEntry{Digest: d, StoredSize: oi.Size, LastModified: oi.LastModified})
	})
}

// ChunkList returns the chunks of chunked blob d, checked (see doc.go).
func (s *Store) ChunkList(ctx context.Context, d cache.Digest) ([]cache.ChunkRef, error) {
	refs, _, err := s.getChunkList(ctx, d, -1)
	return refs, err
}

// DeleteChunk removes chunk c. Delete the chunk lists that name it first.
func (s *Store) DeleteChunk(ctx context.Context, c cache.Digest) error {
	return s.remove(ctx, s.chunkKey(c))
}

func (s *Store) remove(ctx context.Context, key string) error {
	if !s.cfg.Upload {
		return fmt.Errorf("deleting %s: %w", s.objectURL(key), ErrReadOnly)
	}
	return s.do(ctx, "DELETE", key, s.idle, func(ctx context.Context, _ *activity) error {
		return s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	})
}
