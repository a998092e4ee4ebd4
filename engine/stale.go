package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cogumi/cogumi/cache"
)

// A process killed while it links outputs (cache.Materialize) leaves the
// tree it was building, or the one it swapped out, beside the target's
// directory under cogumi-out. So that finding them costs nothing when no
// build was killed, each build and pull marks the workspace's state
// directory while it runs (running/<pid>); one that finds the mark of a
// process that no longer exists sweeps the package directories of
// cogumi-out (cache.RemoveStaleTrees), then removes that mark.

// markLinking marks that this process may link outputs, first sweeping
// what dead ones left if one of them was killed. The returned function
// removes the mark. All of it is best effort: the leftovers only cost space.
func (e *Engine) markLinking() (unmark func()) {
	dir := filepath.Join(e.state.dir, "running")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return func() {}
	}
	mark := filepath.Join(dir, strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		return func() {}
	}
	var dead []string
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			dead = append(dead, filepath.Join(dir, de.Name()))
		}
	}
	if len(dead) > 0 {
		swept := make(map[string]bool)
		for _, nd := range e.nodes {
			pkg := filepath.Dir(filepath.Join(e.outDir, artifactDir(nd.t.Label)))
			if !swept[pkg] {
				swept[pkg] = true
				cache.RemoveStaleTrees(pkg)
			}
		}
		for _, m := range dead {
			_ = os.Remove(m)
		}
	}
	return func() { _ = os.Remove(mark) }
}
