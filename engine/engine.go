// Package engine turns targets into actions: it orders the target graph,
// computes action keys, consults the cache, runs what is stale within the
// machine's budget, and stores what it produced.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/dag"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/gpu"
	"github.com/cogumi/cogumi/rules"
)

// Config is what an Engine works on.
type Config struct {
	Root    string // absolute workspace root
	Targets []*target.Target
	Rules   *rules.Registry
	Cache   *cache.Local

	Jobs   int     // concurrent actions; 0 = number of CPUs
	CPUs   float64 // budget for declared cpus; 0 = number of CPUs
	Memory int64   // budget for declared memory in bytes; 0 = physical memory
	// GPUs are the devices local actions may use (gpu.Detect, restricted
	// by COGUMI_GPUS); each GPU action gets its own.
	GPUs []gpu.Device
	// Executors run the actions of targets that name them (executor =
	// "cluster"); targets naming none run here.
	Executors map[string]Executor

	// Toolchains maps toolchain names to commands ("python": "python3").
	Toolchains map[string]string
	// ToolchainVersion returns the version of a toolchain for action keys;
	// it is called only for rules that use the toolchain.
	ToolchainVersion func(ctx context.Context, name string) (string, error)
	// PythonBackend returns the torch runtime backend python actions use
	// ("transformers", "builtin", or "auto" where the interpreter is not
	// probed here), the one ToolchainVersion's python record names; nil
	// leaves the choice to the runtime.
	PythonBackend func(ctx context.Context) (string, error)
	// PythonPath is the directory of cogumi's Python modules, staged for
	// python actions; PythonPathDigest, its content's digest, joins their keys.
	PythonPath       string
	PythonPathDigest string

	// Remote is the team's shared cache, consulted after the local one;
	// nil for none. Upload sends what this build runs to it.
	Remote       RemoteCache
	RemoteUpload bool
	// DownloadAll fetches every artifact of the build from the remote
	// cache, not only those of the requested targets.
	DownloadAll bool

	KeepGoing  bool
	KeepFailed bool // keep the scratch directory of failed actions
	// NoMountNamespace stages large inputs without read-only bind mounts,
	// relying on the check after the action alone (what happens anyway
	// where the system allows no mount namespace).
	NoMountNamespace bool
	Rebuild          map[label.Label]bool // run these even when cached
	Observer         Observer
	// CogumiVersion is the version of this cogumi, written by rules with
	// Traits.Provenance (and then in their keys).
	CogumiVersion string
}

// Engine builds targets of one workspace. Close it to save what it learnt.
type Engine struct {
	cfg    Config
	index  map[label.Label]int
	nodes  []*node
	graph  *dag.Graph
	rdeps  *dag.Graph
	order  []int
	stat   *cache.StatCache
	state  *state
	outDir string
	env    []string
	obs    Observer
	remote *remoteTier // nil without a remote cache
	gpus   *gpu.Allocator
	commitState
}

type node struct {
	t    *target.Target
	rule rules.Rule
	// schema is rule.Schema(), computed once per kind: a rule derives it
	// from its declarations, which costs too much for every target of a
	// no-op build.
	schema rules.Schema
}

// New indexes the targets and opens the workspace's state.
func New(cfg Config) (*Engine, error) {
	if cfg.Jobs <= 0 {
		cfg.Jobs = runtime.NumCPU()
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = float64(runtime.NumCPU())
	}
	if cfg.Memory <= 0 {
		cfg.Memory = physicalMemory()
	}
	e := &Engine{
		cfg:    cfg,
		index:  make(map[label.Label]int, len(cfg.Targets)),
		nodes:  make([]*node, len(cfg.Targets)),
		graph:  dag.New(len(cfg.Targets)),
		outDir: filepath.Join(cfg.Root, "cogumi-out"),
		env:    hostEnv(),
		obs:    cfg.Observer,
	}
	if e.obs == nil {
		e.obs = nopObserver{}
	}
	e.gpus = gpu.NewAllocator(cfg.GPUs)
	if cfg.Remote != nil {
		e.remote = &remoteTier{r: cfg.Remote, upload: cfg.RemoteUpload, local: cfg.Cache, obs: e.obs}
	}
	schemas := make(map[string]rules.Schema)
	for i, t := range cfg.Targets {
		rule, ok := cfg.Rules.Lookup(t.Kind)
		if !ok {
			return nil, fmt.Errorf("%s: unknown rule kind %q", t.Label, t.Kind)
		}
		schema, ok := schemas[t.Kind]
		if !ok {
			schema = rule.Schema()
			schemas[t.Kind] = schema
		}
		e.index[t.Label] = i
		e.nodes[i] = &node{t: t, rule: rule, schema: schema}
	}
	for i, t := range cfg.Targets {
		for _, d := range t.Deps() {
			j, ok := e.index[d]
			if !ok {
				return nil, fmt.Errorf("%s: depends on %s, which does not exist", t.Label, d)
			}
			e.graph.AddEdge(i, j)
		}
	}
	order, cycle := e.graph.Order()
	if cycle != nil {
		return nil, fmt.Errorf("dependency cycle: %s", e.pathString(cycle))
	}
	e.order = order
	e.rdeps = e.graph.Reverse()
	sd := stateDir(cfg.Cache, cfg.Root)
	st, err := loadState(sd)
	if err != nil {
		return nil, err
	}
	e.state = st
	if e.stat, err = cache.OpenStatCache(filepath.Join(sd, "srcstat")); err != nil {
		return nil, err
	}
	removeStaleScratch(e.scratchRoot())
	return e, nil
}

// Close saves the source digests and the workspace state.
func (e *Engine) Close() error {
	return errors.Join(e.stat.Save(), e.state.save())
}

func (e *Engine) pathString(cycle []int) string {
	parts := make([]string, len(cycle))
	for i, n := range cycle {
		parts[i] = e.nodes[n].t.Label.String()
	}
	return strings.Join(parts, " -> ")
}

// Select resolves patterns to target labels, sorted; a pattern that
// matches nothing is an error.
func (e *Engine) Select(patterns []label.Pattern) ([]label.Label, error) {
	seen := make(map[label.Label]bool)
	var out []label.Label
	for _, p := range patterns {
		n := 0
		for _, t := range e.cfg.Targets {
			if p.Matches(t.Label) {
				n++
				if !seen[t.Label] {
					seen[t.Label] = true
					out = append(out, t.Label)
				}
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("%s matches no target", p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// closure returns the nodes needed to build roots, dependencies first.
func (e *Engine) closure(roots []label.Label) ([]int, error) {
	ids := make([]int, 0, len(roots))
	for _, l := range roots {
		i, ok := e.index[l.Target()]
		if !ok {
			return nil, fmt.Errorf("no target %s", l)
		}
		ids = append(ids, i)
	}
	in := e.graph.Reachable(ids)
	var out []int
	for _, n := range e.order {
		if in[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// hostEnv is the part of the host environment every action sees.
func hostEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (e *Engine) scratchRoot() string { return filepath.Join(e.cfg.Cache.Dir(), "scratch") }

// removeStaleScratch deletes scratch directories whose process is gone (a
// crashed or killed build); those of running builds are left alone.
func removeStaleScratch(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, de := range entries {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(de.Name(), "pid"), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = cache.RemoveTree(filepath.Join(root, de.Name()))
		}
	}
}

// physicalMemory is the machine's memory in bytes.
func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 1 << 62
	}
	return int64(si.Totalram) * int64(si.Unit)
}
