package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cogumi/cogumi/cache"
)

// VerifyOptions says how much of the bucket Verify downloads.
type VerifyOptions struct {
	// Rehash is the fraction, 0 to 1, of the chunks (those a chunk list
	// names) and of the whole blobs that are downloaded and re-hashed,
	// chosen at random; 1 re-hashes every one. The rest are checked for
	// presence only.
	Rehash float64
}

// VerifyProblem is one bad or missing object: What names it (kind, digest
// or key, and its s3:// URL), Reason says what is wrong.
type VerifyProblem struct {
	What, Reason string
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Actions, Blobs, ChunkLists, Chunks int   // objects listed and checked
	RehashedChunks, RehashedBlobs      int   // of which downloaded and re-hashed
	RehashedBytes                      int64 // their content, uncompressed
	Orphans                            int   // chunks no chunk list names (`cache gc --remote` removes old ones)
	Problems                           []VerifyProblem
}

// Verify checks the bucket under the prefix without changing it: every
// chunk list parses and every chunk it names is there; every action result
// parses and every blob it names is there, whole or as a chunk list; and a
// fraction (opts.Rehash) of the chunks and whole blobs are downloaded and
// re-hashed. Problems are reported, never repaired: a build that needs a
// bad blob reads it as a miss (a corrupt chunk or chunk list, a missing
// chunk), makes it again and uploads it. An error is returned only when the bucket could
// not be read (a listing or a request failed).
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{}
	var mu sync.Mutex
	problem := func(what, reason string) {
		mu.Lock()
		rep.Problems = append(rep.Problems, VerifyProblem{What: what, Reason: reason})
		mu.Unlock()
	}
	// corrupt records err as a problem if it is a corrupt entry and returns
	// nil; any other error is returned.
	corrupt := func(err error) error {
		var ce *cache.CorruptError
		if errors.As(err, &ce) {
			problem(ce.What, ce.Reason)
			return nil
		}
		return err
	}

	whole := make(map[cache.Digest]bool)
	if err := s.ListBlobs(ctx, func(b BlobEntry) error { whole[b.Digest] = true; return nil }); err != nil {
		return nil, err
	}
	rep.Blobs = len(whole)
	chunks := make(map[cache.Digest]bool)
	if err := s.ListChunks(ctx, func(b BlobEntry) error { chunks[b.Digest] = true; return nil }); err != nil {
		return nil, err
	}
	rep.Chunks = len(chunks)

	// Chunk lists, and the chunks they name.
	lists := make(map[cache.Digest]bool)
	named := make(map[cache.Digest]cache.ChunkRef)
	err := s.ListChunkLists(ctx, func(b BlobEntry) error {
		rep.ChunkLists++
		lists[b.Digest] = true
		refs, _, err := s.getChunkList(ctx, b.Digest, -1)
		if err != nil {
			return corrupt(err)
		}
		var missing []cache.Digest
		for _, c := range refs {
			if _, seen := named[c.Digest]; seen {
				continue
			}
			named[c.Digest] = c
			if !chunks[c.Digest] {
				missing = append(missing, c.Digest)
			}
		}
		if len(missing) > 0 {
			problem("chunk list "+b.Digest.String()+" at "+s.objectURL(s.chunkListKey(b.Digest)),
				fmt.Sprintf("names %s, missing from %s", countOf(len(missing), "chunk", missing), s.objectURL(s.objectKey("chunks/"))))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for c := range chunks {
		if _, ok := named[c]; !ok {
			rep.Orphans++
		}
	}

	// Action results, and the blobs they name.
	err = s.ListActions(ctx, func(e ActionEntry) error {
		rep.Actions++
		key := s.actionKey(e.Key)
		if e.Chunked {
			key = s.chunkedActionKey(e.Key)
		}
		res, err := s.getAction(ctx, e.Key, key)
		if err != nil {
			return corrupt(err)
		}
		var missing []string
		for _, f := range res.Outputs.Files {
			if !whole[f.Digest] && !lists[f.Digest] {
				missing = append(missing, fmt.Sprintf("%s (%s)", f.Digest.Short(), f.Path))
			}
		}
		if !res.Log.IsZero() && !whole[res.Log] && !lists[res.Log] {
			missing = append(missing, res.Log.Short()+" (its log)")
		}
		if len(missing) > 0 {
			what := "action result " + e.Key.String()
			if res.Label != "" {
				what += " (" + truncate(res.Label, 200) + ")"
			}
			problem(what+" at "+s.objectURL(key), fmt.Sprintf("names %s the bucket does not have: %s",
				plural(len(missing), "blob"), joinShort(missing)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Re-hash a sample of the chunks and of the whole blobs.
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	pick := func() bool { return opts.Rehash >= 1 || rng.Float64() < opts.Rehash }
	var sampleChunks []cache.ChunkRef
	for _, c := range named {
		if chunks[c.Digest] && pick() {
			sampleChunks = append(sampleChunks, c)
		}
	}
	var sampleBlobs []cache.Digest
	for d := range whole {
		if pick() {
			sampleBlobs = append(sampleBlobs, d)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.chunkConc())
	for _, c := range sampleChunks {
		g.Go(func() error {
			if _, err := s.getChunk(gctx, c, nil); err != nil {
				return corrupt(err)
			}
			mu.Lock()
			rep.RehashedChunks++
			rep.RehashedBytes += c.Size
			mu.Unlock()
			return nil
		})
	}
	for _, d := range sampleBlobs {
		g.Go(func() error {
			n, err := s.rehashBlob(gctx, d)
			if err != nil {
				return corrupt(err)
			}
			mu.Lock()
			rep.RehashedBlobs++
			rep.RehashedBytes += n
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].What < rep.Problems[j].What })
	return rep, nil
}

// rehashBlob reads whole blob d (ReadBlob verifies the digest as it goes)
// and returns its size.
func (s *Store) rehashBlob(ctx context.Context, d cache.Digest) (int64, error) {
	r, err := s.openBlob(ctx, d, -1, nil)
	if err != nil {
		if isPlainMiss(err) {
			return 0, s.corruptAt(d, s.blobKey(d), "listed, then missing")
		}
		return 0, err
	}
	defer r.Close()
	return io.Copy(io.Discard, r)
}

// countOf is "1 chunk (3fa2c1d0e9b8)" or "3 chunks (a, b, c, ...)".
func countOf(n int, noun string, ds []cache.Digest) string {
	short := make([]string, len(ds))
	for i, d := range ds {
		short[i] = d.Short()
	}
	return plural(n, noun) + " (" + joinShort(short) + ")"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// joinShort joins at most 5 items, then says how many more.
func joinShort(items []string) string {
	const most = 5
	s := ""
	for i, it := range items {
		if i == most {
			return s + fmt.Sprintf(", and %d more", len(items)-most)
		}
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}
