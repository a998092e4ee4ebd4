// Command s3stream is the benchmarks' reference S3 client: one object moved
// in a single stream with minio-go, as a plain upload or download script
// would do it.
//
//	s3stream put|get -endpoint http://127.0.0.1:PORT -bucket B -key K -file F
//
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_REGION, as for cogumi.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "put" && os.Args[1] != "get") {
		fmt.Fprintln(os.Stderr, "usage: s3stream put|get -endpoint URL -bucket B -key K -file F")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "server `URL` (http:// means no TLS)")
	bucket := fs.String("bucket", "", "bucket")
	key := fs.String("key", "", "object key")
	file := fs.String("file", "", "file to upload or to write")
	_ = fs.Parse(os.Args[2:])
	if err := run(context.Background(), os.Args[1], *endpoint, *bucket, *key, *file); err != nil {
		fmt.Fprintln(os.Stderr, "s3stream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, op, endpoint, bucket, key, file string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("-endpoint: %w", err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewEnvAWS(),
		Secure: u.Scheme == "https",
		Region: os.Getenv("AWS_REGION"),
	})
	if err != nil {
		return err
	}
	if op == "put" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		// One PUT request streaming the file, its payload unsigned as
		// cogumi's uploads are (no second pass to hash it for SigV4).
		_, err = c.PutObject(ctx, bucket, key, f, fi.Size(), minio.PutObjectOptions{
			DisableMultipart: true, DisableContentSha256: true, ContentType: "application/octet-stream"})
		if err != nil {
			return fmt.Errorf("putting %s/%s: %w", bucket, key, err)
		}
		return nil
	}
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("getting %s/%s: %w", bucket, key, err)
	}
	defer obj.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, obj); err != nil {
		f.Close()
		return fmt.Errorf("getting %s/%s: %w", bucket, key, err)
	}
	return f.Close()
}
