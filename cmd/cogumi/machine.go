package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/gpu"
	"github.com/cogumi/cogumi/executor/python"
	"github.com/cogumi/cogumi/executor/remoteexec"
	"github.com/cogumi/cogumi/executor/slurm"
	"github.com/cogumi/cogumi/executor/toolchain"
	"github.com/cogumi/cogumi/hcl"
)

// machine fills in what the engine needs to know about where actions run:
// this machine's GPUs, the executors, the toolchains and cogumi's Python
// modules.
func (g *globals) machine(ctx context.Context, w *workspace, c *cache.Local, cfg *engine.Config) error {
	if needsLocalGPUs(w.ws) {
		devs, err := gpu.Detect(ctx)
		if err != nil {
			fmt.Fprintf(g.stderr, "cogumi: warning: detecting GPUs: %v; going on without them\n", err)
		}
		if devs, err = gpu.Restrict(devs, os.Getenv("COGUMI_GPUS")); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("COGUMI_GPUS: %w", err)}
		}
		cfg.GPUs = devs
	}
	cfg.Executors = make(map[string]engine.Executor)
	for name, ex := range w.ws.Executors {
		if ex.Slurm != nil {
			cfg.Executors[name] = newSlurmExecutor(ex.Slurm, g.slurmTransit(name, ex.Slurm, w, cfg))
		}
	}
	cfg.Toolchains = map[string]string{"python": "python3"}
	for name, tc := range w.ws.Toolchains {
		cmd := tc.Command
		// A path relative to the workspace root (tools/node_modules/.bin/x):
		// actions run elsewhere, in their scratch directories.
		if !filepath.IsAbs(cmd) && strings.Contains(cmd, "/") {
			cmd = filepath.Join(w.ws.Root, cmd)
		}
		cfg.Toolchains[name] = cmd
	}
	tcs := newToolchains(w.ws.Toolchains, cfg.Toolchains, filepath.Join(c.Dir(), "toolchains.json"))
	cfg.ToolchainVersion, cfg.PythonBackend = tcs.Version, tcs.PythonBackend
	digest := cache.DigestBytes(python.Contents()).String()
	dir := filepath.Join(c.Dir(), "python", digest[:16])
	if err := python.Stage(dir); err != nil {
		return err
	}
	cfg.PythonPath = dir
	cfg.PythonPathDigest = digest
	return nil
}

func needsLocalGPUs(ws *hcl.Workspace) bool {
	for _, t := range ws.Targets {
		if t.Resources.GPUs > 0 && (t.Executor == "" || t.Executor == "local") {
			return true
		}
	}
	return false
}

// toolchains probes each toolchain at most once per build (and, through
// the cache file, only when the interpreter or its packages changed); a
// version written in cogumi.hcl is used as is.
type toolchains struct {
	declared  map[string]hcl.Toolchain
	commands  map[string]string
	cacheFile string

	mu     sync.Mutex
	known  map[string]string // name -> key record
	python *toolchain.Version
}

func newToolchains(declared map[string]hcl.Toolchain, commands map[string]string, cacheFile string) *toolchains {
	return &toolchains{declared: declared, commands: commands, cacheFile: cacheFile, known: make(map[string]string)}
}

// Version is the key record of toolchain name.
func (tc *toolchains) Version(ctx context.Context, name string) (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if v, ok := tc.known[name]; ok {
		return v, nil
	}
	v, err := tc.probe(ctx, name)
	if err != nil {
		return "", err
	}
	tc.known[name] = v
	return v, nil
}

func (tc *toolchains) probe(ctx context.Context, name string) (string, error) {
	declared := tc.declared[name]
	if declared.Version != "" {
		if name == "python" && declared.Backend != "" {
			// Probed nowhere (the interpreter is on another machine): the
			// backend asked for is what the key records, and "auto" is
			// resolved where the action runs.
			return declared.Version + "\ntoolchain backend " + strconv.Quote(declared.Backend), nil
		}
		return declared.Version, nil
	}
	switch name {
	case "llama":
		// Rules that may run llama.cpp (eval) use it only for GGUF
		// models: without a declared toolchain, their key says "none"
		// and such an action fails with a message saying what to declare.
		if tc.commands[name] == "" {
			return "none", nil
		}
		v, err := toolchain.FindNodeLlama(tc.commands[name])
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(v.KeyRecord()), nil
	case "python":
		v, err := tc.pythonVersion(ctx)
		if err != nil {
			return "", err
		}
		backend, err := v.Backend(declared.Backend)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(v.KeyRecord(backend)), nil
	}
	return "", fmt.Errorf("toolchain %q has no version to probe; set version = \"...\" in its block", name)
}

func (tc *toolchains) pythonVersion(ctx context.Context) (toolchain.Version, error) {
	if tc.python != nil {
		return *tc.python, nil
	}
	v, err := toolchain.PythonVersion(ctx, tc.commands["python"], tc.cacheFile)
	if err != nil {
		return toolchain.Version{}, err
	}
	tc.python = &v
	return v, nil
}

// PythonBackend is the torch runtime backend python actions use: the one
// their keys record.
func (tc *toolchains) PythonBackend(ctx context.Context) (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	declared := tc.declared["python"]
	if declared.Version != "" {
		if declared.Backend == "" {
			return toolchain.BackendAuto, nil
		}
		return declared.Backend, nil
	}
	v, err := tc.pythonVersion(ctx)
	if err != nil {
		return "", err
	}
	return v.Backend(declared.Backend)
}

// slurmExecutor runs actions as Slurm batch jobs. Their files travel
// through shared_dir (or this machine's file system, on a single node) or,
// with transit, through the remote cache (package remoteexec).
type slurmExecutor struct {
	cfg     slurm.Config
	transit *remoteexec.Transit
	// submit replaces cfg.Submit in tests of the remote cache's path.
	submit func(context.Context, slurm.Job) (*slurm.Result, error)
}

func newSlurmExecutor(s *hcl.SlurmSettings, transit *remoteexec.Transit) *slurmExecutor {
	return &slurmExecutor{cfg: slurm.Config{
		Partition: s.Partition, Account: s.Account, ExtraArgs: s.ExtraArgs,
		Constraints: s.Constraints, SharedDir: s.SharedDir,
	}, transit: transit}
}

func (x *slurmExecutor) ScratchRoot() string {
	if x.cfg.SharedDir == "" {
		return ""
	}
	return filepath.Join(x.cfg.SharedDir, "scratch")
}

func (x *slurmExecutor) Exec(ctx context.Context, t *target.Target, dir string, argv, env []string, log io.Writer) error {
	if x.transit != nil {
		return x.transit.Exec(ctx, t, dir, argv, env, log, x.submitJob)
	}
	jobEnv := make(map[string]string)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "CUDA_VISIBLE_DEVICES" {
			continue // Slurm assigns the devices
		}
		jobEnv[k] = v
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	logDir := filepath.Join(filepath.Dir(dir), "slurm")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	res, err := x.cfg.Submit(ctx, slurm.Job{
		Name: t.Label.String(), Script: "exec " + strings.Join(quoted, " ") + "\n", WorkDir: dir, Env: jobEnv,
		Resources: slurm.Resources(t.Resources), LogPath: filepath.Join(logDir, "job-%j.log"), Log: log,
	})
	if res != nil {
		engine.NoteJob(ctx, res.JobID)
		for _, w := range res.Warnings {
			fmt.Fprintf(log, "cogumi: slurm: %s\n", w)
		}
	}
	return err
}
