package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/hcl"
	"github.com/cogumi/cogumi/rules"
)

// globals are the flags every command shares.
type globals struct {
	stdout, stderr io.Writer

	dir      string
	vars     []string
	cacheDir string
	profile  string
	profFile *os.File
	remote   remoteFlags
	prog     *progress // the build's progress display, once there is one
}

func (g *globals) register(fs *pflag.FlagSet) {
	fs.StringVarP(&g.dir, "dir", "C", "", "run as if cogumi was started in `DIR`")
	fs.StringArrayVar(&g.vars, "var", nil, "set a workspace variable (`NAME=VALUE`); overrides COGUMI_VAR_NAME and the default")
	fs.StringVar(&g.profile, "cpuprofile", "", "write a CPU profile of cogumi itself to `FILE`")
	_ = fs.MarkHidden("cpuprofile")
	g.remote.register(fs)
	fs.StringVar(&g.cacheDir, "cache-dir", "", "local cache `DIR` (default: cache.dir in cogumi.hcl, else $XDG_CACHE_HOME/cogumi)")
}

// workspace is a loaded workspace and where the user stands in it.
type workspace struct {
	ws    *hcl.Workspace
	pkg   string // package of the current directory, for relative labels
	rules *rules.Registry
}

func (g *globals) load() (*workspace, error) {
	root, cwd, err := g.root()
	if err != nil {
		return nil, err
	}
	vars, err := g.varValues()
	if err != nil {
		return nil, err
	}
	reg := rules.Default()
	ws, err := hcl.Load(root, hcl.Options{Rules: reg, Vars: vars, Env: os.Environ(),
		CacheFile: filepath.Join(root, "cogumi-out", ".cogumi", "load-cache")})
	if err != nil {
		return nil, err
	}
	if ws.CacheWarning != nil {
		fmt.Fprintln(g.stderr, "cogumi: warning: configuration cache:", ws.CacheWarning)
	}
	pkg, err := filepath.Rel(root, cwd)
	if err != nil || pkg == "." {
		pkg = ""
	}
	return &workspace{ws: ws, pkg: filepath.ToSlash(pkg), rules: reg}, nil
}

// loadSettings loads only the workspace's cogumi.hcl, for commands that
// need no target and must work while a BUILD file is broken (clean).
func (g *globals) loadSettings() (*workspace, error) {
	root, _, err := g.root()
	if err != nil {
		return nil, err
	}
	vars, err := g.varValues()
	if err != nil {
		return nil, err
	}
	ws, err := hcl.LoadSettings(root, hcl.Options{Vars: vars, Env: os.Environ()})
	if err != nil {
		return nil, err
	}
	return &workspace{ws: ws}, nil
}

// root returns the workspace root and the (absolute) directory cogumi runs in.
func (g *globals) root() (root, cwd string, err error) {
	cwd = g.dir
	if cwd == "" {
		if cwd, err = os.Getwd(); err != nil {
			return "", "", err
		}
	}
	if cwd, err = filepath.Abs(cwd); err != nil {
		return "", "", err
	}
	if root, err = hcl.FindRoot(cwd); err != nil {
		return "", "", &exitError{code: exitConfig, err: err}
	}
	return root, cwd, nil
}

// varValues parses the --var flags.
func (g *globals) varValues() (map[string]string, error) {
	vars := make(map[string]string, len(g.vars))
	for _, v := range g.vars {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, &exitError{code: exitConfig, err: fmt.Errorf("--var %q: write NAME=VALUE", v)}
		}
		vars[name] = value
	}
	return vars, nil
}

// localCacheDir returns the local cache's directory: --cache-dir, else
// COGUMI_CACHE_DIR, else the workspace's setting (w may be nil), else the
// default under $XDG_CACHE_HOME. A directory cogumi must not use (see
// hcl.CheckCacheDir) is a configuration error; the workspace's setting was
// checked when it was loaded.
func (g *globals) localCacheDir(w *workspace) (string, error) {
	dir, from := g.cacheDir, "--cache-dir"
	if dir == "" {
		dir, from = os.Getenv("COGUMI_CACHE_DIR"), "COGUMI_CACHE_DIR"
	}
	if dir == "" && w != nil && w.ws.CacheDir != "" {
		return w.ws.CacheDir, nil
	}
	if dir == "" {
		return cache.DefaultDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	root := ""
	if w != nil {
		root = w.ws.Root
	}
	if err := hcl.CheckCacheDir(root, abs); err != nil {
		return "", &exitError{code: exitConfig, err: fmt.Errorf("%s: %w", from, err)}
	}
	return abs, nil
}

// openCache opens the local cache (see localCacheDir), warning first when
// its directory holds files cogumi did not make.
func (g *globals) openCache(w *workspace) (*cache.Local, error) {
	dir, err := g.localCacheDir(w)
	if err != nil {
		return nil, err
	}
	g.warnForeignCache(dir)
	return cache.OpenLocal(dir)
}

// warnForeignCache warns when the cache directory exists and holds files
// cogumi did not make: cogumi would keep its cache among them, and clean
// --cache refuses to delete such a directory.
func (g *globals) warnForeignCache(dir string) {
	var nc *cache.NotCacheError
	if errors.As(cache.CheckCacheDir(dir), &nc) {
		fmt.Fprintf(g.stderr, "cogumi: warning: %v; cogumi would keep its cache among those files and clean --cache will not delete it: give the cache a directory of its own\n", nc)
	}
}

// engine opens the cache and indexes the workspace's targets.
func (g *globals) engine(ctx context.Context, w *workspace, cfg engine.Config) (*engine.Engine, error) {
	c, err := g.openCache(w)
	if err != nil {
		return nil, err
	}
	if err := g.machine(ctx, w, c, &cfg); err != nil {
		return nil, err
	}
	cfg.Root = w.ws.Root
	cfg.Targets = w.ws.Targets
	cfg.NoMountNamespace = os.Getenv("COGUMI_NO_MOUNT_NAMESPACE") != ""
	cfg.Rules = w.rules
	cfg.Cache = c
	cfg.CogumiVersion = cogumiVersion()
	return engine.New(cfg)
}

// patterns parses command-line target patterns relative to the current package.
func (w *workspace) patterns(args []string) ([]label.Pattern, error) {
	if len(args) == 0 {
		return nil, &exitError{code: exitConfig, err: fmt.Errorf("name at least one target (for example //...)")}
	}
	var out []label.Pattern
	for _, a := range args {
		p, err := label.ParsePattern(a, w.pkg)
		if err != nil {
			return nil, &exitError{code: exitConfig, err: err}
		}
		out = append(out, p)
	}
	return out, nil
}

// labels parses patterns and resolves them to targets. A pattern that
// matches no target is an error (a typo, most likely), except that
// recursive patterns (//...) over a workspace with no targets at all
// select nothing: validate calls such a workspace sound, and so does build.
func (w *workspace) labels(e *engine.Engine, args []string) ([]label.Label, error) {
	pats, err := w.patterns(args)
	if err != nil {
		return nil, err
	}
	if len(w.ws.Targets) == 0 && allRecursive(pats) {
		return nil, nil
	}
	ls, err := e.Select(pats)
	if err != nil {
		return nil, &exitError{code: exitConfig, err: err}
	}
	return ls, nil
}

// allRecursive reports whether every pattern is recursive (//pkg/...).
func allRecursive(pats []label.Pattern) bool {
	for _, p := range pats {
		if !p.Recursive {
			return false
		}
	}
	return true
}

// startProfile starts --cpuprofile, for finding what slows cogumi down.
func (g *globals) startProfile() error {
	if g.profile == "" {
		return nil
	}
	f, err := os.Create(g.profile)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	g.profFile = f
	return pprof.StartCPUProfile(f)
}

func (g *globals) stopProfile() error {
	if g.profFile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	return g.profFile.Close()
}
