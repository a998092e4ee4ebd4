package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cogumi/cogumi/internal/s3test"
	"github.com/cogumi/cogumi/internal/units"
)

// s3Rows pushes and pulls one artifact of e.s3Size random bytes with
// cogumi cache push/pull against a local versitygw server, and moves the
// same bytes with single-stream minio-go PutObject/GetObject
// (bench/cmd/s3stream). Every push goes to a fresh prefix and every pull
// into a fresh local cache, so nothing is skipped as already there.
func (e *env) s3Rows(ctx context.Context) ([]row, error) {
	gw, err := s3test.Binary()
	if err != nil {
		return nil, fmt.Errorf("%v; install it with: %s", err, s3test.InstallCommand)
	}
	srv, err := s3test.Launch(gw, filepath.Join(e.tmp, "s3"))
	if srv != nil {
		defer srv.Stop()
	}
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Join(e.tmp, "s3"))
	ws := filepath.Join(e.tmp, "ws-s3")
	defer os.RemoveAll(ws)
	if err := writeFiles(ws, map[string]string{
		"cogumi.hcl": "workspace {\n  name = \"s3\"\n}\n",
		"p/BUILD.hcl": fmt.Sprintf("run \"blob\" {\n  outs    = [\"blob.bin\"]\n  command = \"head -c %d /dev/urandom > $OUT/blob.bin\"\n}\n",
			e.s3Size),
	}); err != nil {
		return nil, err
	}
	creds := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + srv.Region}
	cacheA, cacheB := filepath.Join(e.tmp, "cache-s3a"), filepath.Join(e.tmp, "cache-s3b")
	defer os.RemoveAll(cacheA)
	defer os.RemoveAll(cacheB)
	envA := append([]string{"COGUMI_CACHE_DIR=" + cacheA}, creds...)
	envB := append([]string{"COGUMI_CACHE_DIR=" + cacheB}, creds...)
	fmt.Fprintf(os.Stderr, "building a %s artifact\n", units.FormatBytes(e.s3Size))
	if _, err := measure(ctx, ws, envA, e.bin, "build", "//p:blob"); err != nil {
		return nil, err
	}
	blob := filepath.Join(ws, "cogumi-out", "p", "blob", "blob.bin")
	if err := warm(blob); err != nil {
		return nil, err
	}
	remote := func(prefix string) []string {
		return []string{"--remote-cache", "s3://" + srv.Bucket + "/" + prefix, "--remote-endpoint", srv.Endpoint}
	}
	push := append(append([]string{e.bin, "cache", "push"}, remote("push0")...), "//p:blob")
	put := []string{e.s3stream, "put", "-endpoint", srv.Endpoint, "-bucket", srv.Bucket, "-file", blob, "-key", "put0"}
	ss, err := compare(ctx, e.reps, []tool{
		{name: "cogumi cache push", dir: ws, env: envA, argv: push, prep: func(rep int) error {
			copy(push[3:], remote(fmt.Sprintf("push%d", rep)))
			return nil
		}},
		{name: "minio-go PutObject, one stream", dir: e.tmp, env: creds, argv: put, prep: func(rep int) error {
			put[len(put)-1] = fmt.Sprintf("put%d", rep)
			return nil
		}},
	})
	if err != nil {
		return nil, err
	}
	got := filepath.Join(e.tmp, "s3-get.bin")
	defer os.Remove(got)
	pulls, err := compare(ctx, e.reps, []tool{
		{name: "cogumi cache pull", dir: ws, env: envB,
			argv: append(append([]string{e.bin, "cache", "pull"}, remote("push0")...), "//p:blob"),
			prep: func(int) error { return os.RemoveAll(cacheB) },
			check: func(int) error {
				// The blob must have come down into the fresh cache.
				u, err := dirBytes(cacheB)
				if err == nil && u < e.s3Size {
					err = fmt.Errorf("pull left %s in the cache, want at least %s", units.FormatBytes(u), units.FormatBytes(e.s3Size))
				}
				return err
			}},
		{name: "minio-go GetObject, one stream", dir: e.tmp, env: creds,
			argv: []string{e.s3stream, "get", "-endpoint", srv.Endpoint, "-bucket", srv.Bucket, "-key", "put0", "-file", got}},
	})
	if err != nil {
		return nil, err
	}
	bench := func(op string) string {
		return fmt.Sprintf("S3 %s of %s (versitygw on 127.0.0.1)", op, units.FormatBytes(e.s3Size))
	}
	note := func(ss []sample, what string) string {
		return fmt.Sprintf("%.0f MB/s at best; %s", mbps(e.s3Size, best(ss)), what)
	}
	return []row{
		summarize(bench("push"), "cogumi cache push", ss[0], note(ss[0], "to a fresh prefix each time")),
		summarize(bench("push"), "minio-go PutObject, one stream", ss[1], note(ss[1], "one PUT, unsigned payload")),
		summarize(bench("pull"), "cogumi cache pull", pulls[0], note(pulls[0], "into a fresh local cache, digest verified")),
		summarize(bench("pull"), "minio-go GetObject, one stream", pulls[1], note(pulls[1], "to a file, no verification")),
	}, nil
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	return n, err
}
