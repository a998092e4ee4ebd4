package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/engine/label"
)

// Summary counts what a build did.
type Summary struct {
	Executed, Cached, Remote, Failed, Skipped, Sources int
	Wall                                               time.Duration
	// Bytes moved to and from the remote cache.
	Downloaded, Uploaded int64
	// PendingUploads counts results that have not reached the remote
	// cache yet: the next build that reaches it sends them.
	PendingUploads int
}

// outcome is the result of processing one target.
type outcome struct {
	result  Result
	art     *artifact
	key     cache.ActionKey // zero when it could not be computed
	reason  string
	err     error
	logTail string
	seconds float64
	stats   json.RawMessage // what the rule reported about its run

	// For the build record: when its action started running (zero when it
	// did not), where, and what it moved.
	start    time.Time
	executor string
	slot     int // the job slot it held, from 1
	gpus     []string
	jobID    string
	bytesIn  int64
	fetched  int64
	// upToDate: a cache hit whose outputs the last build had left in
	// place, intact; nothing ran, was fetched or linked.
	upToDate bool
}

// ErrBuildFailed is returned when at least one target failed.
type ErrBuildFailed struct{ Failed int }

func (e ErrBuildFailed) Error() string {
	if e.Failed == 1 {
		return "1 target failed"
	}
	return fmt.Sprintf("%d targets failed", e.Failed)
}

// Build brings roots and everything they need up to date. Independent
// targets are processed in parallel: cache look-ups by a pool of workers,
// actions only within the budget. Without KeepGoing, the first failure
// stops new actions from starting; running ones finish and are cached.
func (e *Engine) Build(ctx context.Context, roots []label.Label) (Summary, error) {
	start := time.Now()
	ids, err := e.closure(roots)
	if err != nil {
		return Summary{}, err
	}
	defer e.markLinking()()
	e.obs.Planned(len(ids))
	b := newBudget(e.cfg.Jobs, e.cfg.CPUs, e.cfg.Memory)
	s := &scheduler{
		e:       e,
		budget:  b,
		arts:    make([]*artifact, len(e.nodes)),
		keys:    make([]cache.ActionKey, len(e.nodes)),
		rewound: make(map[int]*sync.Mutex),
		results: make([]Result, len(e.nodes)),
		records: make([]ActionRecord, len(e.nodes)),
		pending: make([]int32, len(e.nodes)),
		inBuild: make([]bool, len(e.nodes)),
		wanted:  make([]bool, len(e.nodes)),
		ready:   make(chan int, len(ids)),
		left:    len(ids),
	}
	for _, n := range ids {
		s.inBuild[n] = true
		s.wanted[n] = e.cfg.DownloadAll
	}
	for _, l := range roots {
		s.wanted[e.index[l.Target()]] = true
	}
	for _, n := range ids {
		s.pending[n] = int32(len(e.graph.Deps(n)))
		if s.pending[n] == 0 {
			s.ready <- n
		}
	}
	if len(ids) == 0 {
		close(s.ready)
	}
	workers := e.cfg.Jobs + 2*runtime.NumCPU()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range s.ready {
				begun := time.Now()
				s.finish(n, begun, e.process(ctx, n, s, 0, false))
			}
		}()
	}
	wg.Wait()
	s.sum.PendingUploads = e.retryUploads(ctx)
	s.sum.Wall = time.Since(start)
	if e.remote != nil {
		s.sum.Downloaded, s.sum.Uploaded = e.remote.bytesDown.Load(), e.remote.bytesUp.Load()
	}
	e.saveLastBuild(s.sum, len(ids))
	e.saveRecord(s.record(start, roots, ids))
	if s.sum.Failed > 0 {
		return s.sum, ErrBuildFailed{Failed: s.sum.Failed}
	}
	if err := ctx.Err(); err != nil {
		return s.sum, fmt.Errorf("build interrupted: %w", err)
	}
	return s.sum, nil
}

// scheduler is the state of one build.
type scheduler struct {
	e      *Engine
	budget *budget

	mu      sync.Mutex
	arts    []*artifact
	keys    []cache.ActionKey   // of the actions processed, for rewinding; zero if none
	rewound map[int]*sync.Mutex // one rewind of a target at a time
	results []Result
	records []ActionRecord // what happened to each target, for the build record
	pending []int32
	inBuild []bool
	wanted  []bool // its outputs must appear under cogumi-out (requested, or --download=all)
	ready   chan int
	left    int
	stopped bool
	sum     Summary
}

// depsOK returns the artifacts of n's dependencies, or false when one of
// them failed or was skipped.
func (s *scheduler) depsOK(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.e.graph.Deps(n) {
		if s.arts[d] == nil {
			return false
		}
	}
	return true
}

func (s *scheduler) artifactOf(n int) *artifact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arts[n]
}

func (s *scheduler) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// finish records n's outcome, reports it and releases its dependents.
// begun is when its processing began.
func (s *scheduler) finish(n int, begun time.Time, o outcome) {
	t := s.e.nodes[n].t
	ev := Event{Label: t.Label.String(), Result: o.result, ActionKey: o.key, Seconds: o.seconds, Reason: o.reason, Stats: o.stats}
	if o.err != nil {
		ev.Error = o.err.Error()
	}
	s.e.obs.Done(ev, o.logTail)
	rec := actionRecord(ev, o, begun, time.Now())

	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[n] = rec
	s.arts[n] = o.art
	s.results[n] = o.result
	s.keys[n] = o.key
	switch o.result {
	case Built:
		s.sum.Executed++
	case Cached:
		s.sum.Cached++
	case Remote:
		s.sum.Remote++
	case Failed:
		s.sum.Failed++
		if !s.e.cfg.KeepGoing {
			s.stopped = true
		}
	case Skipped:
		s.sum.Skipped++
	case Source:
		s.sum.Sources++
	}
	for _, r := range s.e.rdeps.Deps(n) {
		if !s.inBuild[r] {
			continue
		}
		s.pending[r]--
		if s.pending[r] == 0 {
			s.ready <- int(r)
		}
	}
	s.left--
	if s.left == 0 {
		close(s.ready)
	}
}
