// Package release is the format of a release: the directory of files to
// ship that the release rule makes, its manifest.json (every file's
// digests, where it came from, the gates and metrics it passed), and the
// checks run on it before it is approved, published or fetched. It knows
// nothing of builds: the rule fills a Manifest, the commands read one.
package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"lukechampine.com/blake3"

	"github.com/cogumi/cogumi/data/metrics"
)

// ManifestName and CardName are the files every release holds beside
// what it ships.
const (
	ManifestName = "manifest.json"
	CardName     = "README.md"
)

// FormatVersion is the version of manifest.json's format.
const FormatVersion = 1

// Manifest is manifest.json. Its bytes are deterministic: a function of
// the release's inputs and attributes and of the provenance in its key
// (see engine/provenance.go). The release's digest, which approvals name,
// is the BLAKE3 of these bytes; since they list the digest of every other
// file (the model card too), it names the whole release.
type Manifest struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// Cogumi is the version of the cogumi that made the release.
	Cogumi string `json:"cogumi"`
	// Commit is the workspace's git commit (HEAD), absent outside git.
	Commit    string    `json:"commit,omitempty"`
	Files     []File    `json:"files"`
	ModelCard File      `json:"model_card"`
	Gates     []Gate    `json:"gates"`
	Metrics   []Metrics `json:"metrics"`
	Card      CardInfo  `json:"card"`
}

// CardInfo is what the model card says beyond the manifest: its front
// matter (license, base_model, tags) and its prose.
type CardInfo struct {
	License     string   `json:"license"`
	BaseModel   string   `json:"base_model,omitempty"`
	Tags        []string `json:"tags"`
	Description string   `json:"description,omitempty"`
}

// File is one file of the release.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the release's root
	Size   int64  `json:"size"`
	BLAKE3 string `json:"blake3"`
	SHA256 string `json:"sha256"`
	// Label is the input it came from, as resolved; ActionKey the key of
	// the action that produced that input ("" for source files).
	Label     string `json:"label,omitempty"`
	ActionKey string `json:"action_key,omitempty"`
}

// Gate is a quality gate the release depends on: it was met, or the
// release would not exist (the build stops at a failed gate).
type Gate struct {
	Label     string          `json:"label"`
	ActionKey string          `json:"action_key,omitempty"`
	Metrics   string          `json:"metrics"`
	Baseline  string          `json:"baseline,omitempty"`
	Checks    []metrics.Check `json:"checks"`
}

// Metrics is one evaluation shown by the release.
type Metrics struct {
	Label     string       `json:"label"`
	ActionKey string       `json:"action_key,omitempty"`
	File      metrics.File `json:"file"`
}

// Encode returns m's canonical bytes: indented JSON, "<" and ">" as written.
func (m *Manifest) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Parse reads manifest.json and checks that it is one this cogumi can
// trust: a known version, and file paths that stay inside the release.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if m.Version != FormatVersion {
		return nil, fmt.Errorf("%s: format version %d; this cogumi reads version %d", ManifestName, m.Version, FormatVersion)
	}
	seen := map[string]bool{ManifestName: true}
	for _, f := range append(append([]File(nil), m.Files...), m.ModelCard) {
		if err := CheckPath(f.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", ManifestName, err)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("%s: %s is listed twice", ManifestName, f.Path)
		}
		seen[f.Path] = true
		if len(f.BLAKE3) != 64 || len(f.SHA256) != 64 || f.Size < 0 {
			return nil, fmt.Errorf("%s: %s: bad digest or size", ManifestName, f.Path)
		}
	}
	return &m, nil
}

// AllFiles returns the files the manifest lists: the shipped ones, then
// the model card.
func (m *Manifest) AllFiles() []File { return append(append([]File(nil), m.Files...), m.ModelCard) }

// Digest is the BLAKE3 of manifest bytes, in hex: the release's identity.
func Digest(manifest []byte) string {
	h := blake3.Sum256(manifest)
	return hex.EncodeToString(h[:])
}

// CheckPath accepts a clean, relative, slash-separated path that stays
// inside the release and is not manifest.json.
func CheckPath(p string) error {
	switch {
	case p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\"):
		return fmt.Errorf("path %q: want a relative path with / between names", p)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q: not a clean path inside the release", p)
	case p == ManifestName:
		return fmt.Errorf("path %q: the release's own manifest", p)
	}
	return nil
}

// HashFile returns the size, BLAKE3 and SHA-256 of a file, read once.
func HashFile(p string) (int64, string, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", "", err
	}
	defer f.Close()
	return HashReader(f)
}

// HashReader returns the size, BLAKE3 and SHA-256 of what r holds.
func HashReader(r io.Reader) (int64, string, string, error) {
	b3, s2 := blake3.New(32, nil), sha256.New()
	n, err := io.Copy(io.MultiWriter(b3, s2), r)
	if err != nil {
		return 0, "", "", err
	}
	return n, hex.EncodeToString(b3.Sum(nil)), hex.EncodeToString(s2.Sum(nil)), nil
}

// ErrMismatch is returned by Verify when a file is not what the manifest says.
var ErrMismatch = errors.New("does not match the release's manifest")

// Verify checks every file the manifest lists under dir: present, of its
// size and digests. It returns the first difference, wrapping ErrMismatch.
func Verify(dir string, m *Manifest) error {
	for _, f := range m.AllFiles() {
		size, b3, s2, err := HashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if size != f.Size || b3 != f.BLAKE3 || s2 != f.SHA256 {
			return fmt.Errorf("%s (%d bytes, sha256 %s) %w (%d bytes, sha256 %s)", f.Path, size, short(s2), ErrMismatch, f.Size, short(f.SHA256))
		}
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
