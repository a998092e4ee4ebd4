package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
)

// maxRecord bounds a record's size.
const maxRecord = 1 << 20

// RecordsApprovals is the directory of release approvals (see the package
// comment).
const RecordsApprovals = "approvals"

// PutRecord writes a small document b as <prefix>/<dir>/<name>, replacing
// any there (a PUT is atomic). Records are not cache entries: they are
// named by their writer, not by content, and cache gc --remote never
// deletes them. dir and name are one path element each.
func (s *Store) PutRecord(ctx context.Context, dir, name string, b []byte) error {
	if strings.ContainsAny(dir+name, "/\\") || dir == "" || name == "" || len(b) > maxRecord {
		return fmt.Errorf("record %s/%s: a bad name or more than %d bytes", dir, name, maxRecord)
	}
	if !s.cfg.Upload {
		return fmt.Errorf("storing %s/%s in %s: %w", dir, name, s, ErrReadOnly)
	}
	key := s.objectKey(dir + "/" + name)
	return s.do(ctx, "PUT", key, s.idle, func(ctx context.Context, a *activity) error {
		_, err := s.core.PutObject(ctx, s.bucket, key, touchReader{bytes.NewReader(b), a}, int64(len(b)), "", "",
			minio.PutObjectOptions{ContentType: "application/json"})
		return err
	})
}

// ListRecords calls fn with the name and content of every record under
// dir, in name order. The caller validates each: anyone who can write the
// bucket can write a record. An error from fn stops the listing and is
// returned as it is.
func (s *Store) ListRecords(ctx context.Context, dir string, fn func(name string, b []byte) error) error {
	var names []string
	if err := s.list(ctx, dir+"/", func(oi minio.ObjectInfo, name string) error {
		if !strings.Contains(name, "/") && oi.Size <= maxRecord {
			names = append(names, name)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, name := range names {
		key := s.objectKey(dir + "/" + name)
		var data []byte
		err := s.do(ctx, "GET", key, s.idle, func(ctx context.Context, a *activity) error {
			rc, _, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			data, err = io.ReadAll(io.LimitReader(touchReader{rc, a}, maxRecord+1))
			return err
		})
		if isMiss(err) {
			continue // deleted since the listing
		}
		if err != nil {
			return err
		}
		if err := fn(name, data); err != nil {
			return err
		}
	}
	return nil
}
