package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// GetAction returns the result stored under k. A missing entry is an
// ErrNotFound error. An entry that cannot be trusted (unreadable or invalid
// JSON, a different key, an invalid manifest, an output blob missing or of
// the wrong size) is a *CorruptError naming it, and is removed. Output blobs
// are checked by size only, not re-hashed, and not at all for an entry
// recorded from a remote hit (BlobsRemote), whose blobs may be in the bucket.
func (c *Local) GetAction(_ context.Context, k ActionKey) (*ActionResult, error) {
	return c.getAction(k)
}

func (c *Local) getAction(k ActionKey) (*ActionResult, error) {
	path := c.actionPath(k)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("action %s: %w", k.Short(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading action %s: %w", k.Short(), err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading action %s: %w", k.Short(), err)
	}
	corrupt := func(label, reason string) error {
		// Remove the entry only if it is still the one we read: another
		// process may have just replaced it with a good one.
		if now, err := os.Lstat(path); err == nil && os.SameFile(info, now) {
			_ = os.Remove(path)
		}
		what := "action result " + k.String()
		if label != "" {
			what += " (" + truncate(label, 200) + ")"
		}
		return &CorruptError{What: what, Reason: reason + "; removed"}
	}
	if !info.Mode().IsRegular() {
		return nil, corrupt("", "not a regular file")
	}
	if info.Size() > maxActionJSON {
		return nil, corrupt("", fmt.Sprintf("%d bytes, more than the limit of %d", info.Size(), maxActionJSON))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxActionJSON+1))
	if err != nil {
		return nil, fmt.Errorf("reading action %s: %w", k.Short(), err)
	}
	var r ActionResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, corrupt("", "invalid JSON: "+err.Error())
	}
	if r.Key != k {
		return nil, corrupt(r.Label, "it is for key "+r.Key.String())
	}
	if err := r.Validate(); err != nil {
		return nil, corrupt(r.Label, err.Error())
	}
	for _, out := range r.Outputs.Files {
		if r.BlobsRemote {
			break
		}
		if !c.hasBlob(out.Digest, out.Size) {
			return nil, corrupt(r.Label, fmt.Sprintf("output %q: blob %s of %d bytes is missing or has another size", out.Path, out.Digest.Short(), out.Size))
		}
	}
	return &r, nil
}

// PutAction validates r and stores it under r.Key, atomically. Put every
// blob r names first.
func (c *Local) PutAction(_ context.Context, r *ActionResult) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("storing action result: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return fmt.Errorf("storing action %s: %w", r.Key.Short(), err)
	}
	data = append(data, '\n')
	tmp, err := c.writeTemp(func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("storing action %s: %w", r.Key.Short(), err)
	}
	if err := c.install(tmp, c.actionPath(r.Key), 0o644); err != nil {
		return fmt.Errorf("storing action %s: %w", r.Key.Short(), err)
	}
	return nil
}

// DeleteAction removes the result stored under k, if any. The engine uses it
// to forget a remote hit whose blobs turned out to be unusable.
func (c *Local) DeleteAction(k ActionKey) error {
	if err := os.Remove(c.actionPath(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing action %s: %w", k.Short(), err)
	}
	return nil
}
