package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/hcl"
	"github.com/cogumi/cogumi/internal/units"
)

// s3Remote adapts the S3 store to the engine's RemoteCache.
type s3Remote struct{ s *s3.Store }

// openRemote opens the S3 remote cache; opts adjust its configuration (a
// progress hook, say).
func openRemote(ctx context.Context, rc *hcl.RemoteCache, opts ...func(*s3.Config)) (*s3Remote, error) {
	cfg := s3.Config{URL: rc.URL, Endpoint: rc.Endpoint, Region: rc.Region, Upload: rc.Upload}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := s3.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &s3Remote{s: s}, nil
}

func (r *s3Remote) String() string { return r.s.String() }

func (r *s3Remote) GetAction(ctx context.Context, k cache.ActionKey) (*cache.ActionResult, error) {
	return r.s.GetAction(ctx, k)
}

func (r *s3Remote) PutAction(ctx context.Context, res *cache.ActionResult) error {
	return r.s.PutAction(ctx, res)
}

func (r *s3Remote) HasBlob(ctx context.Context, d cache.Digest, size int64) (bool, error) {
	return r.s.FindBlob(ctx, d, size)
}

func (r *s3Remote) PutFile(ctx context.Context, d cache.Digest, size int64, path string) error {
	return r.s.PutFile(ctx, d, size, path)
}

func (r *s3Remote) GetFile(ctx context.Context, d cache.Digest, size int64, dst string) error {
	return r.s.GetFile(ctx, d, size, dst)
}

var _ engine.RemoteCache = (*s3Remote)(nil)

// runRemoteGC collects the bucket: action results older than the cutoff
// first, then the blobs and chunk lists that no remaining result
// references, then the chunks that no remaining chunk list names. Anything
// younger than the cutoff is kept: it may belong to an upload whose action
// result (or chunk list) is not written yet.
func runRemoteGC(cmd *cobra.Command, g *globals, opts cache.GCOptions) error {
	if opts.OlderThan == 0 {
		return &exitError{code: exitConfig, err: fmt.Errorf("cache gc --remote needs --older-than AGE (the bucket has no size budget)")}
	}
	w, err := g.load()
	if err != nil {
		return err
	}
	rc := g.remoteSettings(cmd.Flags(), w)
	if rc == nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("no remote cache configured")}
	}
	ctx := cmd.Context()
	r, err := openRemote(ctx, rc)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-opts.OlderThan)
	old, live, err := remoteLiveBlobs(ctx, r.s, cutoff)
	if err != nil {
		return err
	}
	dead := remoteDead{actions: old}
	if dead.blobs, err = deadEntries(cutoff, live, r.s.ListBlobs); err != nil {
		return err
	}
	// A chunk list is a blob: live while a result names it; its chunks are
	// live while it is (or while it is young).
	liveChunks := make(map[cache.Digest]bool)
	err = r.s.ListChunkLists(ctx, func(b s3.BlobEntry) error {
		if !live[b.Digest] && b.LastModified.Before(cutoff) {
			dead.lists = append(dead.lists, b)
			return nil
		}
		refs, err := r.s.ChunkList(ctx, b.Digest)
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			return err
		}
		for _, c := range refs {
			liveChunks[c.Digest] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if dead.chunks, err = deadEntries(cutoff, liveChunks, r.s.ListChunks); err != nil {
		return err
	}
	return dead.apply(ctx, g, r, opts.DryRun)
}

// remoteLiveBlobs returns the action results older than cutoff and the
// blobs that the others name.
func remoteLiveBlobs(ctx context.Context, s *s3.Store, cutoff time.Time) ([]cache.ActionKey, map[cache.Digest]bool, error) {
	var old []cache.ActionKey
	live := make(map[cache.Digest]bool)
	err := s.ListActions(ctx, func(e s3.ActionEntry) error {
		if e.LastModified.Before(cutoff) {
			old = append(old, e.Key)
			return nil
		}
		res, err := s.GetAction(ctx, e.Key)
		if err != nil {
			return nil // unreadable or corrupt: it keeps nothing alive
		}
		for _, f := range res.Outputs.Files {
			live[f.Digest] = true
		}
		if !res.Log.IsZero() {
			live[res.Log] = true
		}
		return nil
	})
	sort.Slice(old, func(i, j int) bool { return old[i].String() < old[j].String() })
	return old, live, err
}

// deadEntries lists with list and returns the entries older than cutoff
// that live does not hold.
func deadEntries(cutoff time.Time, live map[cache.Digest]bool, list func(context.Context, func(s3.BlobEntry) error) error) ([]s3.BlobEntry, error) {
	var dead []s3.BlobEntry
	err := list(context.Background(), func(b s3.BlobEntry) error {
		if !live[b.Digest] && b.LastModified.Before(cutoff) {
			dead = append(dead, b)
		}
		return nil
	})
	return dead, err
}

// remoteDead is what a remote collection deletes, in this order.
type remoteDead struct {
	actions              []cache.ActionKey
	blobs, lists, chunks []s3.BlobEntry
}

func (d *remoteDead) apply(ctx context.Context, g *globals, r *s3Remote, dryRun bool) error {
	var freed int64
	for _, set := range [][]s3.BlobEntry{d.blobs, d.lists, d.chunks} {
		for _, b := range set {
			freed += b.StoredSize
		}
	}
	summary := fmt.Sprintf("%d action results, %d blobs, %d chunk lists and %d chunks (%s) from %s",
		len(d.actions), len(d.blobs), len(d.lists), len(d.chunks), units.FormatBytes(freed), r)
	if dryRun {
		for _, k := range d.actions {
			fmt.Fprintf(g.stdout, "would delete action result %s\n", k)
		}
		for _, b := range d.blobs {
			fmt.Fprintf(g.stdout, "would delete blob %s (%s)\n", b.Digest, units.FormatBytes(b.StoredSize))
		}
		for _, b := range d.lists {
			fmt.Fprintf(g.stdout, "would delete chunk list %s\n", b.Digest)
		}
		for _, b := range d.chunks {
			fmt.Fprintf(g.stdout, "would delete chunk %s (%s)\n", b.Digest, units.FormatBytes(b.StoredSize))
		}
		fmt.Fprintf(g.stdout, "would delete %s\n", summary)
		return nil
	}
	for _, k := range d.actions {
		if err := r.s.DeleteAction(ctx, k); err != nil {
			return err
		}
	}
	for _, b := range append(d.blobs, d.lists...) {
		if err := r.s.DeleteBlob(ctx, b.Digest); err != nil {
			return err
		}
	}
	for _, b := range d.chunks {
		if err := r.s.DeleteChunk(ctx, b.Digest); err != nil {
			return err
		}
	}
	fmt.Fprintf(g.stdout, "deleted %s\n", summary)
	return nil
}

// runRemoteVerify checks the bucket (s3.Store.Verify) and prints each
// problem, then a summary; problems make the exit code 1.
func runRemoteVerify(cmd *cobra.Command, g *globals, rehash string) error {
	pct, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rehash), "%")), 64)
	if err != nil || pct < 0 || pct > 100 {
		return &exitError{code: exitConfig, err: fmt.Errorf("--rehash %q: want a percentage from 0%% to 100%%", rehash)}
	}
	w, err := g.load()
	if err != nil {
		return err
	}
	rc := g.remoteSettings(cmd.Flags(), w)
	if rc == nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("no remote cache configured (remote_cache in cogumi.hcl, --remote-cache or $COGUMI_REMOTE_CACHE)")}
	}
	ctx := cmd.Context()
	r, err := openRemote(ctx, rc)
	if err != nil {
		return err
	}
	rep, err := r.s.Verify(ctx, s3.VerifyOptions{Rehash: pct / 100})
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(g.stdout, "%s: %s\n", p.What, p.Reason)
	}
	fmt.Fprintf(g.stdout, "checked %d action results, %d whole blobs, %d chunk lists and %d chunks (%d named by no list) in %s; re-hashed %d chunks and %d blobs (%s): %d problems\n",
		rep.Actions, rep.Blobs, rep.ChunkLists, rep.Chunks, rep.Orphans, r, rep.RehashedChunks, rep.RehashedBlobs,
		units.FormatBytes(rep.RehashedBytes), len(rep.Problems))
	if len(rep.Problems) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("the bucket %s has %d bad or missing objects; a build that needs one reads it as a miss, makes the blob again and uploads it", r, len(rep.Problems))}
	}
	return nil
}
