package engine

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// artifact is a target's output once known: a manifest of files stored in
// the CAS, or, for a source group, of files hashed where they lie.
type artifact struct {
	files cache.Manifest
	tree  cache.Digest
	// sources maps each path of a source group's artifact to the absolute
	// path of the source file; paths it lacks are held in the CAS.
	sources map[string]string
	// key is the action key that produced it; zero for a source group.
	key cache.ActionKey
}

func newArtifact(m cache.Manifest, sources map[string]string) *artifact {
	return &artifact{files: m, tree: m.TreeDigest(), sources: sources}
}

// producedBy returns a with the action key that produced it.
func (a *artifact) producedBy(key cache.ActionKey) *artifact {
	a.key = key
	return a
}

// sub returns the part of the artifact that a label's Sub path names: the
// file itself, or every file below the directory. Paths stay relative to
// the artifact's root.
func (a *artifact) sub(l label.Label) (cache.Manifest, error) {
	if l.Sub == "" {
		return a.files, nil
	}
	var out cache.Manifest
	prefix := l.Sub + "/"
	for _, f := range a.files.Files {
		if f.Path == l.Sub || strings.HasPrefix(f.Path, prefix) {
			out.Files = append(out.Files, f)
		}
	}
	if len(out.Files) == 0 {
		return out, fmt.Errorf("%s: the artifact of %s has no file or directory %q (it has %s)",
			l, l.Target(), l.Sub, listPaths(a.files, 5))
	}
	return out, nil
}

// listPaths names a few paths of a manifest, for messages.
func listPaths(m cache.Manifest, max int) string {
	if len(m.Files) == 0 {
		return "no files"
	}
	var names []string
	for i, f := range m.Files {
		if i == max {
			names = append(names, fmt.Sprintf("and %d more", len(m.Files)-max))
			break
		}
		names = append(names, f.Path)
	}
	return strings.Join(names, ", ")
}

// sourceGroup builds the artifact of a source group from digests of its
// files, each at its path relative to the group's package.
type sourceFile struct {
	rel    string // path inside the artifact
	abs    string
	digest cache.Digest
	size   int64
	exec   bool
}

func sourceArtifact(files []sourceFile) (*artifact, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	var m cache.Manifest
	src := make(map[string]string, len(files))
	for i, f := range files {
		if i > 0 && files[i-1].rel == f.rel {
			continue
		}
		m.Files = append(m.Files, cache.FileEntry{Path: f.rel, Digest: f.digest, Size: f.size, Executable: f.exec})
		if f.abs != "" {
			src[f.rel] = f.abs
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return newArtifact(m, src), nil
}

// artifactDir is where a target's artifact sits in a scratch directory and
// under cogumi-out: <package>/<name>.
func artifactDir(l label.Label) string {
	return filepath.Join(filepath.FromSlash(l.Pkg), l.Name)
}
