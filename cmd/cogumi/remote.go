package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/hcl"
)

// remoteFlags override the remote_cache block of cogumi.hcl.
type remoteFlags struct {
	url      string
	endpoint string
	upload   bool
}

func (r *remoteFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&r.url, "remote-cache", "", "remote cache `s3://bucket/prefix` (default: remote_cache in cogumi.hcl, or $COGUMI_REMOTE_CACHE)")
	fs.StringVar(&r.endpoint, "remote-endpoint", "", "S3-compatible server `URL` for the remote cache (http:// means no TLS)")
	fs.BoolVar(&r.upload, "remote-upload", true, "upload what this build runs to the remote cache (false: read-only)")
}

// remoteSettings merges flags, environment and cogumi.hcl; nil means no
// remote cache.
func (g *globals) remoteSettings(fs *pflag.FlagSet, w *workspace) *hcl.RemoteCache {
	var rc hcl.RemoteCache
	if w.ws.RemoteCache != nil {
		rc = *w.ws.RemoteCache
	} else {
		rc.Upload = true
	}
	if env := os.Getenv("COGUMI_REMOTE_CACHE"); env != "" {
		rc.URL = env
	}
	if g.remote.url != "" {
		rc.URL = g.remote.url
	}
	if g.remote.endpoint != "" {
		rc.Endpoint = g.remote.endpoint
	}
	if fs.Changed("remote-upload") {
		rc.Upload = g.remote.upload
	}
	if rc.URL == "" {
		return nil
	}
	return &rc
}

// withRemote opens the remote cache, if one is configured, into cfg.
func (g *globals) withRemote(cmd *cobra.Command, w *workspace, cfg *engine.Config) error {
	rc := g.remoteSettings(cmd.Flags(), w)
	if rc == nil {
		return nil
	}
	var withProgress []func(*s3.Config)
	if g.prog != nil {
		withProgress = append(withProgress, func(c *s3.Config) { c.Progress = g.prog.transfer })
	}
	// The local cache's chunk index: pulls of chunked blobs copy the chunks
	// it has. Without one (an unusable cache directory, reported later by
	// the engine) every chunk is downloaded.
	if dir, err := g.localCacheDir(w); err == nil {
		if local, err := cache.OpenLocal(dir); err == nil {
			withProgress = append(withProgress, func(c *s3.Config) { c.LocalChunks = local.ChunkIndex() })
		}
	}
	r, err := openRemote(cmd.Context(), rc, withProgress...)
	if err != nil {
		// An unusable remote cache never stops a build: warn, build locally.
		fmt.Fprintf(g.stderr, "cogumi: warning: remote cache %s: %v; going on with the local cache only\n", rc.URL, err)
		return nil
	}
	cfg.Remote, cfg.RemoteUpload = r, rc.Upload
	return nil
}

// remoteEngine is an engine with the remote cache, for cache push and pull.
func (g *globals) remoteEngine(cmd *cobra.Command, downloadAll bool) (*workspace, *engine.Engine, error) {
	w, err := g.load()
	if err != nil {
		return nil, nil, err
	}
	g.prog = newProgress(g.stderr)
	defer g.prog.finish()
	cfg := engine.Config{DownloadAll: downloadAll, Observer: g.prog}
	if err := g.withRemote(cmd, w, &cfg); err != nil {
		return nil, nil, err
	}
	if cfg.Remote == nil {
		return nil, nil, &exitError{code: exitConfig, err: fmt.Errorf("no remote cache configured: add a remote_cache block to cogumi.hcl, or pass --remote-cache s3://bucket/prefix")}
	}
	e, err := g.engine(cmd.Context(), w, cfg)
	if err != nil {
		return nil, nil, err
	}
	return w, e, nil
}
