package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/hcl"
	"github.com/cogumi/cogumi/internal/units"
)

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect and manage the local and remote caches",
		Long: `cache moves artifacts between the local cache and the team's remote cache
and keeps both in bounds.

  cogumi cache push [TARGET...]   upload what is built locally (default //...)
  cogumi cache pull [TARGET...]   download results without building
  cogumi cache stat               local size, entries, hit rates of the last build
  cogumi cache gc --max-size 50GiB | --older-than 30d      the local cache
  cogumi cache gc --remote --older-than 90d [--dry-run]   the bucket
  cogumi cache verify             re-hash the local cache, remove bad entries
  cogumi cache verify --remote [--rehash 100%]             check the bucket`,
	}
	cmd.AddCommand(newCachePushCmd(g), newCachePullCmd(g), newCacheStatCmd(g), newCacheGCCmd(g), newCacheVerifyCmd(g))
	return cmd
}

func newCachePushCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "push [TARGET...]",
		Short: "Upload the local results of targets (and what they need) to the remote cache",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTransfer(cmd, g, args, false, (*engine.Engine).Push,
				"pushed %d results (%s uploaded)\n", "not built locally, not pushed: %s\n")
		},
	}
}

func newCachePullCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "pull [TARGET...]",
		Short: "Download the results of targets from the remote cache without building",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTransfer(cmd, g, args, all, (*engine.Engine).Pull,
				"pulled %d results (%s downloaded)\n", "in no cache (they need building): %s\n")
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "download the artifacts of every needed target, not only the named ones")
	return cmd
}

// runTransfer runs cache push or pull over the named targets (default
// //...) and reports what moved and what could not.
func runTransfer(cmd *cobra.Command, g *globals, args []string, downloadAll bool,
	op func(*engine.Engine, context.Context, []label.Label) (engine.TransferReport, error), done, missing string) error {
	w, e, err := g.remoteEngine(cmd, downloadAll)
	if err != nil {
		return err
	}
	defer e.Close()
	roots, err := w.labels(e, defaultAll(args))
	if err != nil {
		return err
	}
	rep, err := op(e, cmd.Context(), roots)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, done, rep.Targets, units.FormatBytes(rep.Bytes))
	if len(rep.Missing) > 0 {
		fmt.Fprintf(g.stdout, missing, strings.Join(rep.Missing, " "))
	}
	return nil
}

func defaultAll(args []string) []string {
	if len(args) == 0 {
		return []string{"//..."}
	}
	return args
}

func newCacheStatCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stat",
		Short: "Show the local cache's size and the hit rates of the last build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := g.inspect(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			c, err := g.openCache(w)
			if err != nil {
				return err
			}
			u, err := c.Usage()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "local cache %s: %d blobs, %s, %d action results\n", c.Dir(), u.Blobs, units.FormatBytes(u.BlobBytes), u.Actions)
			lb, ok := e.ReadLastBuild()
			if !ok {
				fmt.Fprintln(g.stdout, "no build recorded in this workspace yet")
				return nil
			}
			actions := lb.Executed + lb.Cached + lb.Remote + lb.Failed
			rate := func(n int) string {
				if actions == 0 {
					return "-"
				}
				return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(actions))
			}
			fmt.Fprintf(g.stdout, "last build: %d targets, %d actions: %d local hits (%s), %d remote hits (%s), %d executed, %d failed; %s downloaded, %s uploaded\n",
				lb.Targets, actions, lb.Cached, rate(lb.Cached), lb.Remote, rate(lb.Remote), lb.Executed, lb.Failed,
				units.FormatBytes(lb.Downloaded), units.FormatBytes(lb.Uploaded))
			return nil
		},
	}
}

type gcFlags struct {
	maxSize   string
	olderThan string
	remote    bool
	dryRun    bool
}

func newCacheGCCmd(g *globals) *cobra.Command {
	var f gcFlags
	cmd := &cobra.Command{
		Use:   "gc (--max-size SIZE | --older-than AGE) [--remote] [--dry-run]",
		Short: "Remove old cache entries, locally or in the bucket",
		Long: `gc removes action results older than --older-than (30d, 12h) or, locally, the
oldest ones until the cache fits --max-size (50GiB), then every blob no remaining
result references. Locally it never removes what a workspace's cogumi-out links to.
With --remote it collects the bucket: action results older than the cutoff, then
the blobs no remaining result references. --dry-run lists what would go.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runGC(cmd, g, f) },
	}
	cmd.Flags().StringVar(&f.maxSize, "max-size", "", "keep the local cache under `SIZE` (e.g. 50GiB)")
	cmd.Flags().StringVar(&f.olderThan, "older-than", "", "remove results older than `AGE` (e.g. 30d, 12h)")
	cmd.Flags().BoolVar(&f.remote, "remote", false, "collect the remote cache's bucket instead of the local cache")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list what would be removed, removing nothing")
	return cmd
}

func runGC(cmd *cobra.Command, g *globals, f gcFlags) error {
	var opts cache.GCOptions
	var err error
	if f.olderThan != "" {
		if opts.OlderThan, err = units.ParseAge(f.olderThan); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("--older-than: %w", err)}
		}
	}
	if f.maxSize != "" {
		if opts.MaxSize, err = units.ParseBytes(f.maxSize); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("--max-size: %w", err)}
		}
	}
	if opts.OlderThan == 0 && opts.MaxSize == 0 {
		return &exitError{code: exitConfig, err: fmt.Errorf("say what to remove: --older-than AGE or --max-size SIZE")}
	}
	opts.DryRun = f.dryRun
	if f.remote {
		return runRemoteGC(cmd, g, opts)
	}
	w, err := g.load()
	if err != nil {
		return err
	}
	c, err := g.openCache(w)
	if err != nil {
		return err
	}
	opts.Keep = engine.LinkedKeys(c)
	rep, err := c.GC(opts)
	if err != nil {
		return err
	}
	verb := "removed"
	if f.dryRun {
		verb = "would remove"
		for _, k := range rep.Actions {
			fmt.Fprintf(g.stdout, "action result %s\n", k)
		}
	}
	fmt.Fprintf(g.stdout, "%s %d action results and %d blobs (%s); %s left\n", verb, len(rep.Actions), rep.Blobs,
		units.FormatBytes(rep.BytesFreed), units.FormatBytes(rep.BytesLeft))
	return nil
}

func newCacheVerifyCmd(g *globals) *cobra.Command {
	var remote bool
	var rehash string
	cmd := &cobra.Command{
		Use:   "verify [--remote [--rehash PERCENT]]",
		Short: "Re-hash the local cache (or check the bucket), report bad entries",
		Long: `verify re-hashes every blob of the local cache and checks every action result
(its JSON, its manifest, that its output blobs are there with their sizes). A blob
whose content does not match its digest, an invalid result, and every result that
references a removed blob are reported with their paths and removed: the next
build runs those actions again. A result recorded from a remote hit is not bad
for lacking blobs, which live in the bucket. Files that builds are writing (or
that killed builds left) in tmp/ and scratch/ are not problems.

With --remote it checks the remote cache's bucket instead, changing nothing:
every chunk list is read and every chunk it names must be there; every action
result is read and every blob it names must be there (whole or as a chunk
list); and --rehash PERCENT (default 5%) of the chunks and of the whole blobs,
chosen at random, are downloaded and re-hashed (100% re-hashes all). Each bad
or missing object is reported with its s3:// URL. Nothing is deleted: a build
that needs a bad blob reads it as a miss, makes it again and uploads it.

The exit code is 1 when it found a problem, 0 when the cache was sound.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if remote {
				return runRemoteVerify(cmd, g, rehash)
			}
			if cmd.Flags().Changed("rehash") {
				return &exitError{code: exitConfig, err: fmt.Errorf("--rehash is for --remote: the local cache is always re-hashed whole")}
			}
			c, err := verifyCacheDir(g)
			if err != nil {
				return err
			}
			rep, err := c.Verify()
			if err != nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Fprintf(g.stdout, "%s: %s: %s\n", p.Path, p.What, p.Reason)
			}
			if rep.Temps > 0 {
				fmt.Fprintf(g.stdout, "%s holds %d file(s) that builds are writing or killed builds left (removed after a day): not problems\n",
					filepath.Join(c.Dir(), "tmp"), rep.Temps)
			}
			if len(rep.Problems) == 0 {
				fmt.Fprintf(g.stdout, "checked %d blobs and %d action results: 0 problems\n", rep.Blobs, rep.Actions)
				return nil
			}
			fmt.Fprintf(g.stdout, "checked %d blobs and %d action results: %d problems, removed\n", rep.Blobs, rep.Actions, len(rep.Problems))
			return &exitError{code: exitFailed, err: fmt.Errorf("the cache %s had %d bad entries; they were removed", c.Dir(), len(rep.Problems))}
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", false, "check the remote cache's bucket instead of the local cache")
	cmd.Flags().StringVar(&rehash, "rehash", "5%", "with --remote, the `PERCENT` of chunks and whole blobs downloaded and re-hashed")
	return cmd
}

// verifyCacheDir opens the local cache for verify, which needs no
// workspace: --cache-dir or COGUMI_CACHE_DIR, else the workspace's cache
// if there is one, else the default.
func verifyCacheDir(g *globals) (*cache.Local, error) {
	if g.cacheDir != "" || os.Getenv("COGUMI_CACHE_DIR") != "" {
		return g.openCache(nil)
	}
	dir := g.dir
	if dir == "" {
		dir = "."
	}
	if _, err := hcl.FindRoot(dir); err != nil {
		return g.openCache(nil)
	}
	w, err := g.load()
	if err != nil {
		return nil, err
	}
	return g.openCache(w)
}
