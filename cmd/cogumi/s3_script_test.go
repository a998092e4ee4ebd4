package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cogumi/cogumi/internal/s3test"
)

// s3holder keeps a scenario's private S3 server.
type s3holder struct{ s *s3test.Server }

// cmdS3Server runs a scenario's own S3 server:
//
//	s3server start     start it with a fresh bucket; sets AWS_* credentials,
//	                   S3_ENDPOINT, S3_BUCKET and S3_DATA
//	s3server stop      kill it (its data stays)
//	s3server restart   start it again on the same address and data
//	s3server corrupt   overwrite every blob in the bucket with other bytes,
//	                   keeping the metadata, as a broken disk would
//	s3server count DIR the number of objects under DIR (cas or ac) in stdout
//	s3server damage flip|remove DIR
//	                   flip a byte in the middle of the first object under
//	                   DIR (chunks, cas, ...) in the server's own files, as
//	                   bit rot would, or remove the last one; sets $DAMAGED
//	                   to the object's name
func cmdS3Server(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: s3server start|stop|restart|corrupt|count DIR")
	}
	h := ts.Value("s3").(*s3holder)
	if args[0] != "start" && h.s == nil {
		ts.Fatalf("s3server %s: no server started", args[0])
	}
	switch args[0] {
	case "start":
		bin, err := s3test.Binary()
		if err != nil {
			ts.Fatalf("no S3 test server: %v (guard the scenario with [!have:versitygw] skip)", err)
		}
		s, err := s3test.Launch(bin, ts.MkAbs("s3"))
		h.s = s
		ts.Check(err)
		ts.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
		ts.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
		ts.Setenv("AWS_REGION", s.Region)
		ts.Setenv("S3_ENDPOINT", s.Endpoint)
		ts.Setenv("S3_BUCKET", s.Bucket)
		ts.Setenv("S3_DATA", s.DataDir())
	case "stop":
		h.s.Stop()
	case "restart":
		ts.Check(h.s.Relaunch())
	case "corrupt":
		n := forEachObject(ts, h.s, "cas/", func(c *minio.Client, o minio.ObjectInfo) {
			st, err := c.StatObject(context.Background(), h.s.Bucket, o.Key, minio.StatObjectOptions{})
			ts.Check(err)
			junk := bytes.Repeat([]byte("corrupted "), int(max(o.Size/10, 1)))
			_, err = c.PutObject(context.Background(), h.s.Bucket, o.Key, bytes.NewReader(junk), int64(len(junk)),
				minio.PutObjectOptions{UserMetadata: st.UserMetadata})
			ts.Check(err)
		})
		ts.Logf("corrupted %d blobs", n)
	case "count":
		if len(args) != 2 {
			ts.Fatalf("usage: s3server count cas|ac")
		}
		n := forEachObject(ts, h.s, args[1]+"/", func(*minio.Client, minio.ObjectInfo) {})
		fmt.Fprintf(ts.Stdout(), "%d\n", n)
	case "damage":
		if len(args) != 3 || (args[1] != "flip" && args[1] != "remove") {
			ts.Fatalf("usage: s3server damage flip|remove DIR")
		}
		damageObject(ts, h.s, args[1], args[2])
	default:
		ts.Fatalf("s3server: unknown subcommand %q", args[0])
	}
}

// forEachObject calls fn for each object whose key holds dir.
func forEachObject(ts *testscript.TestScript, s *s3test.Server, dir string, fn func(*minio.Client, minio.ObjectInfo)) int {
	c, err := s.Minio()
	ts.Check(err)
	n := 0
	for o := range c.ListObjects(context.Background(), s.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		ts.Check(o.Err)
		if strings.Contains(o.Key, "/"+dir) || strings.HasPrefix(o.Key, dir) {
			fn(c, o)
			n++
		}
	}
	return n
}

// damageObject flips a byte of the first object under dir, or removes the
// last one, in the server's data directory, and sets $DAMAGED to its name.
func damageObject(ts *testscript.TestScript, s *s3test.Server, how, dir string) {
	var keys []string
	forEachObject(ts, s, dir+"/", func(_ *minio.Client, o minio.ObjectInfo) { keys = append(keys, o.Key) })
	if len(keys) == 0 {
		ts.Fatalf("s3server damage: no object under %s/", dir)
	}
	sort.Strings(keys)
	key := keys[0]
	if how == "remove" {
		key = keys[len(keys)-1]
	}
	path := filepath.Join(s.DataDir(), s.Bucket, filepath.FromSlash(key))
	if how == "remove" {
		ts.Check(os.Remove(path))
	} else {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		ts.Check(err)
		info, err := f.Stat()
		ts.Check(err)
		b := make([]byte, 1)
		_, err = f.ReadAt(b, info.Size()/2)
		ts.Check(err)
		b[0] ^= 0x40
		_, err = f.WriteAt(b, info.Size()/2)
		ts.Check(err)
		ts.Check(f.Close())
	}
	ts.Setenv("DAMAGED", path[strings.LastIndexByte(path, '/')+1:])
	ts.Logf("%s %s", how, key)
}
