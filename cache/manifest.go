package cache

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"lukechampine.com/blake3"
)

// Limits applied to anything read from a cache entry.
const (
	// MaxBlobSize bounds the size a manifest may claim for one file (1 PiB).
	MaxBlobSize = 1 << 50
	// maxPathLen bounds a manifest path in bytes (Linux's PATH_MAX).
	maxPathLen = 4096
	// maxNameLen bounds one path component in bytes (Linux's NAME_MAX).
	maxNameLen = 255
)

// FileEntry is one file of an artifact.
type FileEntry struct {
	// Path is relative to the artifact's root, with '/' separators, clean.
	Path   string `json:"path"`
	Digest Digest `json:"digest"`
	Size   int64  `json:"size"`
	// Executable is part of the artifact's identity (see TreeDigest).
	Executable bool `json:"executable,omitempty"`
}

// Manifest is an artifact: a tree of files, sorted by Path, paths unique.
// Directories are implied by the paths; an empty directory is not recorded.
type Manifest struct {
	Files []FileEntry `json:"files"`
}

// Validate checks a manifest received from anywhere (a cache entry, a remote)
// before it is used: every path must be clean, relative, '/'-separated valid
// UTF-8 without "." or ".." components, NUL, backslash or control characters;
// paths sorted and unique; no file may also be a directory of another; digests
// non-zero; sizes in [0, MaxBlobSize). The first problem is returned.
func (m Manifest) Validate() error {
	files := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if err := validPath(f.Path); err != nil {
			return fmt.Errorf("file %d: %w", i+1, err)
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			if m.Files[i-1].Path == f.Path {
				return fmt.Errorf("file %q: listed twice", f.Path)
			}
			return fmt.Errorf("file %q: not sorted (after %q)", f.Path, m.Files[i-1].Path)
		}
		if f.Digest.IsZero() {
			return fmt.Errorf("file %q: zero digest", f.Path)
		}
		if f.Size < 0 || f.Size >= MaxBlobSize {
			return fmt.Errorf("file %q: impossible size %d", f.Path, f.Size)
		}
		files[f.Path] = true
	}
	for _, f := range m.Files {
		for p := f.Path; ; {
			j := strings.LastIndexByte(p, '/')
			if j < 0 {
				break
			}
			p = p[:j]
			if files[p] {
				return fmt.Errorf("file %q: %q is both a file and a directory", f.Path, p)
			}
		}
	}
	return nil
}

// validPath checks one manifest path (see Manifest.Validate).
func validPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > maxPathLen:
		return fmt.Errorf("path %q: longer than %d bytes", truncate(p, 80), maxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q: not valid UTF-8", p)
	case p[0] == '/':
		return fmt.Errorf("path %q: absolute", p)
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("path %q: contains character %q", p, c)
		}
	}
	for _, name := range strings.Split(p, "/") {
		switch {
		case name == "":
			return fmt.Errorf("path %q: empty component", p)
		case name == "." || name == "..":
			return fmt.Errorf("path %q: contains %q", p, name)
		case len(name) > maxNameLen:
			return fmt.Errorf("path %q: component longer than %d bytes", truncate(p, 80), maxNameLen)
		}
	}
	return nil
}

// TotalSize returns the sum of the files' sizes.
func (m Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// TreeDigest returns the canonical digest of the whole tree: every file's
// path, content digest, size and executable bit, in order. Two artifacts have
// the same TreeDigest exactly when they are the same tree, so dependents put
// it in their action keys (this is what makes early cutoff work). It is
// computed over an encoding that starts with its own context, so it never
// equals the digest of a file or an ActionKey by construction. m should be valid.
func (m Manifest) TreeDigest() Digest {
	n := len(treeDigestContext) + 1 + binary.MaxVarintLen64
	for _, f := range m.Files {
		n += 2*binary.MaxVarintLen64 + len(f.Path) + len(f.Digest) + 1
	}
	buf := make([]byte, 0, n)
	buf = append(append(buf, treeDigestContext...), 0)
	buf = binary.AppendUvarint(buf, uint64(len(m.Files)))
	for _, f := range m.Files {
		buf = binary.AppendUvarint(buf, uint64(len(f.Path)))
		buf = append(buf, f.Path...)
		buf = append(buf, f.Digest[:]...)
		buf = binary.AppendUvarint(buf, uint64(f.Size))
		exec := byte(0)
		if f.Executable {
			exec = 1
		}
		buf = append(buf, exec)
	}
	return Digest(blake3.Sum256(buf))
}

// Lookup returns the entry for path p, using binary search (m must be sorted).
func (m Manifest) Lookup(p string) (FileEntry, bool) {
	lo, hi := 0, len(m.Files)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.Files[mid].Path < p {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(m.Files) && m.Files[lo].Path == p {
		return m.Files[lo], true
	}
	return FileEntry{}, false
}
