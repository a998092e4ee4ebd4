package engine

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cogumi/cogumi/rules"
)

// A rule with Traits.Provenance (release) writes into its outputs where
// its inputs came from: the action key that produced each target input,
// cogumi's version and the workspace's git commit. None of these is in an
// ordinary key: a key holds the tree digest of each input, not its
// producer's key, because early cutoff lets two producer keys make the
// same bytes. Written into outputs without being in the key, they would
// let one key stand for two different artifacts. So for these rules the
// engine adds them as records of the key, and the action sees exactly what
// its key says (rules.Action.Provenance). The price is deliberate: such an
// action runs again when an input's recipe changes even if its bytes did
// not, when cogumi is upgraded, and on every new commit of the workspace;
// its outputs say so, and what they say is true.

// provenanceRecords are the key records of a Traits.Provenance rule beyond
// the ordinary ones: nil for other rules.
func (e *Engine) provenanceRecords(schema rules.Schema, inputs []inputDigest, artOf func(int) *artifact) []string {
	if !schema.Traits.Provenance {
		return nil
	}
	recs := []string{
		record("cogumi-version", fmt.Sprintf("%q", e.cfg.CogumiVersion)),
		record("workspace-commit", fmt.Sprintf("%q", e.workspaceCommit())),
	}
	for i, in := range inputs {
		if in.in.IsFile() {
			continue
		}
		key := ""
		if art := artOf(e.index[in.in.Label.Target()]); art != nil && !art.key.IsZero() {
			key = art.key.String()
		}
		recs = append(recs, record("producer of "+inputName(i, in.in), fmt.Sprintf("%q", key)))
	}
	return recs
}

// provenance is what a Traits.Provenance rule's action is told; nil for
// other rules. Every field is covered by provenanceRecords.
func (e *Engine) provenance(schema rules.Schema, inputs []inputDigest, artOf func(int) *artifact, st *staged) *rules.Provenance {
	if !schema.Traits.Provenance {
		return nil
	}
	p := &rules.Provenance{CogumiVersion: e.cfg.CogumiVersion, Commit: e.workspaceCommit()}
	for _, in := range inputs {
		if in.in.IsFile() {
			continue
		}
		ip := rules.InputProvenance{Attr: in.in.Attr, Key: in.in.Key, Label: in.in.Label.String(), Tree: in.digest.String(),
			Dir: filepath.Join(st.ws, artifactDir(in.in.Label.Target()), filepath.FromSlash(in.in.Label.Sub))}
		if art := artOf(e.index[in.in.Label.Target()]); art != nil && !art.key.IsZero() {
			ip.ActionKey = art.key.String()
		}
		p.Inputs = append(p.Inputs, ip)
	}
	return p
}

// workspaceCommit is the git commit the workspace's HEAD names, "" when
// the workspace is in no git repository (or git is not installed). It is
// asked once per engine, and only when a Traits.Provenance rule is keyed.
// Uncommitted edits are not reflected: what a release holds is identified
// by its files' digests; the commit says which history it was built from.
func (e *Engine) workspaceCommit() string {
	e.commitOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "git", "-C", e.cfg.Root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
		out, err := cmd.Output()
		if err == nil {
			e.commit = strings.TrimSpace(string(out))
		}
	})
	return e.commit
}

// commitState holds workspaceCommit's answer.
type commitState struct {
	commitOnce sync.Once
	commit     string
}
