package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/internal/atomicfile"
)

// state is what cogumi remembers about one workspace between builds: the
// last action key of each target (for why and status), whether its outputs
// are linked under cogumi-out, and the log of its last run. It is a hint,
// never an input: losing it costs a re-check, not a wrong artifact.
type state struct {
	dir string

	mu      sync.Mutex // guards targets and changed: actions finish concurrently
	targets map[string]lastBuild
	changed map[string]lastBuild
	// valid holds tree digests of source artifacts a rule has checked.
	valid    map[string]bool
	newValid map[string]bool
}

type lastBuild struct {
	Key cache.ActionKey `json:"key"`
	// Linked is the key whose outputs cogumi-out/<pkg>/<name> holds, if any.
	Linked cache.ActionKey `json:"linked,omitzero"`
}

type stateFile struct {
	Targets map[string]lastBuild `json:"targets"`
	Valid   map[string]bool      `json:"valid_sources,omitempty"`
}

// StateDir is the per-workspace directory inside the cache, where the
// engine keeps state.json and logs, and other commands keep what they
// remember of a workspace (the metrics history).
func StateDir(c *cache.Local, root string) string { return stateDir(c, root) }

func stateDir(c *cache.Local, root string) string {
	return filepath.Join(c.Dir(), "workspaces", cache.DigestBytes([]byte(root)).String()[:16])
}

func loadState(dir string) (*state, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("creating workspace state: %w", err)
	}
	s := &state{dir: dir, changed: make(map[string]lastBuild), newValid: make(map[string]bool)}
	f := readState(filepath.Join(dir, "state.json"))
	s.targets, s.valid = f.Targets, f.Valid
	return s, nil
}

// readStateFile returns the remembered targets; a missing or damaged file
// is an empty memory, not an error.
func readStateFile(path string) map[string]lastBuild { return readState(path).Targets }

func readState(path string) stateFile {
	var f stateFile
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &f) != nil {
		f = stateFile{}
	}
	if f.Targets == nil {
		f.Targets = make(map[string]lastBuild)
	}
	if f.Valid == nil {
		f.Valid = make(map[string]bool)
	}
	return f
}

// checked reports whether a source artifact was already validated.
func (s *state) checked(tree cache.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valid[tree.String()]
}

func (s *state) markChecked(tree cache.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid[tree.String()] = true
	s.newValid[tree.String()] = true
}

func (s *state) get(l label.Label) lastBuild {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targets[l.String()]
}

func (s *state) set(l label.Label, lb lastBuild) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets[l.String()] = lb
	s.changed[l.String()] = lb
}

// save merges this process's changes into the file on disk (another build
// may have written it meanwhile) and replaces it atomically.
func (s *state) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.changed) == 0 && len(s.newValid) == 0 {
		return nil
	}
	path := filepath.Join(s.dir, "state.json")
	merged := readState(path)
	for k, v := range s.changed {
		merged.Targets[k] = v
	}
	for k := range s.newValid {
		merged.Valid[k] = true
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// logPath is where the log of the last run of l is kept.
func (s *state) logPath(l label.Label) string {
	return filepath.Join(s.dir, "logs", filepath.FromSlash(l.Pkg), l.Name+".log")
}

// writeFileAtomic writes b to path, readers seeing the old content or the new.
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b, 0o644) }

// copyFileAtomic copies src to dst atomically; a missing src is not an error.
func copyFileAtomic(src, dst string) error {
	if err := atomicfile.CopyFile(src, dst, 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// readAllLimited reads at most max bytes.
func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, max))
}
