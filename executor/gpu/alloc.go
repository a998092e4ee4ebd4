package gpu

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Need is what an action asks of the GPUs: Count whole devices, each of
// Type (a word of the device name, "" for any) with at least Memory of
// total memory ("80GB", "40GiB"; "" for any).
type Need struct {
	Count  int
	Type   string
	Memory string
}

// String describes the need as messages do: "2 GPUs of type h100 with at
// least 80GB of memory".
func (n Need) String() string {
	var b strings.Builder
	if n.Count == 1 {
		b.WriteString("1 GPU")
	} else {
		fmt.Fprintf(&b, "%d GPUs", n.Count)
	}
	if n.Type != "" {
		fmt.Fprintf(&b, " of type %s", n.Type)
	}
	if n.Memory != "" {
		fmt.Fprintf(&b, " with at least %s of memory", n.Memory)
	}
	return b.String()
}

// Allocator hands out devices so that no two holders ever share one.
// Safe for concurrent use.
//
// Waiters are not queued: whenever devices are released every waiter
// tries again, so a request for many devices can wait behind a stream of
// requests for one. The engine starts actions in its own order; on the
// few GPUs of one machine this has not been worth a fair queue.
type Allocator struct {
	devs []Device

	mu   sync.Mutex
	busy map[string]bool // by UUID
	// wake is closed, and replaced, whenever devices are released, so that
	// waiters can select on it together with their context.
	wake chan struct{}
}

// NewAllocator manages devs (typically Restrict(Detect(), COGUMI_GPUS)).
func NewAllocator(devs []Device) *Allocator {
	a := &Allocator{busy: map[string]bool{}, wake: make(chan struct{})}
	seen := map[string]bool{}
	for _, d := range devs {
		if !seen[d.UUID] {
			seen[d.UUID] = true
			a.devs = append(a.devs, d)
		}
	}
	return a
}

// Devices returns every managed device, busy or not.
func (a *Allocator) Devices() []Device { return slices.Clone(a.devs) }

// Check fails when the machine can never satisfy need, however long the
// action waits: too few devices of the type, or too little memory on
// them. Its message says what the machine has.
func (a *Allocator) Check(need Need) error {
	_, err := a.check(need)
	return err
}

// check validates need and returns its parsed memory (Bytes 0 for any).
func (a *Allocator) check(need Need) (Memory, error) {
	var mem Memory
	if need.Count < 0 {
		return mem, fmt.Errorf("needs %d GPUs: the count cannot be negative", need.Count)
	}
	if need.Memory != "" {
		m, err := ParseMemory(need.Memory)
		if err != nil {
			return mem, err
		}
		mem = m
	}
	if need.Count == 0 {
		return mem, nil
	}
	n := 0
	var memErr error
	for _, d := range a.devs {
		if !MatchType(d, need.Type) {
			continue
		}
		if err := MemoryFits(d, mem); err != nil {
			if memErr == nil {
				memErr = err
			}
			continue
		}
		n++
	}
	if n >= need.Count {
		return mem, nil
	}
	msg := fmt.Sprintf("needs %s; this machine has %s", need, describe(a.devs))
	if memErr != nil {
		msg += " (" + memErr.Error() + ")"
	}
	return mem, fmt.Errorf("%s", msg)
}

// describe summarises devices by name: "1 NVIDIA H100 80GB HBM3",
// "2 NVIDIA H100 80GB HBM3 and 1 NVIDIA A100-PCIE-40GB".
func describe(devs []Device) string {
	if len(devs) == 0 {
		return "no GPUs"
	}
	var names []string
	count := map[string]int{}
	for _, d := range devs {
		if count[d.Name] == 0 {
			names = append(names, d.Name)
		}
		count[d.Name]++
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%d %s", count[n], n)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// Acquire blocks until need.Count free devices match need, marks them
// busy and returns them; give them back with Release. A need the machine
// can never meet fails at once (see Check); a cancelled context stops the
// wait and takes nothing. A Count of 0 returns no devices at once.
func (a *Allocator) Acquire(ctx context.Context, need Need) ([]Device, error) {
	mem, err := a.check(need)
	if err != nil {
		return nil, err
	}
	if need.Count == 0 {
		return []Device{}, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", need, err)
		}
		a.mu.Lock()
		got := a.pick(need, mem)
		for _, d := range got {
			a.busy[d.UUID] = true
		}
		wake := a.wake
		a.mu.Unlock()
		if got != nil {
			return got, nil
		}
		select {
		case <-ctx.Done():
		case <-wake:
		}
	}
}

// pick chooses free matching devices, smallest memory first: a request
// that any card satisfies should leave the large cards to requests that
// need them. It returns nil when too few are free. Called with mu held.
func (a *Allocator) pick(need Need, mem Memory) []Device {
	var free []Device
	for _, d := range a.devs {
		if !a.busy[d.UUID] && MatchType(d, need.Type) && MemoryFits(d, mem) == nil {
			free = append(free, d)
		}
	}
	if len(free) < need.Count {
		return nil
	}
	slices.SortStableFunc(free, func(x, y Device) int {
		if x.MemoryMiB != y.MemoryMiB {
			return cmp.Compare(x.MemoryMiB, y.MemoryMiB)
		}
		return x.Index - y.Index
	})
	got := free[:need.Count]
	slices.SortFunc(got, func(x, y Device) int { return x.Index - y.Index })
	return got
}

// Release gives devices back and wakes the waiters. Release each
// acquisition exactly once: devices are known by UUID only, so a second
// Release of the same devices would free them under their next holder.
// Devices that are not busy, or not managed here, are ignored.
func (a *Allocator) Release(devs []Device) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range devs {
		delete(a.busy, d.UUID)
	}
	close(a.wake)
	a.wake = make(chan struct{})
}

// Free returns the devices nobody holds now.
func (a *Allocator) Free() []Device {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Device
	for _, d := range a.devs {
		if !a.busy[d.UUID] {
			out = append(out, d)
		}
	}
	return out
}
