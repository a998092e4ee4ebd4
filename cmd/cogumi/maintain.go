package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/hcl"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"
)

func newCleanCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clean [--cache]",
		Short: "Remove cogumi-out (and with --cache, the local cache)",
		Long: `Clean removes the workspace's cogumi-out directory. Artifacts stay in the
cache, so the next build links them again without running anything.
With --cache it also deletes the local cache directory: everything is rebuilt.
It deletes only a directory cogumi made for its cache (marked by the file
CACHEDIR.TAG), never a workspace, a directory above it, / or the home
directory. Clean reads only cogumi.hcl, so it works while a BUILD file is broken.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := g.loadSettings()
			if err != nil {
				return err
			}
			// The cache is checked first, so that a refusal leaves
			// everything as it was.
			dir, present := "", false
			if all {
				if dir, err = g.localCacheDir(w); err != nil {
					return err
				}
				if present, err = checkCacheRemovable(w.ws.Root, dir); err != nil {
					return err
				}
			}
			out := filepath.Join(w.ws.Root, "cogumi-out")
			if err := cache.RemoveTree(out); err != nil {
				return fmt.Errorf("removing %s: %w", out, err)
			}
			fmt.Fprintf(g.stdout, "removed %s\n", out)
			switch {
			case !all:
				return nil
			case !present:
				fmt.Fprintf(g.stdout, "no local cache at %s\n", dir)
				return nil
			}
			if err := cache.RemoveTree(dir); err != nil {
				return fmt.Errorf("removing %s: %w", dir, err)
			}
			fmt.Fprintf(g.stdout, "removed the local cache %s\n", dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "cache", false, "also delete the local cache")
	return cmd
}

// checkCacheRemovable makes sure that the local cache dir of the workspace
// at root is a cache cogumi made before clean --cache deletes it: a wrong
// cache setting must not delete a user's files. It reports whether dir
// exists.
func checkCacheRemovable(root, dir string) (bool, error) {
	refuse := func(why error) error {
		return &exitError{code: exitConfig, err: fmt.Errorf("not deleting %s: %w\n"+
			"If the setting is wrong, fix it (cache.dir in cogumi.hcl, --cache-dir or COGUMI_CACHE_DIR); "+
			"if the directory really is a cache to throw away, delete it yourself", dir, why)}
	}
	if err := hcl.CheckCacheDir(root, dir); err != nil {
		return false, refuse(err)
	}
	if _, err := os.Stat(filepath.Join(dir, hcl.SettingsFile)); err == nil {
		return false, refuse(fmt.Errorf("it holds %s: it is a workspace, not a cache", hcl.SettingsFile))
	}
	switch err := cache.CheckCacheDir(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, refuse(err)
	}
	return true, nil
}

func newFmtCmd(g *globals) *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt [--check]",
		Short: "Rewrite cogumi.hcl and every BUILD.hcl in canonical style",
		Long: `Fmt formats the workspace's configuration files with HCL's canonical style.
With --check it changes nothing, lists the files that need formatting and exits 1
if there are any (for CI).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := g.load()
			if err != nil {
				return err
			}
			var bad []string
			for rel, src := range w.ws.Files {
				out := hclwrite.Format(src)
				if bytes.Equal(out, src) {
					continue
				}
				bad = append(bad, rel)
				if check {
					continue
				}
				path := filepath.Join(w.ws.Root, filepath.FromSlash(rel))
				fi, err := os.Stat(path)
				if err != nil {
					return err
				}
				if err := os.WriteFile(path, out, fi.Mode().Perm()); err != nil {
					return fmt.Errorf("formatting %s: %w", rel, err)
				}
				fmt.Fprintf(g.stdout, "formatted %s\n", rel)
			}
			if check && len(bad) > 0 {
				for _, f := range sortedStrings(bad) {
					fmt.Fprintf(g.stdout, "%s needs formatting\n", f)
				}
				return &exitError{code: exitFailed, err: fmt.Errorf("%d file(s) need formatting: run cogumi fmt", len(bad))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only check: list unformatted files and exit 1 if any")
	return cmd
}

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the workspace's configuration without building",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := g.load()
			if err != nil {
				return err
			}
			dir, err := g.localCacheDir(w)
			if err != nil {
				return err
			}
			g.warnForeignCache(dir)
			if len(w.ws.Targets) == 0 {
				fmt.Fprintln(g.stdout, "configuration ok: 0 targets (no BUILD.hcl declares one yet; build //... builds nothing)")
				return nil
			}
			fmt.Fprintf(g.stdout, "configuration ok: %d targets\n", len(w.ws.Targets))
			return nil
		},
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cogumi's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(g.stdout, "cogumi %s\n", cogumiVersion())
		},
	}
}

// cogumiVersion is this binary's version: the module version and, when Go
// recorded them, the commit it was built from ("+dirty" for uncommitted
// edits). Releases record it (and have it in their keys).
func cogumiVersion() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				v += " " + s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				v += "+dirty"
			}
		}
	}
	return v
}

func sortedStrings(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}
