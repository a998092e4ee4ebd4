package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cogumi/cogumi/cache"
)

// maxRewinds bounds how often one action has its lost inputs made again
// before it gives up: a producer whose fresh outputs are lost again at
// once points at a broken cache, not bad luck.
const maxRewinds = 3

// lostInput returns the first input of an action that is about to run
// whose files cannot be had: not in the local cache and not fetchable from
// the remote one, or corrupt. It fetches what the remote cache has, as
// staging would.
func (e *Engine) lostInput(ctx context.Context, inputs []inputDigest, artOf func(int) *artifact) *lostInputError {
	for _, in := range inputs {
		if in.in.IsFile() {
			continue
		}
		dep := in.in.Label.Target()
		art := artOf(e.index[dep])
		m, err := art.sub(in.in.Label)
		if err != nil {
			continue // reported by staging
		}
		for _, f := range m.Files {
			if _, ok := art.sources[f.Path]; ok {
				continue
			}
			if err := e.fetch(ctx, cache.Manifest{Files: []cache.FileEntry{f}}); err != nil {
				return &lostInputError{dep: dep, err: err}
			}
			if _, err := e.checkedBlob(f); err != nil {
				return &lostInputError{dep: dep, err: err}
			}
		}
	}
	return nil
}

// rewind runs the producer of a lost input again, here, and puts its new
// artifact in the build's place of the old one. What its own action needs
// and cannot have is made again in turn, up the graph.
func (e *Engine) rewind(ctx context.Context, lost *lostInputError, s *scheduler) error {
	dn := e.index[lost.dep]
	mu := s.rewindLock(dn)
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	key, ok := s.keyOf(dn)
	if !ok {
		return fmt.Errorf("input %w (it was not built by an action, so it cannot be made again)", lost)
	}
	// Another action may have rewound it while this one waited.
	if res, err := e.cfg.Cache.GetAction(ctx, key); err == nil && !res.BlobsRemote && e.allLocal(ctx, res.Outputs) {
		if e.checkBlobs(res.Outputs) == nil {
			return nil
		}
	}
	e.obs.Warn(fmt.Sprintf("%s: its outputs are lost (%v); running it again here", lost.dep, errors.Unwrap(lost)))
	_ = e.cfg.Cache.DeleteAction(key)
	begun := time.Now()
	o := e.process(ctx, dn, s, 0, true)
	s.rewoundOutcome(dn, begun, o)
	if o.err != nil {
		return fmt.Errorf("input %s is lost, and running it again failed: %w", lost.dep, o.err)
	}
	return nil
}

// rewindLock returns the lock that serialises rewinds of target n.
func (s *scheduler) rewindLock(n int) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu, ok := s.rewound[n]
	if !ok {
		mu = new(sync.Mutex)
		s.rewound[n] = mu
	}
	return mu
}

func (s *scheduler) keyOf(n int) (cache.ActionKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[n]
	return k, !k.IsZero()
}

// rewoundOutcome reports a producer run again and, when it succeeded, puts
// its artifact in place of the lost one.
// Its record in the build record becomes that of the new run.
func (s *scheduler) rewoundOutcome(n int, begun time.Time, o outcome) {
	t := s.e.nodes[n].t
	ev := Event{Label: t.Label.String(), Result: o.result, ActionKey: o.key, Seconds: o.seconds, Reason: "its outputs were lost", Stats: o.stats}
	if o.err != nil {
		ev.Error = o.err.Error()
	}
	s.e.obs.Done(ev, o.logTail)
	rec := actionRecord(ev, o, begun, time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[n] = rec
	if o.result == Built {
		s.sum.Executed++
	}
	if o.art != nil {
		s.arts[n] = o.art
		s.keys[n] = o.key
	}
}
