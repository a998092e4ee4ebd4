package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/model/release"
	"github.com/cogumi/cogumi/model/release/oci"
)

func newPublishCmd(g *globals) *cobra.Command {
	var (
		to string
		o  oci.Options
	)
	cmd := &cobra.Command{
		Use:   "publish TARGET --to REGISTRY/REPOSITORY:TAG",
		Short: "Push an approved release to an OCI registry",
		Long: `Publish pushes the release TARGET, as built now, to an OCI registry as a
CNCF ModelPack artifact: one layer per file (the model card and manifest.json
too), a ModelPack config, then the OCI manifest, then the tag, last. A push
that fails part way never leaves a tag; running it again uploads only what
is missing. When the tag already names this release, nothing is uploaded.

It is refused unless the release's digest (the BLAKE3 of its manifest.json)
has an approval (cogumi approve), here or in the remote cache. Nothing else ever publishes: build never
does.

Credentials come from the Docker config (~/.docker/config.json, or
$DOCKER_CONFIG, with its credential helpers), or from the environment
variable --registry-auth-env names ("user:password", or a bearer token).
They are never printed. Registries on 127.0.0.1 or localhost are reached
over plain HTTP; --plain-http does so for others.

Example:
  cogumi publish //models:release --to ghcr.io/acme/tiny:v1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return &exitError{code: exitConfig, err: fmt.Errorf("--to: name where to publish (--to registry.example.com/models/tiny:v1)")}
			}
			return runPublish(cmd, g, args[0], to, o)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "REGISTRY/REPOSITORY:TAG to publish to (required)")
	addRegistryFlags(cmd, &o)
	return cmd
}

func addRegistryFlags(cmd *cobra.Command, o *oci.Options) {
	cmd.Flags().StringVar(&o.AuthEnv, "registry-auth-env", "", "environment variable holding user:password or a token (default: the Docker config)")
	cmd.Flags().BoolVar(&o.PlainHTTP, "plain-http", false, "reach the registry over HTTP (default only for 127.0.0.1 and localhost)")
}

func runPublish(cmd *cobra.Command, g *globals, arg, to string, o oci.Options) error {
	ctx := cmd.Context()
	w, e, l, m, digest, err := g.currentRelease(ctx, arg)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("%s is not built: run cogumi build %s, then approve it", l, l)
	}
	all, err := g.allApprovals(cmd, w)
	if err != nil {
		return err
	}
	var by *release.Approval
	for i := range all {
		if all[i].Digest == digest {
			by = &all[i]
		}
	}
	if by == nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s as built now (digest %s) has no approval: review it, then cogumi approve %s --note \"...\"", l, digest, l)}
	}
	r, err := oci.Open(to, o)
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	if r.Ref.Reference == "" || r.Ref.ValidateReferenceAsTag() != nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("--to %s: name a tag (REGISTRY/REPOSITORY:TAG)", to)}
	}
	blobs, err := e.OutputBlobs(ctx, l)
	if err != nil {
		return err
	}
	raw, err := e.ReadOutput(ctx, l, release.ManifestName)
	if err != nil {
		return err
	}
	if release.Digest(raw) != digest {
		return fmt.Errorf("%s changed while publishing: run it again", release.ManifestName)
	}
	files := map[string]string{}
	for p, b := range blobs {
		files[p] = b.Path
	}
	a, err := oci.Pack(m, raw)
	if err != nil {
		return err
	}
	rep, err := oci.Push(ctx, r, a, raw, oci.OpenFiles(files), r.Ref.Reference)
	if errors.Is(err, oci.ErrAuth) {
		return fmt.Errorf("publishing %s to %s: %w", l, to, err)
	}
	if err != nil {
		return fmt.Errorf("publishing %s to %s: %w (the tag was not written; run it again to finish)", l, to, err)
	}
	if rep.Already {
		fmt.Fprintf(g.stdout, "%s already holds %s (digest %s): nothing uploaded\n", to, l, digest)
		return nil
	}
	fmt.Fprintf(g.stdout, "published %s (%s, digest %s, approved by %s) to %s\n", l, m.Name, digest, by.By, to)
	fmt.Fprintf(g.stdout, "  %d blobs uploaded (%d bytes), %d already there; manifest %s\n", rep.Uploaded, rep.Bytes, rep.Present, a.Desc.Digest)
	if rep.Moved != "" {
		fmt.Fprintf(g.stdout, "  the tag moved from %s\n", rep.Moved)
	}
	return nil
}

func newPullReleaseCmd(g *globals) *cobra.Command {
	var o oci.Options
	cmd := &cobra.Command{
		Use:   "pull-release REGISTRY/REPOSITORY:TAG DIR",
		Short: "Fetch a published release and verify every file",
		Long: `Pull-release fetches a release published by cogumi publish into DIR (new or
empty). Every file is checked against the release's manifest.json (size,
SHA-256 and BLAKE3), and manifest.json against the digest the registry's
manifest names. Files are written beside DIR and moved into it only when all
are good: a failure leaves nothing. It prints the release's digest, which
names what was approved.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := oci.Open(args[0], o)
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			m, digest, err := oci.Pull(cmd.Context(), r, args[1])
			if err != nil {
				return fmt.Errorf("pulling %s: %w", args[0], err)
			}
			fmt.Fprintf(g.stdout, "pulled %s (%s, digest %s): %d files verified into %s\n", args[0], m.Name, digest, len(m.AllFiles())+1, args[1])
			return nil
		},
	}
	addRegistryFlags(cmd, &o)
	return cmd
}
