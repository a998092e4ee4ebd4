package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
	info, err := r.s.StatBlob(ctx, d)
	switch {
	case errors.Is(err, cache.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return info.Size == size, nil
}

func (r *s3Remote) PutFile(ctx context.Context, d cache.Digest, size int64, path string) error {
	return r.s.PutFile(ctx, d, size, path)
}

func (r *s3Remote) GetFile(ctx context.Context, d cache.Digest, size int64, dst string) error {
	return r.s.GetFile(ctx, d, size, dst)
}

var _ engine.RemoteCache = (*s3Remote)(nil)

// runRemoteGC collects the bucket: action results older than the cutoff
// first, then the blobs that no remaining result references.
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
	var old []cache.ActionKey
	live := make(map[cache.Digest]bool)
	err = r.s.ListActions(ctx, func(e s3.ActionEntry) error {
		if e.LastModified.Before(cutoff) {
			old = append(old, e.Key)
			return nil
		}
		res, err := r.s.GetAction(ctx, e.Key)
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
	if err != nil {
		return err
	}
	var dead []s3.BlobEntry
	err = r.s.ListBlobs(ctx, func(b s3.BlobEntry) error {
		// A blob younger than the cutoff may belong to an upload whose action
		// result is not written yet: keep it.
		if !live[b.Digest] && b.LastModified.Before(cutoff) {
			dead = append(dead, b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(old, func(i, j int) bool { return old[i].String() < old[j].String() })
	var freed int64
	for _, b := range dead {
		freed += b.StoredSize
	}
	if opts.DryRun {
		for _, k := range old {
			fmt.Fprintf(g.stdout, "would delete action result %s\n", k)
		}
		for _, b := range dead {
			fmt.Fprintf(g.stdout, "would delete blob %s (%s)\n", b.Digest, units.FormatBytes(b.StoredSize))
		}
		fmt.Fprintf(g.stdout, "would delete %d action results and %d blobs (%s) from %s\n", len(old), len(dead), units.FormatBytes(freed), r)
		return nil
	}
	for _, k := range old {
		if err := r.s.DeleteAction(ctx, k); err != nil {
			return err
		}
	}
	for _, b := range dead {
		if err := r.s.DeleteBlob(ctx, b.Digest); err != nil {
			return err
		}
	}
	fmt.Fprintf(g.stdout, "deleted %d action results and %d blobs (%s) from %s\n", len(old), len(dead), units.FormatBytes(freed), r)
	return nil
}
