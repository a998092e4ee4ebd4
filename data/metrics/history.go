package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/cogumi/cogumi/internal/atomicfile"
)

// HistoryName is the history's file name in a workspace's state directory,
// next to the engine's state.json.
const HistoryName = "metrics-history.json"

// MaxEntries bounds the history of each target: older values are dropped.
const MaxEntries = 50

// History remembers the metrics of each evaluation across the builds that
// changed them. Like the engine's state it is a hint, never an input:
// losing it only loses the "change" column.
type History struct {
	Version int `json:"version"`
	// Builds counts the builds that recorded anything; each entry carries
	// the count at its build, so entries of several targets line up.
	Builds  int                `json:"builds"`
	Targets map[string][]Entry `json:"targets"`
}

// Entry is one recorded metrics.json of a target.
type Entry struct {
	Build   int                `json:"build"`
	Time    time.Time          `json:"time"`
	Digest  string             `json:"digest"` // of the metrics.json bytes
	Metrics map[string]float64 `json:"metrics"`
}

// LoadHistory reads a history; a missing or damaged file is an empty one.
func LoadHistory(path string) *History {
	h := &History{Version: 1}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, h) != nil || h.Version != 1 {
		h = &History{Version: 1}
	}
	if h.Targets == nil {
		h.Targets = make(map[string][]Entry)
	}
	return h
}

// Snapshot is the current metrics.json of one evaluation.
type Snapshot struct {
	Label  string
	Digest string
	File   *File
}

// Record appends every snapshot whose metrics.json differs from the last
// one recorded for its target, as one build, and forgets targets not in
// keep (those no longer in the workspace). It reports whether anything
// changed.
func (h *History) Record(snaps []Snapshot, keep map[string]bool, now time.Time) bool {
	changed := false
	for l := range h.Targets {
		if !keep[l] {
			delete(h.Targets, l)
			changed = true
		}
	}
	build := h.Builds + 1
	recorded := false
	for _, s := range snaps {
		es := h.Targets[s.Label]
		if len(es) > 0 && es[len(es)-1].Digest == s.Digest {
			continue
		}
		es = append(es, Entry{Build: build, Time: now.UTC(), Digest: s.Digest, Metrics: s.File.Flat()})
		if len(es) > MaxEntries {
			es = append([]Entry(nil), es[len(es)-MaxEntries:]...)
		}
		h.Targets[s.Label] = es
		recorded = true
	}
	if recorded {
		h.Builds = build
	}
	return changed || recorded
}

// Previous returns the values a target had before the metrics.json with
// the given digest: the entry before that digest's last entry, or the
// last entry when the digest was never recorded.
func (h *History) Previous(label, digest string) (Entry, bool) {
	es := h.Targets[label]
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Digest == digest {
			if i == 0 {
				return Entry{}, false
			}
			return es[i-1], true
		}
	}
	if len(es) == 0 {
		return Entry{}, false
	}
	return es[len(es)-1], true
}

// Labels lists the targets with a history, sorted.
func (h *History) Labels() []string {
	out := make([]string, 0, len(h.Targets))
	for l := range h.Targets {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Save writes the history atomically: readers see the old file or the new.
func (h *History) Save(path string) error {
	b, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return fmt.Errorf("encoding the metrics history: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes b to path, readers seeing the old content or the new.
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b, 0o644) }
