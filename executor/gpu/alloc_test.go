package gpu

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func mixed(t *testing.T) []Device {
	t.Helper()
	devs, err := parseQuery(a100 + "\n" + h100m)
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

func TestCheck(t *testing.T) {
	one := twoH100(t)[:1]
	tests := []struct {
		devs    []Device
		need    Need
		wantErr string
	}{
		{one, Need{Count: 1, Type: "h100", Memory: "80GB"}, ""},
		{one, Need{Count: 0, Type: "b200"}, ""},
		{one, Need{Count: 2, Type: "h100"}, "needs 2 GPUs of type h100; this machine has 1 NVIDIA H100 80GB HBM3"},
		{one, Need{Count: 1, Type: "a100"}, "needs 1 GPU of type a100; this machine has 1 NVIDIA H100 80GB HBM3"},
		{nil, Need{Count: 1}, "needs 1 GPU; this machine has no GPUs"},
		{one, Need{Count: 1, Memory: "80GiB"}, "needs 1 GPU with at least 80GiB of memory; this machine has 1 NVIDIA H100 80GB HBM3 " +
			"(needs 80 GiB of GPU memory; NVIDIA H100 80GB HBM3 has 81559 MiB = 79.6 GiB (85.5 GB): did you mean 80GB?)"},
		{mixed(t), Need{Count: 2, Memory: "40GB"}, ""},
		{mixed(t), Need{Count: 2, Memory: "80GB"}, "needs 2 GPUs with at least 80GB of memory; this machine has 1 NVIDIA A100-PCIE-40GB and 1 NVIDIA H100 80GB HBM3"},
		{one, Need{Count: 1, Memory: "eighty"}, `GPU memory "eighty"`},
		{one, Need{Count: -1}, "cannot be negative"},
	}
	for _, tt := range tests {
		a := NewAllocator(tt.devs)
		err := a.Check(tt.need)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Check(%+v): %v", tt.need, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Check(%+v) = %v, want %q", tt.need, err, tt.wantErr)
		}
		// Acquire must fail the same way at once instead of waiting.
		if _, aerr := a.Acquire(context.Background(), tt.need); aerr == nil || aerr.Error() != err.Error() {
			t.Errorf("Acquire(%+v) = %v, want %v", tt.need, aerr, err)
		}
	}
}

// TestAcquireExclusive runs many holders at once and checks that no
// device ever has two of them.
func TestAcquireExclusive(t *testing.T) {
	a := NewAllocator(append(twoH100(t), mixed(t)...)) // four devices (UUIDs differ)
	var (
		mu      sync.Mutex
		holders = map[string]int{}
		wg      sync.WaitGroup
	)
	errs := make(chan error, 64)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			need := Need{Count: 1 + i%3}
			devs, err := a.Acquire(context.Background(), need)
			if err != nil {
				errs <- err
				return
			}
			if len(devs) != need.Count {
				errs <- errors.New("wrong number of devices")
			}
			mu.Lock()
			for _, d := range devs {
				holders[d.UUID]++
				if holders[d.UUID] > 1 {
					errs <- errors.New("two holders of " + d.UUID)
				}
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			for _, d := range devs {
				holders[d.UUID]--
			}
			mu.Unlock()
			a.Release(devs)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(a.Free()); got != 4 {
		t.Errorf("%d devices free after every release, want 4", got)
	}
}

func TestAcquireWaits(t *testing.T) {
	a := NewAllocator(twoH100(t))
	ctx := context.Background()
	both, err := a.Acquire(ctx, Need{Count: 2, Type: "h100"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []Device)
	go func() {
		devs, err := a.Acquire(ctx, Need{Count: 1, Type: "h100"})
		if err != nil {
			t.Error(err)
		}
		got <- devs
	}()
	select {
	case devs := <-got:
		t.Fatalf("Acquire returned %v while every device was busy", devs)
	case <-time.After(50 * time.Millisecond):
	}
	a.Release(both[1:])
	select {
	case devs := <-got:
		if len(devs) != 1 || devs[0].UUID != both[1].UUID {
			t.Fatalf("Acquire after release = %v, want %v", devs, both[1:])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire still waiting after a device was released")
	}
}

func TestAcquireCancel(t *testing.T) {
	a := NewAllocator(twoH100(t)[:1])
	held, err := a.Acquire(context.Background(), Need{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := a.Acquire(ctx, Need{Count: 1})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for 1 GPU") {
			t.Fatalf("cancelled Acquire = %v, want a context.Canceled naming the need", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire ignored its cancelled context")
	}
	a.Release(held)
	if len(a.Free()) != 1 {
		t.Fatal("the cancelled Acquire took a device")
	}
}

func TestAcquireBestFit(t *testing.T) {
	a := NewAllocator(mixed(t))
	ctx := context.Background()
	// Any card with 40 GB: the A100 is enough, so the H100 stays free.
	draft, err := a.Acquire(ctx, Need{Count: 1, Memory: "40GB"})
	if err != nil {
		t.Fatal(err)
	}
	if !MatchType(draft[0], "a100") {
		t.Fatalf("a 40GB need got %v, want the A100", draft)
	}
	base, err := a.Acquire(ctx, Need{Count: 1, Type: "h100", Memory: "80GB"})
	if err != nil {
		t.Fatal(err)
	}
	if !MatchType(base[0], "h100") {
		t.Fatalf("an h100 need got %v", base)
	}
	if got, want := VisibleDevices(base), "GPU-h100h100-0000-0000-0000-000000000001"; got != want {
		t.Errorf("CUDA_VISIBLE_DEVICES = %q, want %q", got, want)
	}
	// A typed need waits for its type even when another card is free.
	a.Release(draft)
	ctx2, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if devs, err := a.Acquire(ctx2, Need{Count: 1, Type: "h100"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("h100 need with only an A100 free = %v, %v; want it to wait", devs, err)
	}
}
