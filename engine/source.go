package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogumi/cogumi/rules"
)

// sourceArtifactOf builds the artifact of a source target: the files it
// lists, or every file under its directory, hashed where they lie. A rule
// that checks its sources does so only when their digests change.
func (e *Engine) sourceArtifactOf(ctx context.Context, nd *node, inputs []inputDigest, artOf func(int) *artifact) (*artifact, error) {
	ds, ok := nd.rule.(rules.DirSource)
	if !ok {
		return e.sourceGroup(nd.t, inputs, artOf)
	}
	rel, attr := ds.SourceDir(nd.t)
	dir := filepath.Join(e.cfg.Root, filepath.FromSlash(nd.t.Label.Pkg), filepath.FromSlash(rel))
	files, err := e.dirFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", nd.t.AttrPos[attr], attr, err)
	}
	art, err := sourceArtifact(files)
	if err != nil {
		return nil, err
	}
	if sc, ok := nd.rule.(rules.SourceChecker); ok && !e.state.checked(art.tree) {
		if err := sc.CheckSource(ctx, nd.t, dir); err != nil {
			return nil, err
		}
		e.state.markChecked(art.tree)
	}
	return art, nil
}

// dirFiles lists and hashes every regular file under dir, following
// symbolic links (Hugging Face snapshot directories link into a blob store).
func (e *Engine) dirFiles(dir string) ([]sourceFile, error) {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return nil, fmt.Errorf("directory %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var files []sourceFile
	var walk func(abs, rel string, depth int) error
	walk = func(abs, rel string, depth int) error {
		if depth > 32 {
			return fmt.Errorf("%s: directories nested too deep (a symbolic link loop?)", abs)
		}
		des, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		for _, de := range des {
			p := filepath.Join(abs, de.Name())
			r := de.Name()
			if rel != "" {
				r = rel + "/" + de.Name()
			}
			fi, err := os.Stat(p) // follows links
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			switch {
			case fi.IsDir():
				if err := walk(p, r, depth+1); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				if strings.ContainsAny(r, " \t\n") {
					return fmt.Errorf("%s: white space in a path inside the artifact", p)
				}
				d, size, err := e.stat.Digest(p)
				if err != nil {
					return err
				}
				files = append(files, sourceFile{rel: r, abs: p, digest: d, size: size, exec: fi.Mode()&0o111 != 0})
			}
		}
		return nil
	}
	if err := walk(dir, "", 0); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s holds no files", dir)
	}
	return files, nil
}
