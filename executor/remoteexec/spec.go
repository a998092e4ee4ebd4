package remoteexec

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cogumi/cogumi/cache"
)

const (
	// SpecVersion is the spec format; exec-action refuses others.
	SpecVersion = 1
	// scratchPlaceholder stands for the scratch directory in a spec's argv
	// and env; a literal "$" is written "$$".
	scratchPlaceholder = "${COGUMI_SCRATCH}"
	// extraDir is where, inside the job's scratch directory,
	// directories that lie outside the client's are staged.
	extraDir = ".cogumi-exec"
	// maxSpecSize bounds a spec read from the bucket.
	maxSpecSize = 64 << 20
	// transfers is how many blobs one side moves at once.
	transfers = 8
	// killGrace is how long the command has between SIGTERM and
	// SIGKILL when the job is cancelled. Slurm's KillWait (30 s by
	// default) must leave time after it to upload the resume directory.
	killGrace = 10 * time.Second
	// finishTimeout bounds the uploads of a cancelled job.
	finishTimeout = 20 * time.Second
	// fetchAfterCancel bounds what the client still fetches (the
	// resume directory) after Ctrl-C.
	fetchAfterCancel = 2 * time.Minute
)

// Spec is what a job needs to run one action: a spec blob.
type Spec struct {
	Version int    `json:"version"`
	Token   string `json:"token"` // random: no two runs share a spec or a result
	Label   string `json:"label"`
	// Argv and Env ("NAME=value") have the scratch directory written as
	// scratchPlaceholder and "$" as "$$" (see encodeScratch).
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// WorkDir, OutDir and ResumeDir are relative to the scratch directory.
	WorkDir   string `json:"work_dir"`
	OutDir    string `json:"out_dir"`
	ResumeDir string `json:"resume_dir,omitempty"`
	// Dirs are every directory to make, parents first; Files the inputs,
	// paths relative to the scratch directory.
	Dirs  []string          `json:"dirs"`
	Files []cache.FileEntry `json:"files"`
}

// ResultKey is where the job records its result: not an action key
// but a name only the holder of the spec can derive.
func ResultKey(spec cache.Digest) cache.ActionKey {
	return cache.KeyFromRecords([]string{"cogumi exec-action result v1", spec.String()})
}

// Records of an exec-action result, besides "dir PATH" for each directory
// of the outputs.
const (
	statusOK  = "status ok"
	statusErr = "status failed: "
	resumeOK  = "resume saved"
)

// encodeScratch writes s for a spec: each occurrence of the scratch path
// that is a whole path component becomes scratchPlaceholder, and every
// other "$" becomes "$$", so that decoding is unambiguous.
func encodeScratch(s, scratch string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if scratch != "" && strings.HasPrefix(s[i:], scratch) && componentEnds(s, i+len(scratch)) {
			b.WriteString(scratchPlaceholder)
			i += len(scratch)
			continue
		}
		if s[i] == '$' {
			b.WriteByte('$')
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// componentEnds reports whether a path that ends before s[j] is not the
// beginning of a longer file name.
func componentEnds(s string, j int) bool {
	if j == len(s) {
		return true
	}
	c := s[j]
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '~' || c >= 0x80)
}

// decodeScratch undoes encodeScratch with the job's scratch directory.
func decodeScratch(s, scratch string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] != '$':
			b.WriteByte(s[i])
			i++
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(s[i:], scratchPlaceholder):
			b.WriteString(scratch)
			i += len(scratchPlaceholder)
		default:
			return "", fmt.Errorf("%q: a lone '$' at byte %d (want $$ or %s)", truncateText(s, 80), i, scratchPlaceholder)
		}
	}
	return b.String(), nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// validRel checks a directory path of a spec: relative, clean, '/'-separated,
// inside the scratch directory.
func validRel(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("empty path")
	case path.Clean(p) != p || !filepath.IsLocal(p):
		return fmt.Errorf("path %q is not a clean relative path", p)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q holds a backslash or NUL", p)
	}
	return nil
}

// validate checks a spec read from the bucket before anything is done with
// it.
func (s *Spec) validate() error {
	if s.Version != SpecVersion {
		return fmt.Errorf("spec version %d; this cogumi reads version %d (use the same cogumi on the cluster as on the machine that submits)", s.Version, SpecVersion)
	}
	if len(s.Argv) == 0 {
		return fmt.Errorf("no command")
	}
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("environment entry %q is not NAME=value", truncateText(e, 80))
		}
	}
	for what, p := range map[string]string{"work_dir": s.WorkDir, "out_dir": s.OutDir} {
		if err := validRel(p); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if s.ResumeDir != "" {
		if err := validRel(s.ResumeDir); err != nil {
			return fmt.Errorf("resume_dir: %w", err)
		}
	}
	for _, d := range s.Dirs {
		if err := validRel(d); err != nil {
			return fmt.Errorf("dirs: %w", err)
		}
	}
	if err := (cache.Manifest{Files: s.Files}).Validate(); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	return nil
}

// within reports whether p is root or lies under it (lexically).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}
