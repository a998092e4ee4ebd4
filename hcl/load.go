package hcl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/cogumi/cogumi/engine/dag"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/rules"
)

// Options are what the command line adds to the configuration.
type Options struct {
	// Rules are the target kinds; nil means rules.Default().
	Rules *rules.Registry
	// Vars are --var name=value settings. Values are converted to the
	// variable's type: bare for strings, numbers and bools, HCL syntax for
	// lists, maps and objects (--var 'tags=["a","b"]').
	Vars map[string]string
	// Env is the environment (os.Environ()), read for COGUMI_VAR_name,
	// which --var overrides.
	Env []string
	// CacheFile, when set, is where evaluated packages are kept between
	// loads (see loadcache.go), e.g. <root>/cogumi-out/.cogumi/load-cache.
	// A package whose BUILD.hcl, settings and observed files did not change
	// is then not parsed again.
	CacheFile string
}

// Workspace is a loaded, checked configuration.
type Workspace struct {
	Root string // absolute
	// Name is workspace { name = "..." } in cogumi.hcl; without it, the
	// base name of Root.
	Name string
	// CacheDir is cache { dir = "..." } in cogumi.hcl made absolute
	// (relative to Root, ~ for the home directory); "" for the default.
	CacheDir string
	// RemoteCache is the remote_cache block, or nil.
	RemoteCache *RemoteCache
	// Toolchains and Executors are the toolchain and executor blocks, by name.
	Toolchains map[string]Toolchain
	Executors  map[string]Executor
	Targets    []*target.Target    // sorted by label string
	Index      map[label.Label]int // target label -> index in Targets
	Order      []int               // indices of Targets, dependencies first
	// Graph has an edge from each target to each target it depends on
	// (node i is Targets[i]; edges in Target.Deps order).
	Graph *dag.Graph
	// Files are the configuration files (workspace-relative path -> text).
	Files map[string][]byte
	// FromCache counts the packages taken from Options.CacheFile.
	FromCache int
	// CacheWarning says why Options.CacheFile could not be used or
	// written; the workspace is sound either way.
	CacheWarning error
}

// FindRoot returns the nearest directory at or above dir that holds
// cogumi.hcl.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding the workspace root: %w", err)
	}
	for d := abs; ; {
		fi, err := os.Stat(filepath.Join(d, SettingsFile))
		if err == nil && !fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no %s in %s or any directory above it: run cogumi inside a workspace, or create %s at its root", SettingsFile, abs, SettingsFile)
		}
		d = parent
	}
}

// LoadSettings reads only cogumi.hcl of the workspace at root: Name,
// CacheDir, RemoteCache, Toolchains and Executors, no targets. Commands
// that need no target (clean) then work while a BUILD file is broken.
// Problems with cogumi.hcl are Diagnostics, as with Load.
func LoadSettings(root string, opts Options) (*Workspace, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("loading workspace %s: %w", root, err)
	}
	src, err := os.ReadFile(filepath.Join(abs, SettingsFile))
	if err != nil {
		return nil, fmt.Errorf("loading workspace %s: %w", abs, err)
	}
	ws := &Workspace{Root: abs, Name: filepath.Base(abs), Files: map[string][]byte{SettingsFile: src}}
	if diags := loadSettings(ws, src, opts).diags; len(diags) > 0 {
		diags.addSources(ws.Files)
		diags.sort()
		return nil, diags
	}
	return ws, nil
}

// Load reads the workspace at root. When the configuration has problems it
// returns nil and Diagnostics holding all of them; other errors (root
// unreadable) are plain.
func Load(root string, opts Options) (*Workspace, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("loading workspace %s: %w", root, err)
	}
	src, err := os.ReadFile(filepath.Join(abs, SettingsFile))
	if err != nil {
		return nil, fmt.Errorf("loading workspace %s: %w", abs, err)
	}
	if opts.Rules == nil {
		opts.Rules = rules.Default()
	}
	ws := &Workspace{Root: abs, Name: filepath.Base(abs), Files: map[string][]byte{SettingsFile: src}}
	set := loadSettings(ws, src, opts)
	diags := set.diags

	pkgs, walkDiags := findPackages(abs)
	diags = append(diags, walkDiags...)
	sh := &shared{root: abs, pkgs: make(map[string]bool, len(pkgs)), set: set,
		kinds: make(map[string]kindInfo), kindNames: opts.Rules.Kinds(), settings: settingsBlocks()}
	for _, p := range pkgs {
		sh.pkgs[p] = true
	}
	sh.pkgList = pkgs
	var key [32]byte
	if opts.CacheFile != "" && len(set.diags) == 0 {
		if key, err = cacheKey(src, opts); err != nil {
			ws.CacheWarning = err
		} else {
			sh.caching = true
			sh.cache = readCache(opts.CacheFile, key)
		}
	}
	for _, k := range sh.kindNames {
		rule, _ := opts.Rules.Lookup(k)
		schema := rule.Schema()
		info := kindInfo{rule: rule, schema: schema, traits: schema.Traits}
		for _, a := range info.schema.Attrs {
			if !strings.Contains(a.Name, ".") { // set by the loader (OrderOf), not written
				info.attrs = append(info.attrs, a.Name)
			}
		}
		if info.traits.Resources {
			info.attrs = append(info.attrs, "executor")
		}
		sh.kinds[k] = info
	}

	results := loadPackages(sh, pkgs)
	for i := range results {
		r := &results[i]
		if r.src != nil {
			ws.Files[r.file] = r.src
		}
		if r.cached {
			ws.FromCache++
		}
		diags = append(diags, r.diags...)
	}
	diags = append(diags, link(ws, results)...)
	diags = append(diags, checkPaths(ws.Targets)...)
	diags = append(diags, checkExecutors(ws)...)
	if sh.caching && cacheChanged(results, sh.cache) {
		// Also when there are errors: while one package is being fixed,
		// the others need not be parsed again.
		ws.CacheWarning = writeCache(opts.CacheFile, key, results)
	}
	if len(diags) > 0 {
		diags.addSources(ws.Files)
		diags.sort()
		return nil, diags
	}
	return ws, nil
}

// cacheChanged reports whether the cache file should be written again.
func cacheChanged(results []pkgResult, cache map[string][]byte) bool {
	n := 0
	for _, r := range results {
		if r.entry != nil {
			n++
		}
		if !r.cached {
			return true
		}
	}
	return n != len(cache)
}

// loadPackages loads every package, on as many goroutines as there are
// CPUs: parsing and evaluating dominate a large workspace's load time.
func loadPackages(sh *shared, pkgs []string) []pkgResult {
	results := make([]pkgResult, len(pkgs))
	workers := min(runtime.GOMAXPROCS(0), len(pkgs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = loadPackage(sh, pkgs[i])
			}
		}()
	}
	for i := range pkgs {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// skipDir reports whether a directory of this name is never searched for
// packages or globbed into: outputs, VCS data, JavaScript dependencies and
// hidden directories.
func skipDir(name string) bool {
	return name == "cogumi-out" || name == "node_modules" || strings.HasPrefix(name, ".")
}

// findPackages returns the name of every package under root, sorted. It
// does not follow links to directories, so it cannot loop.
func findPackages(root string) ([]string, Diagnostics) {
	var pkgs []string
	var diags Diagnostics
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, relErr := filepath.Rel(root, p)
		if relErr != nil {
			return fmt.Errorf("walking %s: %w", p, relErr)
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			diags = append(diags, Diagnostic{Pos: target.Pos{File: rel}, Msg: "cannot read: " + err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if rel != "." && skipDir(d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() == BuildFile && (d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0) {
			pkg := path.Dir(rel)
			if pkg == "." {
				pkg = ""
			}
			pkgs = append(pkgs, pkg)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.SkipDir) {
		diags = append(diags, Diagnostic{Msg: err.Error()})
	}
	sort.Strings(pkgs)
	return pkgs, diags
}
