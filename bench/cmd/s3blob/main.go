// Command s3blob moves one blob between a file and the remote cache with
// cogumi's S3 store, for the benchmarks' deduplication rows: the process
// whose time, CPU and peak RSS they measure.
//
//	s3blob put -endpoint URL -bucket B -prefix P -file F -digest HEX [-whole] [-cache DIR] [-stats FILE]
//	s3blob get -endpoint URL -bucket B -prefix P -digest HEX -size N [-whole] [-cache DIR] [-stats FILE]
//	s3blob du  -endpoint URL -bucket B -prefix P [-stats FILE]
//
// -whole stores and reads blobs whole, as cogumi did before chunking.
// -cache is the local cache: get puts the blob there (its chunk index then
// knows the chunks) and copies the chunks it already has. -stats writes the
// store's counters as JSON (du: the bytes under the prefix). Credentials come
// from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: s3blob put|get|du -endpoint URL -bucket B -prefix P ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var o opts
	fs.StringVar(&o.endpoint, "endpoint", "", "server `URL`")
	fs.StringVar(&o.bucket, "bucket", "", "bucket")
	fs.StringVar(&o.prefix, "prefix", "", "prefix in the bucket")
	fs.StringVar(&o.file, "file", "", "file to push")
	fs.StringVar(&o.digest, "digest", "", "the blob's digest")
	fs.Int64Var(&o.size, "size", 0, "the blob's size (get)")
	fs.BoolVar(&o.whole, "whole", false, "no chunking")
	fs.StringVar(&o.cache, "cache", "", "local cache `DIR`")
	fs.StringVar(&o.stats, "stats", "", "write counters as JSON to `FILE`")
	_ = fs.Parse(os.Args[2:])
	if err := run(context.Background(), os.Args[1], o); err != nil {
		fmt.Fprintln(os.Stderr, "s3blob:", err)
		os.Exit(1)
	}
}

type opts struct {
	endpoint, bucket, prefix, file, digest, cache, stats string
	size                                                 int64
	whole                                                bool
}

func run(ctx context.Context, op string, o opts) error {
	if op == "du" {
		return du(ctx, o)
	}
	cfg := s3.Config{URL: "s3://" + o.bucket + "/" + o.prefix, Endpoint: o.endpoint, Upload: op == "put"}
	if o.whole {
		cfg.ChunkThreshold = -1
	}
	var local *cache.Local
	if o.cache != "" {
		var err error
		if local, err = cache.OpenLocal(o.cache); err != nil {
			return err
		}
		cfg.LocalChunks = local.ChunkIndex()
	}
	s, err := s3.Open(ctx, cfg)
	if err != nil {
		return err
	}
	d, err := cache.ParseDigest(o.digest)
	if err != nil {
		return err
	}
	switch op {
	case "put":
		fi, err := os.Stat(o.file)
		if err != nil {
			return err
		}
		err = s.PutFile(ctx, d, fi.Size(), o.file)
		if err != nil {
			return err
		}
	case "get":
		if local == nil {
			return fmt.Errorf("get needs -cache")
		}
		tmp := filepath.Join(local.Dir(), "tmp", "s3blob-"+d.Short())
		if err := s.GetFile(ctx, d, o.size, tmp); err != nil {
			return err
		}
		if got, _, err := local.AdoptFile(tmp); err != nil || got != d {
			return fmt.Errorf("adopting the download: %v (digest %s)", err, got.Short())
		}
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	return writeJSON(o.stats, s.Stats())
}

// du sums the stored bytes under the prefix.
func du(ctx context.Context, o opts) error {
	u, err := url.Parse(o.endpoint)
	if err != nil {
		return err
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewEnvAWS(), Secure: u.Scheme == "https", Region: os.Getenv("AWS_REGION")})
	if err != nil {
		return err
	}
	var n, objects int64
	for oi := range c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: o.prefix + "/", Recursive: true}) {
		if oi.Err != nil {
			return oi.Err
		}
		n += oi.Size
		objects++
	}
	return writeJSON(o.stats, map[string]int64{"bytes": n, "objects": objects})
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil || path == "" {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
