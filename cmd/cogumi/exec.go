package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/executor/remoteexec"
	"github.com/cogumi/cogumi/executor/slurm"
	"github.com/cogumi/cogumi/hcl"
)

// newExecActionCmd is the command a Slurm job runs when its files travel
// through the remote cache.
func newExecActionCmd(g *globals) *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "exec-action --remote-cache s3://BUCKET/PREFIX [--remote-endpoint URL] SPEC",
		Short: "Run one action whose files are in the remote cache (run by Slurm jobs)",
		Long: `exec-action is what a Slurm job runs for an executor without shared_dir when
a remote cache is configured; people do not need to run it.

SPEC is the digest of a blob in the remote cache that describes the action:
its command, environment and input files. exec-action downloads the inputs
(verified against their digests) into a fresh directory under $TMPDIR, runs
the command there, uploads the outputs (after a failure: the resume
directory) and the command's output, and records what it did for the
cogumi that submitted the job. It exits with the command's status.

Credentials come from the standard AWS sources, as for every remote cache
access (the job inherits them from the submitting environment by default).`,
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := cache.ParseDigest(args[0])
			if err != nil {
				return &exitError{code: exitConfig, err: fmt.Errorf("spec %q: %w", args[0], err)}
			}
			url := g.remote.url
			if url == "" {
				url = os.Getenv("COGUMI_REMOTE_CACHE")
			}
			if url == "" {
				return &exitError{code: exitConfig, err: fmt.Errorf("exec-action needs --remote-cache s3://bucket/prefix")}
			}
			st, err := s3.Open(cmd.Context(), s3.Config{URL: url, Endpoint: g.remote.endpoint, Region: region, Upload: true})
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			if err := remoteexec.RunJob(cmd.Context(), st, spec, g.stdout); err != nil {
				code := exitFailed
				var ce *remoteexec.CommandError
				if errors.As(err, &ce) && ce.Code > 0 && ce.Code < 256 {
					code = ce.Code
				}
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "remote-region", "", "the remote cache's `REGION`")
	return cmd
}

// slurmTransit returns the remote cache through which the jobs of executor
// name exchange files, or nil when they use the file system: shared_dir is
// set, or there is no writable remote cache.
func (g *globals) slurmTransit(name string, s *hcl.SlurmSettings, w *workspace, cfg *engine.Config) *remoteexec.Transit {
	if s.SharedDir != "" || cfg.Remote == nil {
		return nil
	}
	r, ok := cfg.Remote.(*s3Remote)
	if !ok {
		return nil
	}
	if !r.s.CanUpload() {
		for _, t := range w.ws.Targets {
			if t.Executor == name {
				fmt.Fprintf(g.stderr, "cogumi: warning: executor %q has no shared_dir and the remote cache %s is read-only, so its jobs cannot get their files through it: they use this machine's scratch directories, which only works where the nodes share its file system\n", name, r)
				break
			}
		}
		return nil
	}
	// The flags and the environment are read again; --remote-upload, the
	// only setting that needs the parsed flag set, is known to be true.
	rc := g.remoteSettings(pflag.NewFlagSet("exec-action", pflag.ContinueOnError), w)
	if rc == nil {
		return nil
	}
	return &remoteexec.Transit{Store: r.s, URL: rc.URL, Endpoint: rc.Endpoint, Region: rc.Region}
}

func (x *slurmExecutor) submitJob(ctx context.Context, job slurm.Job) (*slurm.Result, error) {
	submit := x.cfg.Submit
	if x.submit != nil {
		submit = x.submit
	}
	res, err := submit(ctx, job)
	if res != nil {
		engine.NoteJob(ctx, res.JobID)
	}
	return res, err
}
