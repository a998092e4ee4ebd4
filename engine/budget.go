package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/internal/units"
)

// budget hands out the machine's capacity to actions: a job slot (-j) plus
// declared cpus and memory. An action starts only when all of its needs fit,
// so the local executor never over-subscribes. Slots are numbered 1 to jobs
// and an action holds the lowest free one, so the build record can say
// which ran side by side. (GPUs are devices, handed out by gpu.Allocator.)
type budget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   int
	cpus   float64
	memory int64

	usedJobs int
	usedCPUs float64
	usedMem  int64
	busy     []bool // of each slot, 0 to jobs-1
}

func newBudget(jobs int, cpus float64, memory int64) *budget {
	b := &budget{jobs: jobs, cpus: cpus, memory: memory, busy: make([]bool, jobs)}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// need is what an action takes from the budget.
type need struct {
	cpus   float64
	memory int64
}

func needOf(r target.Resources) need {
	n := need{cpus: r.CPUs, memory: r.Memory}
	if n.cpus <= 0 {
		n.cpus = 1
	}
	return n
}

// check reports a need that can never fit, so the action fails at once
// instead of waiting forever.
func (b *budget) check(n need) error {
	switch {
	case n.cpus > b.cpus:
		return fmt.Errorf("needs %g CPUs; the budget is %g (raise it with --cpus, or lower resources.cpus)", n.cpus, b.cpus)
	case n.memory > b.memory:
		return fmt.Errorf("needs %s of memory; the budget is %s (raise it with --memory, or lower resources.memory)",
			units.FormatBytes(n.memory), units.FormatBytes(b.memory))
	}
	return nil
}

// acquire blocks until n fits or ctx is done, and returns the job slot it
// holds (from 1).
func (b *budget) acquire(ctx context.Context, n need) (int, error) {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.fits(n) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b.cond.Wait()
	}
	b.usedJobs++
	b.usedCPUs += n.cpus
	b.usedMem += n.memory
	slot := 0
	for b.busy[slot] { // fits: fewer than jobs are busy
		slot++
	}
	b.busy[slot] = true
	return slot + 1, nil
}

func (b *budget) fits(n need) bool {
	// An action that alone exceeds a dimension was refused by check; an
	// idle budget always admits the rest.
	return b.usedJobs < b.jobs &&
		b.usedCPUs+n.cpus <= b.cpus+1e-9 &&
		b.usedMem+n.memory <= b.memory
}

// release gives back n and the slot acquire returned with it.
func (b *budget) release(n need, slot int) {
	b.mu.Lock()
	b.busy[slot-1] = false
	b.usedJobs--
	b.usedCPUs -= n.cpus
	b.usedMem -= n.memory
	b.cond.Broadcast()
	b.mu.Unlock()
}
