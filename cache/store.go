package cache

import (
	"context"
	"io"
)

// Store is the contract every cache backend meets: the local disk (Local)
// and an S3 bucket (package s3). Both pass the same conformance suite
// (cachetest.Run).
//
// What holds for every implementation:
//
//   - Blobs are immutable and named by the BLAKE3 digest of their content.
//     Puts are idempotent: storing a blob or an action result that is already
//     there succeeds, and any number of processes may put the same blob or
//     result at once; readers see either nothing or a complete entry, never a
//     partial one.
//   - A miss is an error for which errors.Is(err, ErrNotFound) is true. A
//     corrupt entry is a miss with a reason (*CorruptError); the store
//     removes it where it can. Nothing corrupt is ever returned as valid.
//   - An action result is put only after every blob its manifest names (so
//     GetAction may check that they are all present); GetAction validates the
//     entry (Validate, key match) before returning it.
//   - Methods are safe for concurrent use.
//   - Each method takes a context first: a remote store stops its requests
//     when it is cancelled and returns its error; the local store, which
//     waits on nothing that a context could cancel, ignores it. A reader
//     from ReadBlob stays bound to the context it was opened with.
//
// Backends may drop entries at any time (eviction): a blob or result that
// was there may later be a miss, never a different content.
type Store interface {
	// HasBlob reports whether blob d is stored with exactly size bytes.
	// It is a cheap check (a stat, a HEAD request), not a verification;
	// any failure to find out reads as false.
	HasBlob(ctx context.Context, d Digest, size int64) bool
	// PutBytes stores b and returns its digest.
	PutBytes(ctx context.Context, b []byte) (Digest, error)
	// PutBlob streams size bytes from r into blob d, verifying the content
	// against d and size as it goes; on a mismatch nothing is stored and the
	// error says so.
	PutBlob(ctx context.Context, d Digest, size int64, r io.Reader) error
	// ReadBlob opens blob d for reading, or returns an ErrNotFound error.
	// Remote stores verify the content as it is read (a reader that finds a
	// mismatch fails with a *CorruptError at EOF); the local store does not
	// re-hash on every read (see Local.VerifyBlob).
	ReadBlob(ctx context.Context, d Digest) (io.ReadCloser, error)
	// GetAction returns the validated result stored under k, or an error
	// for which errors.Is(err, ErrNotFound) holds.
	GetAction(ctx context.Context, k ActionKey) (*ActionResult, error)
	// PutAction validates r and stores it under r.Key, replacing any entry
	// there, atomically.
	PutAction(ctx context.Context, r *ActionResult) error
}

var _ Store = (*Local)(nil)
