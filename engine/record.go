package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// keepRecords is how many build records are kept beside the state.
const keepRecords = 20

// BuildRecord is what one build leaves behind for `cogumi report`: when
// each target started and ended, how it was obtained and why, where it ran
// and what it moved. It is a record, never an input.
type BuildRecord struct {
	ID      string         `json:"id"` // a sortable timestamp, unique in the workspace
	Started time.Time      `json:"started"`
	Ended   time.Time      `json:"ended"`
	Roots   []string       `json:"roots"`
	Summary Summary        `json:"summary"`
	Actions []ActionRecord `json:"actions"` // in dependency order: a target after its deps
}

// ActionRecord is one target's part in a build.
type ActionRecord struct {
	Label  string `json:"label"`
	Kind   string `json:"kind"`
	Result Result `json:"result"`
	// UpToDate marks a cache hit (Cached or Remote) that changed nothing:
	// the action key was the one the last build linked, and its outputs
	// were still in place under cogumi-out, so nothing was fetched or
	// linked. A cache hit without it had its outputs linked again (a new
	// key, or outputs removed or changed since).
	UpToDate bool   `json:"up_to_date,omitempty"`
	Reason   string `json:"reason,omitempty"` // why it ran
	Error    string `json:"error,omitempty"`
	// LogTail is the end of a failed action's output.
	LogTail string   `json:"log_tail,omitempty"`
	Deps    []string `json:"deps,omitempty"` // the targets of this build it needs
	// Start and End bound its processing; for an action that ran, its run.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Executor is "local" or the name of the executor that ran it.
	Executor string `json:"executor,omitempty"`
	// Slot is the job slot (-j) it held while it ran, from 1: two actions
	// that ran at the same time held different slots. An action of
	// another executor holds one too, for submitting and waiting.
	Slot  int      `json:"slot,omitempty"`
	GPUs  []string `json:"gpus,omitempty"` // UUIDs of the GPUs it held here
	JobID string   `json:"job_id,omitempty"`
	// BytesIn is the size of its inputs, BytesOut of its outputs;
	// Fetched what came from the remote cache for it.
	BytesIn  int64           `json:"bytes_in,omitempty"`
	BytesOut int64           `json:"bytes_out,omitempty"`
	Fetched  int64           `json:"fetched,omitempty"`
	Key      cache.ActionKey `json:"action_key,omitzero"`
	// Stats are what the rule reported about its run (API requests sent,
	// reused and paid; facts of a training run).
	Stats json.RawMessage `json:"stats,omitempty"`
}

// Ran reports whether its action ran in this build.
func (a ActionRecord) Ran() bool {
	return a.Result == Built || (a.Result == Failed && a.Executor != "")
}

// jobNote carries the id of the job that runs an action, from an executor
// back to the build record.
type jobNote struct {
	mu sync.Mutex
	id string
}

type jobNoteKey struct{}

// NoteJob tells the engine which job (a Slurm job id) runs the action of
// ctx, for the build record. Executors call it once the job is accepted.
func NoteJob(ctx context.Context, id string) {
	if n, ok := ctx.Value(jobNoteKey{}).(*jobNote); ok {
		n.mu.Lock()
		n.id = id
		n.mu.Unlock()
	}
}

func withJobNote(ctx context.Context) (context.Context, func() string) {
	n := new(jobNote)
	return context.WithValue(ctx, jobNoteKey{}, n), func() string {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.id
	}
}

// recordsDir is where build records are kept.
func (e *Engine) recordsDir() string { return filepath.Join(e.state.dir, "builds") }

// saveRecord writes r and removes all but the newest keepRecords records.
// A record that cannot be written costs the report, not the build.
func (e *Engine) saveRecord(r *BuildRecord) {
	dir := e.recordsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.obs.Warn(fmt.Sprintf("keeping the build record: %v", err))
		return
	}
	b, err := json.Marshal(r)
	if err == nil {
		err = writeFileAtomic(filepath.Join(dir, r.ID+".json"), b)
	}
	if err != nil {
		e.obs.Warn(fmt.Sprintf("keeping the build record: %v", err))
		return
	}
	ids, _ := recordIDs(dir)
	for len(ids) > keepRecords {
		_ = os.Remove(filepath.Join(dir, ids[0]+".json"))
		ids = ids[1:]
	}
}

// recordIDs lists the records of dir, oldest first.
func recordIDs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// BuildRecords returns the kept records of the workspace whose state is in
// stateDir, oldest first. An unreadable record is left out.
func BuildRecords(stateDir string) ([]*BuildRecord, error) {
	dir := filepath.Join(stateDir, "builds")
	ids, err := recordIDs(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*BuildRecord
	for _, id := range ids {
		b, err := os.ReadFile(filepath.Join(dir, id+".json"))
		if err != nil {
			continue
		}
		r := new(BuildRecord)
		if json.Unmarshal(b, r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// BuildRecords returns the kept records of this workspace, oldest first.
func (e *Engine) BuildRecords() ([]*BuildRecord, error) { return BuildRecords(e.state.dir) }

// recordID is a sortable id for a build that started at t.
func recordID(t time.Time) string {
	return t.UTC().Format("20060102T150405.000000000Z")
}

// actionRecord is the record of one target's outcome, processed from
// begun to end.
func actionRecord(ev Event, o outcome, begun, end time.Time) ActionRecord {
	r := ActionRecord{
		Label: ev.Label, Result: ev.Result, Reason: ev.Reason, Error: ev.Error, Key: ev.ActionKey, Stats: ev.Stats,
		Start: begun, End: end, Executor: o.executor, Slot: o.slot, GPUs: o.gpus, JobID: o.jobID,
		BytesIn: o.bytesIn, Fetched: o.fetched, UpToDate: o.upToDate,
	}
	if !o.start.IsZero() {
		r.Start = o.start
		r.End = o.start.Add(time.Duration(o.seconds * float64(time.Second)))
	}
	if o.result == Failed {
		r.LogTail = o.logTail
	}
	if o.art != nil {
		r.BytesOut = o.art.files.TotalSize()
	}
	return r
}

// record is the build record of the targets ids, a build of roots that
// started at start.
func (s *scheduler) record(start time.Time, roots []label.Label, ids []int) *BuildRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &BuildRecord{ID: recordID(start), Started: start, Ended: time.Now(), Summary: s.sum}
	for _, l := range roots {
		r.Roots = append(r.Roots, l.String())
	}
	for _, n := range ids {
		a := s.records[n]
		nd := s.e.nodes[n]
		a.Label, a.Kind = nd.t.Label.String(), nd.t.Kind
		for _, d := range s.e.graph.Deps(n) {
			if s.inBuild[d] {
				a.Deps = append(a.Deps, s.e.nodes[d].t.Label.String())
			}
		}
		r.Actions = append(r.Actions, a)
	}
	return r
}
