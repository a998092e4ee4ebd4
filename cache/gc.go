package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Usage is what the local cache holds.
type Usage struct {
	Blobs     int
	BlobBytes int64
	Actions   int
}

// Usage walks the cache and counts its blobs and action results.
func (c *Local) Usage() (Usage, error) {
	var u Usage
	err := c.walkBlobs(func(d Digest, size int64, _ time.Time) {
		u.Blobs++
		u.BlobBytes += size
	})
	if err != nil {
		return u, err
	}
	err = c.walkActions(func(ActionKey, time.Time) { u.Actions++ })
	return u, err
}

// GCOptions says what a collection may remove.
type GCOptions struct {
	// OlderThan removes action results last written before now minus it.
	OlderThan time.Duration
	// MaxSize removes the oldest action results until the blobs they
	// reference fit in it; 0 means no limit.
	MaxSize int64
	// Keep holds results that are never removed (what cogumi-out links to).
	Keep map[ActionKey]bool
	// DryRun reports what would be removed, removing nothing.
	DryRun bool
	// Now is the time cut-offs count from; zero means time.Now().
	Now time.Time
}

// GCReport says what a collection removed (or would remove).
type GCReport struct {
	Actions    []ActionKey
	Blobs      int
	BytesFreed int64
	BytesLeft  int64
}

// blobGrace protects blobs written in the last hour: a running build may
// have adopted them without having written its action result yet.
const blobGrace = time.Hour

// GC removes action results by age and size, then every blob that no
// remaining result references.
func (c *Local) GC(opts GCOptions) (GCReport, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	type entry struct {
		key   ActionKey
		mtime time.Time
		blobs []Digest
	}
	var entries []entry
	err := c.walkActions(func(k ActionKey, mtime time.Time) {
		entries = append(entries, entry{key: k, mtime: mtime})
	})
	if err != nil {
		return GCReport{}, err
	}
	sizes := make(map[Digest]int64)
	ctimes := make(map[Digest]time.Time)
	if err := c.walkBlobs(func(d Digest, size int64, ctime time.Time) {
		sizes[d] = size
		ctimes[d] = ctime
	}); err != nil {
		return GCReport{}, err
	}
	refs := make(map[Digest]int)
	for i := range entries {
		r, err := c.getAction(entries[i].key)
		if err != nil {
			continue // a corrupt entry was removed by GetAction; a missing one is gone
		}
		for _, f := range r.Outputs.Files {
			entries[i].blobs = append(entries[i].blobs, f.Digest)
		}
		if !r.Log.IsZero() {
			entries[i].blobs = append(entries[i].blobs, r.Log)
		}
		for _, d := range entries[i].blobs {
			refs[d]++
		}
	}
	live := int64(0)
	for d, n := range refs {
		if n > 0 {
			live += sizes[d]
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].mtime.Before(entries[j].mtime) })
	var rep GCReport
	drop := func(e entry) {
		rep.Actions = append(rep.Actions, e.key)
		for _, d := range e.blobs {
			refs[d]--
			if refs[d] == 0 {
				live -= sizes[d]
			}
		}
	}
	for _, e := range entries {
		if opts.Keep[e.key] {
			continue
		}
		old := opts.OlderThan > 0 && now.Sub(e.mtime) > opts.OlderThan
		big := opts.MaxSize > 0 && live > opts.MaxSize
		if old || big {
			drop(e)
		}
	}
	for d, size := range sizes {
		if refs[d] > 0 || now.Sub(ctimes[d]) < blobGrace {
			continue
		}
		rep.Blobs++
		rep.BytesFreed += size
	}
	rep.BytesLeft = live
	if opts.DryRun {
		return rep, nil
	}
	for _, k := range rep.Actions {
		if err := os.Remove(c.actionPath(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rep, fmt.Errorf("removing action %s: %w", k.Short(), err)
		}
	}
	for d := range sizes {
		if refs[d] > 0 || now.Sub(ctimes[d]) < blobGrace {
			continue
		}
		c.removeBlob(d)
	}
	return rep, nil
}

// walkActions calls fn for each action result file with its mtime.
func (c *Local) walkActions(fn func(ActionKey, time.Time)) error {
	root := filepath.Join(c.dir, "ac")
	return walkShards(root, func(name string, fi fs.FileInfo) {
		k, err := ParseActionKey(strings.TrimSuffix(name, ".json"))
		if err == nil && strings.HasSuffix(name, ".json") {
			fn(k, fi.ModTime())
		}
	})
}

// walkBlobs calls fn for each blob with its size and ctime.
func (c *Local) walkBlobs(fn func(Digest, int64, time.Time)) error {
	root := filepath.Join(c.dir, "cas")
	return walkShards(root, func(name string, fi fs.FileInfo) {
		d, err := ParseDigest(name)
		if err != nil {
			return // executable copies (.x) and strays
		}
		ctime := fi.ModTime()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		}
		fn(d, fi.Size(), ctime)
	})
}

// walkShards visits the files of root/<2 hex>/.
func walkShards(root string, fn func(name string, fi fs.FileInfo)) error {
	shards, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		des, err := os.ReadDir(filepath.Join(root, sh.Name()))
		if err != nil {
			return err
		}
		for _, de := range des {
			fi, err := de.Info()
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			fn(de.Name(), fi)
		}
	}
	return nil
}
