package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/hcl"
)

// openRemote opens the S3 remote cache. (The S3 store lands with its own
// package; until then a configured remote cache is an error.)
func openRemote(ctx context.Context, rc *hcl.RemoteCache) (engine.RemoteCache, error) {
	return nil, errors.New("the S3 backend is not built into this binary yet")
}

func runRemoteGC(cmd *cobra.Command, g *globals, opts cache.GCOptions) error {
	return errors.New("the S3 backend is not built into this binary yet")
}
