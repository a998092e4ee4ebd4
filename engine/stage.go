package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// copyLimit is the size up to which an input is staged as a copy of its
// own, which nothing the action does can make reach the original. Larger
// inputs are staged as symlinks to the original (a CAS blob or a source
// file) and protected otherwise: read-only bind mounts in the action's own
// mount namespace where the system allows one, and in every case a check
// after the action that the original did not change (see verifyInputs).
// Copying a small file costs less than a mount; copying a checkpoint would
// cost seconds and its size again on disk (this is no reflink filesystem).
const copyLimit = 1 << 20

// staged is the scratch directory's view of an action's inputs.
type staged struct {
	ws   string            // the scratch directory's workspace
	srcs []string          // $SRCS
	dirs map[string]string // the staged path of each label-valued attribute
	// links are the inputs staged as symlinks, whose originals the action
	// could otherwise reach.
	links []stagedLink
	// sources are the workspace files the key read, to be checked again
	// after the action: a source edited while it ran makes its result a lie.
	sources []stagedSource
	copyAll bool
}

// stagedLink is a large input staged as a symlink to its original.
type stagedLink struct {
	origin string // absolute path of the CAS blob or source file
	digest cache.Digest
	size   int64
	blob   bool // origin is a CAS blob (else a source file)
}

// stagedSource is a source file the action's key was computed from.
type stagedSource struct {
	path   string // workspace-relative, for messages
	abs    string
	digest cache.Digest
}

// stage lays the inputs out in ws like the workspace: source files at their
// workspace paths, a target's artifact under pkg/name/; small files as
// copies, large ones as symlinks to their originals. Every CAS blob is
// checked against its digest before it is staged (through the stat cache:
// re-hashed only when stat says it may have changed).
//
// copyAll stages every file as a copy: for a cluster whose nodes see the
// scratch directory (shared_dir) but not this machine's cache or workspace.
func (e *Engine) stage(ctx context.Context, ws string, inputs []inputDigest, artOf func(int) *artifact, copyAll bool) (*staged, error) {
	st := &staged{ws: ws, dirs: make(map[string]string), copyAll: copyAll}
	// The files each dependency must provide, across every label naming it.
	need := make(map[label.Label]map[string]cache.FileEntry)
	var depOrder []label.Label
	for _, in := range inputs {
		if in.in.IsFile() {
			abs := filepath.Join(e.cfg.Root, filepath.FromSlash(in.in.File))
			if err := st.stageSource(filepath.Join(ws, filepath.FromSlash(in.in.File)), in.in.File, abs, in.digest); err != nil {
				return nil, err
			}
			st.srcs = append(st.srcs, in.in.File)
			continue
		}
		dep := in.in.Label.Target()
		m, err := artOf(e.index[dep]).sub(in.in.Label)
		if err != nil {
			return nil, err
		}
		if need[dep] == nil {
			need[dep] = make(map[string]cache.FileEntry)
			depOrder = append(depOrder, dep)
		}
		base := filepath.ToSlash(artifactDir(dep))
		for _, f := range m.Files {
			if strings.ContainsAny(f.Path, " \t\n") {
				return nil, fmt.Errorf("%s: file %q of %s has white space in its path, which $SRCS cannot hold", in.in.Pos, f.Path, dep)
			}
			need[dep][f.Path] = f
			st.srcs = append(st.srcs, base+"/"+f.Path)
		}
		name := in.in.Attr
		if in.in.Key != "" {
			name += "." + in.in.Key
		}
		if _, ok := st.dirs[name]; !ok {
			st.dirs[name] = filepath.Join(ws, artifactDir(dep), filepath.FromSlash(in.in.Label.Sub))
		}
	}
	for _, dep := range depOrder {
		if err := e.stageArtifact(ctx, st, ws, dep, need[dep], artOf(e.index[dep])); err != nil {
			return nil, &lostInputError{dep: dep, err: err}
		}
	}
	return st, nil
}

// stageArtifact lays out the files of dep that an action needs: blobs
// fetched from the remote cache first when they live only there, and
// checked; the files of a source group from where they lie.
func (e *Engine) stageArtifact(ctx context.Context, st *staged, ws string, dep label.Label, files map[string]cache.FileEntry, art *artifact) error {
	dir := filepath.Join(ws, artifactDir(dep))
	paths := make([]string, 0, len(files))
	var m cache.Manifest
	for p, f := range files {
		paths = append(paths, p)
		if _, ok := art.sources[p]; !ok {
			m.Files = append(m.Files, f)
		}
	}
	sort.Strings(paths)
	if err := e.fetch(ctx, m); err != nil {
		return err
	}
	for _, p := range paths {
		f := files[p]
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if src, ok := art.sources[p]; ok {
			rel, _ := filepath.Rel(e.cfg.Root, src)
			if err := st.stageSource(dst, filepath.ToSlash(rel), src, f.Digest); err != nil {
				return err
			}
			continue
		}
		blob, err := e.checkedBlob(f)
		if err != nil {
			return err
		}
		if err := st.stageFile(dst, blob, f.Digest, f.Size, f.Executable, true); err != nil {
			return fmt.Errorf("staging %s: %w", f.Path, err)
		}
	}
	return nil
}

// stageSource stages the source file abs (workspace path rel, whose key
// digest is d) at dst, and remembers to check it after the action.
func (st *staged) stageSource(dst, rel, abs string, d cache.Digest) error {
	info, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("source %s: %w", rel, err)
	}
	st.sources = append(st.sources, stagedSource{path: rel, abs: abs, digest: d})
	if err := st.stageFile(dst, abs, d, info.Size(), info.Mode()&0o111 != 0, false); err != nil {
		return fmt.Errorf("staging source %s: %w", rel, err)
	}
	return nil
}

// stageFile puts the input whose original is at origin at dst: a read-only
// copy when it is small, else a symlink recorded in st.links.
func (st *staged) stageFile(dst, origin string, d cache.Digest, size int64, exec, blob bool) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := fs.FileMode(0o444)
	if exec {
		mode = 0o555
	}
	if size <= copyLimit || st.copyAll {
		return cache.CloneFile(origin, dst, mode)
	}
	st.links = append(st.links, stagedLink{origin: origin, digest: d, size: size, blob: blob})
	return os.Symlink(origin, dst)
}

// checkedBlob returns the path of f's blob in the local cache after
// checking that it holds f's content (cache.CheckBlob through the stat
// cache: re-hashed only when stat says it may have changed since it was
// last seen intact). A blob that fails is removed from the cache.
func (e *Engine) checkedBlob(f cache.FileEntry) (string, error) {
	if err := e.cfg.Cache.CheckBlob(f, e.stat.Digest); err != nil {
		return "", fmt.Errorf("file %s: %w", f.Path, err)
	}
	return e.cfg.Cache.BlobPath(f.Digest), nil
}

// checkBlobs checks every blob of m (checkedBlob) and returns the first
// failure.
func (e *Engine) checkBlobs(m cache.Manifest) error {
	for _, f := range m.Files {
		if _, err := e.checkedBlob(f); err != nil {
			return err
		}
	}
	return nil
}

// lostInputError is an input artifact whose files cannot be had: gone from
// the local cache, corrupt, or only in an unreachable remote cache. Its
// producer can be run again (see Engine.rewind).
type lostInputError struct {
	dep label.Label
	err error
}

func (e *lostInputError) Error() string { return fmt.Sprintf("%s: %v", e.dep, e.err) }
func (e *lostInputError) Unwrap() error { return e.err }

// readOnly returns the originals that the action reaches through symlinks:
// what startProtected makes read-only in its mount namespace.
func (st *staged) readOnly() []string {
	paths := make([]string, len(st.links))
	for i, l := range st.links {
		paths[i] = l.origin
	}
	return paths
}

// verifyInputs checks, once the action has ended, that it changed none of
// its inputs and that no source changed while it ran: the result would be
// stored under a key that does not describe what it was made from. A blob
// the action changed is removed from the cache (what was built from it is
// then rebuilt); a blob whose mode it changed gets its mode back. The stat
// cache makes this cheap: a file is re-hashed only when stat says it may
// have changed.
func (e *Engine) verifyInputs(l label.Label, st *staged) error {
	var errs []error
	for _, in := range st.links {
		if !in.blob {
			continue // sources are checked below
		}
		// CheckBlob puts the cache's mode back and removes a blob whose
		// content changed, as it does before a blob is linked or staged.
		if e.cfg.Cache.CheckBlob(cache.FileEntry{Digest: in.digest, Size: in.size}, e.stat.Digest) == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("%s changed its input %s (blob %s): the result is not stored and the blob was removed from the cache", l, in.origin, in.digest.Short()))
	}
	for _, src := range st.sources {
		got, _, err := e.stat.Digest(src.abs)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("source %s changed while %s ran (%v): the result is not stored; build again", src.path, l, err))
		case got != src.digest:
			errs = append(errs, fmt.Errorf("source %s changed while %s ran: the result is not stored; build again to use its new content", src.path, l))
		}
	}
	return errors.Join(errs...)
}
