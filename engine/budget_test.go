package engine

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many goroutines asking for random needs never push the budget past its
// limits in any dimension.
func TestBudgetNeverOverSubscribes(t *testing.T) {
	b := newBudget(3, 4, 8<<30)
	needs := []need{{cpus: 1}, {cpus: 2}, {cpus: 4}, {cpus: 1, memory: 6 << 30}, {cpus: 0.5}}
	var running, cpus100, mem atomic.Int64
	var slots [3]atomic.Bool // held, by slot
	var wg sync.WaitGroup
	for i := range 200 {
		n := needs[i%len(needs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot, err := b.acquire(context.Background(), n)
			if err != nil {
				t.Error(err)
				return
			}
			if running.Add(1) > 3 || cpus100.Add(int64(n.cpus*100)) > 400 || mem.Add(n.memory) > 8<<30 {
				t.Errorf("over-subscribed after admitting %+v", n)
			}
			if slot < 1 || slot > 3 {
				t.Errorf("slot %d, want 1 to 3", slot)
				return
			}
			if slots[slot-1].Swap(true) {
				t.Errorf("slot %d handed out while held", slot)
			}
			time.Sleep(100 * time.Microsecond)
			running.Add(-1)
			cpus100.Add(-int64(n.cpus * 100))
			mem.Add(-n.memory)
			slots[slot-1].Store(false)
			b.release(n, slot)
		}()
	}
	wg.Wait()
}

func TestBudgetCheckRefusesWhatCanNeverFit(t *testing.T) {
	b := newBudget(2, 2, 1<<30)
	for _, c := range []struct {
		n    need
		want string
	}{
		{need{cpus: 8}, "needs 8 CPUs; the budget is 2"},
		{need{cpus: 1, memory: 2 << 30}, "needs 2.0 GiB of memory; the budget is 1.0 GiB"},
	} {
		err := b.check(c.n)
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("check(%+v) = %v, want %q", c.n, err, c.want)
		}
	}
	if err := b.check(need{cpus: 2, memory: 1 << 30}); err != nil {
		t.Errorf("a need equal to the budget was refused: %v", err)
	}
}

func TestBudgetAcquireStopsOnCancel(t *testing.T) {
	b := newBudget(1, 1, 1<<30)
	if _, err := b.acquire(context.Background(), need{cpus: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := b.acquire(ctx, need{cpus: 1})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("acquire succeeded on a full budget")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("acquire did not return after cancel")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
