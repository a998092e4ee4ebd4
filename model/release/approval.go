package release

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cogumi/cogumi/internal/atomicfile"
)

// An Approval records that a person approved one release, named by its
// digest (the BLAKE3 of its manifest.json). It is a record of a decision,
// not access control: anyone who can write the workspace's state can write
// one. It binds to the digest, so any change to what the release holds
// (a file, a metric, the commit, the cogumi version) needs a new approval.
type Approval struct {
	Version int       `json:"version"`
	Target  string    `json:"target"` // the release's label
	Digest  string    `json:"digest"` // BLAKE3 of manifest.json, hex
	Name    string    `json:"name"`   // the manifest's name
	By      string    `json:"by"`     // git user.email, else $USER
	Time    time.Time `json:"time"`
	Note    string    `json:"note,omitempty"`
}

// ApprovalsDir is where a workspace keeps its approvals, under its state
// directory. Cache GC removes only blobs and action results, never this.
const ApprovalsDir = "approvals"

// FileName is the name an approval is stored under: unique per approval,
// sorted by time.
func (a Approval) FileName() string {
	return fmt.Sprintf("%s-%s.json", a.Time.UTC().Format("20060102T150405.000000000Z"), a.Digest[:16])
}

// Encode returns the approval's JSON.
func (a Approval) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(a, "", "  ")
	return append(b, '\n'), err
}

// ParseApproval reads one approval and checks it names a digest.
func ParseApproval(b []byte) (Approval, error) {
	var a Approval
	if err := json.Unmarshal(b, &a); err != nil {
		return a, err
	}
	if len(a.Digest) != 64 || strings.Trim(a.Digest, "0123456789abcdef") != "" {
		return a, fmt.Errorf("approval names no release digest")
	}
	return a, nil
}

// SaveApproval writes a into dir (created if needed), atomically.
func SaveApproval(dir string, a Approval) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := a.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, a.FileName()), b, 0o644)
}

// ListApprovals returns the approvals in dir, oldest first; a file that is
// not an approval is reported, not skipped silently.
func ListApprovals(dir string) ([]Approval, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Approval
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		a, err := ParseApproval(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out = append(out, a)
	}
	return out, nil
}
