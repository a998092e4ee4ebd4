package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/hcl"
	"github.com/cogumi/cogumi/model/release"
)

// putRemoteApproval records a in the remote cache's approvals/, under the
// name it has locally.
func putRemoteApproval(ctx context.Context, rc *hcl.RemoteCache, a release.Approval) error {
	r, err := openRemote(ctx, rc)
	if err != nil {
		return err
	}
	b, err := a.Encode()
	if err != nil {
		return err
	}
	return r.s.PutRecord(ctx, s3.RecordsApprovals, a.FileName(), b)
}

// allApprovals returns the workspace's approvals and, with a remote cache,
// those recorded there, oldest first, each once. A remote record that is
// not an approval is reported and skipped (anyone who can write the bucket
// can write one); an unreachable remote cache is a warning.
func (g *globals) allApprovals(cmd *cobra.Command, w *workspace) ([]release.Approval, error) {
	dir, err := g.approvalsDir(w)
	if err != nil {
		return nil, err
	}
	all, err := release.ListApprovals(dir)
	if err != nil {
		return nil, err
	}
	rc := g.remoteSettings(cmd.Flags(), w)
	if rc == nil {
		return all, nil
	}
	seen := map[string]bool{}
	for _, a := range all {
		seen[a.FileName()] = true
	}
	ctx := cmd.Context()
	r, err := openRemote(ctx, rc)
	if err == nil {
		err = r.s.ListRecords(ctx, s3.RecordsApprovals, func(name string, b []byte) error {
			a, err := release.ParseApproval(b)
			if err != nil || a.FileName() != name {
				fmt.Fprintf(g.stderr, "cogumi: warning: remote cache %s: approvals/%s is not an approval; ignored\n", rc.URL, name)
				return nil
			}
			if !seen[name] {
				seen[name] = true
				all = append(all, a)
			}
			return nil
		})
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "cogumi: warning: remote cache %s: %v; listing the approvals recorded here only\n", rc.URL, err)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].FileName() < all[j].FileName() })
	return all, nil
}
