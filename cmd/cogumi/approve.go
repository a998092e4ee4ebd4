package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/model/release"
)

func newApproveCmd(g *globals) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "approve TARGET --note TEXT",
		Short: "Record a human approval of a release, bound to its digest",
		Long: `Approve records that you approved the release TARGET as it is now built: who
(git user.email, else $USER), when, your note, and the release's digest (the
BLAKE3 of its manifest.json, which lists every file's digests). The release must
be built as the workspace now describes it. Any change to what the release holds
gives it another digest, which needs an approval of its own; cogumi publish
refuses a release without one.

An approval is a record of a decision, not access control: anyone who can write
the workspace's state can write one. It is kept in the workspace's state, which
cache GC never removes.

Example:
  cogumi approve //models:release --note "reviewed the eval and the card"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(note) == "" {
				return &exitError{code: exitConfig, err: fmt.Errorf("--note: say what you reviewed (--note \"checked metrics and card\")")}
			}
			return runApprove(cmd, g, args[0], note)
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "what was reviewed (required)")
	return cmd
}

func runApprove(cmd *cobra.Command, g *globals, arg, note string) error {
	ctx := cmd.Context()
	w, _, l, m, digest, err := g.currentRelease(ctx, arg)
	if err != nil {
		return err
	}
	a := release.Approval{Version: 1, Target: l.String(), Digest: digest, Name: m.Name,
		By: approver(w.ws.Root), Time: time.Now().UTC().Truncate(time.Millisecond), Note: note}
	dir, err := g.approvalsDir(w)
	if err != nil {
		return err
	}
	if err := release.SaveApproval(dir, a); err != nil {
		return fmt.Errorf("recording the approval: %w", err)
	}
	fmt.Fprintf(g.stdout, "approved %s (%s), digest %s, by %s\n", l, m.Name, digest, a.By)
	if rc := g.remoteSettings(cmd.Flags(), w); rc != nil {
		if err := putRemoteApproval(ctx, rc, a); err != nil {
			fmt.Fprintf(g.stderr, "cogumi: warning: the approval is recorded here only: remote cache %s: %v\n", rc.URL, err)
		} else {
			fmt.Fprintf(g.stdout, "recorded in the remote cache %s\n", rc.URL)
		}
	}
	return nil
}

// currentRelease loads the workspace and returns the release arg names,
// as built now: its manifest and digest.
func (g *globals) currentRelease(ctx context.Context, arg string) (*workspace, *engine.Engine, label.Label, *release.Manifest, string, error) {
	w, e, err := g.inspect(ctx)
	if err != nil {
		return nil, nil, label.Label{}, nil, "", err
	}
	ls, err := w.labels(e, []string{arg})
	if err != nil {
		return nil, nil, label.Label{}, nil, "", err
	}
	if len(ls) != 1 {
		return nil, nil, label.Label{}, nil, "", &exitError{code: exitConfig, err: fmt.Errorf("%s names %d targets: name one release", arg, len(ls))}
	}
	l := ls[0]
	if k := e.Kind(l); k != "release" {
		return nil, nil, label.Label{}, nil, "", &exitError{code: exitConfig, err: fmt.Errorf("%s is a %s target, not a release", l, k)}
	}
	b, err := e.ReadOutput(ctx, l, release.ManifestName)
	if err != nil {
		return w, e, l, nil, "", err // approvals still lists its past approvals
	}
	m, err := release.Parse(b)
	if err != nil {
		return nil, nil, label.Label{}, nil, "", fmt.Errorf("%s: %w", l, err)
	}
	return w, e, l, m, release.Digest(b), nil
}

// approvalsDir is where the workspace's approvals are kept: in its state,
// inside the cache directory, which cache GC leaves alone.
func (g *globals) approvalsDir(w *workspace) (string, error) {
	c, err := g.openCache(w)
	if err != nil {
		return "", err
	}
	return filepath.Join(engine.StateDir(c, w.ws.Root), release.ApprovalsDir), nil
}

// approver names who approves: git's user.email for the workspace, else
// $USER. It is what the person says they are, not an authenticated identity.
func approver(root string) string {
	out, err := exec.Command("git", "-C", root, "config", "user.email").Output()
	if s := strings.TrimSpace(string(out)); err == nil && s != "" {
		return s
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func newApprovalsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "approvals [TARGET]",
		Short: "List the approvals of releases",
		Long: `Approvals lists the approvals recorded in this workspace, oldest first: when,
who, which release and digest, the note. With TARGET, only that release's, and
whether its current build is approved. With a remote cache, the approvals
recorded there (by cogumi approve on any machine) are listed too.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApprovals(cmd, g, args)
		},
	}
}

func runApprovals(cmd *cobra.Command, g *globals, args []string) error {
	ctx := cmd.Context()
	var (
		w       *workspace
		l       label.Label
		current string
		err     error
	)
	if len(args) == 1 {
		w, _, l, _, current, err = g.currentRelease(ctx, args[0])
		if w == nil || l.Name == "" {
			return err
		}
		if err != nil {
			fmt.Fprintf(g.stderr, "cogumi: %v\n", err)
		}
	} else if w, err = g.load(); err != nil {
		return err
	}
	all, err := g.allApprovals(cmd, w)
	if err != nil {
		return err
	}
	approved := false
	for _, a := range all {
		if len(args) == 1 && a.Target != l.String() {
			continue
		}
		mark := ""
		if current != "" && a.Digest == current {
			mark, approved = " (current)", true
		}
		fmt.Fprintf(g.stdout, "%s  %s  %s  %s%s  %q\n", a.Time.Format(time.RFC3339), a.By, a.Target, a.Digest[:16], mark, a.Note)
	}
	if len(args) == 1 && current != "" && !approved {
		fmt.Fprintf(g.stdout, "%s as built now (digest %s) has no approval\n", l, current[:16])
	}
	return nil
}
