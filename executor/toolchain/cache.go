package toolchain

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/cogumi/cogumi/internal/atomicfile"
)

// cacheVersion changes whenever the meaning of an entry changes; a file of
// another version is ignored (probed again), never misread.
const cacheVersion = 2 // 2: Hugging Face versions

// cacheFile is the JSON file that remembers probed toolchains.
type cacheFile struct {
	Version int              `json:"version"`
	Entries map[string]entry `json:"entries"`
}

// entry is one probed toolchain and the stat of every file and directory
// its answer depends on.
type entry struct {
	Version  Version    `json:"toolchain"`
	Files    []fileStat `json:"files"`
	ProbedAt int64      `json:"probed_at"` // ns since the epoch
}

// fileStat is what stat says of a file (Link: of the symlink itself, not
// of its target); Missing records that it did not exist, so that its
// creation is a change too.
type fileStat struct {
	Path    string `json:"path"`
	Link    bool   `json:"link,omitempty"`
	Missing bool   `json:"missing,omitempty"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
	Ino     uint64 `json:"ino"`
	Dev     uint64 `json:"dev"`
	Mode    uint32 `json:"mode"`
}

// statFile stats path, following symlinks (link false) or not.
func statFile(path string, link bool) fileStat {
	stat := os.Stat
	if link {
		stat = os.Lstat
	}
	fi, err := stat(path)
	if err != nil {
		return fileStat{Path: path, Link: link, Missing: true}
	}
	s := statOf(fi)
	s.Path, s.Link = path, link
	return s
}

// watchFile records path's stat, and its own if it is a symlink: a
// symlink pointed elsewhere (python3 -> python3.12) is a change even if
// the new target's stat happened to match the old one's.
func watchFile(path string) []fileStat {
	out := []fileStat{statFile(path, false)}
	if li, err := os.Lstat(path); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		out = append(out, statFile(path, true))
	}
	return out
}

// fresh reports whether nothing the entry depends on has changed.
func (e entry) fresh() bool {
	if len(e.Files) == 0 {
		return false
	}
	for _, f := range e.Files {
		if statFile(f.Path, f.Link) != f {
			return false
		}
	}
	return true
}

// loadCache reads the cache file; a missing, unreadable, corrupt or
// other-version file is an empty cache: it only costs a probe.
func loadCache(path string) cacheFile {
	empty := cacheFile{Version: cacheVersion, Entries: map[string]entry{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return empty
	}
	var c cacheFile
	if err := json.Unmarshal(data, &c); err != nil || c.Version != cacheVersion || c.Entries == nil {
		return empty
	}
	return c
}

// storeCache adds e under key and rewrites the file atomically (a
// temporary file renamed over it), so that a reader never sees half a
// file. Two processes storing at once may lose one entry: a probe later.
func storeCache(path, key string, e entry) error {
	c := loadCache(path)
	c.Entries[key] = e
	if len(c.Entries) > maxEntries {
		keys := make([]string, 0, len(c.Entries))
		for k := range c.Entries {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return c.Entries[keys[i]].ProbedAt < c.Entries[keys[j]].ProbedAt })
		for _, k := range keys[:len(keys)-maxEntries] {
			delete(c.Entries, k)
		}
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("toolchain cache: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("toolchain cache: %w", err)
	}
	return nil
}
