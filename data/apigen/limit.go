package apigen

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cogumi/cogumi/internal/retry"
)

// Rate is a number of requests per period; the zero Rate is no limit.
type Rate struct {
	N   int
	Per time.Duration
}

func (r Rate) String() string {
	if r.N == 0 {
		return "unlimited"
	}
	for _, u := range rateUnits {
		if r.Per == u.d {
			return fmt.Sprintf("%d/%s", r.N, u.names[0])
		}
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

var rateUnits = []struct {
	names []string
	d     time.Duration
}{
	{[]string{"s", "sec", "second"}, time.Second},
	{[]string{"min", "m", "minute"}, time.Minute},
	{[]string{"h", "hour"}, time.Hour},
	{[]string{"day", "d"}, 24 * time.Hour},
}

// ParseRate reads "600/min", "10/s", "36000/hour" or "1000/day".
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: write requests per period, e.g. \"600/min\" or \"10/s\"", s)
	}
	v, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || v < 1 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a positive whole number of requests", s, n)
	}
	unit = strings.TrimSpace(unit)
	for _, u := range rateUnits {
		for _, name := range u.names {
			if unit == name {
				return Rate{N: v, Per: u.d}, nil
			}
		}
	}
	return Rate{}, fmt.Errorf("rate %q: unknown period %q (use s, min, hour or day)", s, unit)
}

// bucket is a token bucket holding at most one token: requests are spaced
// evenly at the rate, so a per-minute limit is never exceeded in any
// window, whatever the concurrency.
type bucket struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time // when the next token is available
}

func newBucket(r Rate) *bucket {
	if r.N <= 0 {
		return nil
	}
	return &bucket{interval: r.Per / time.Duration(r.N)}
}

// wait blocks until the caller may send, or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	if b == nil {
		return ctx.Err()
	}
	b.mu.Lock()
	now := time.Now()
	at := b.next
	if at.Before(now) {
		at = now
	}
	b.next = at.Add(b.interval)
	b.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	return retry.Sleep(ctx, d)
}

// budget tracks money: what was spent, and the worst case of every request
// in flight, so that no request is sent that could take the total over the
// limit.
type budget struct {
	max      float64 // 0: no limit
	mu       sync.Mutex
	spent    float64
	reserved float64
	stopped  bool
}

// reserve claims worst for a request about to be sent; false when it could
// overspend (and from then on, for every later request too: the run stops
// sending rather than picking cheaper requests out of order).
func (b *budget) reserve(worst float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && (b.stopped || b.spent+b.reserved+worst > b.max) {
		b.stopped = true
		return false
	}
	b.reserved += worst
	return true
}

// settle releases a reservation and records what the request really cost
// (0 when it failed: failed requests are not billed).
func (b *budget) settle(worst, cost float64) {
	b.mu.Lock()
	b.reserved -= worst
	b.spent += cost
	b.mu.Unlock()
}

// recharge counts an attempt that may have been billed at worst, and keeps
// the reservation for the next attempt if that still fits (settle releases
// it either way). False: the next attempt could overspend; stop sending.
func (b *budget) recharge(worst float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spent += worst
	if b.max > 0 && (b.stopped || b.spent+b.reserved > b.max) {
		b.stopped = true
		return false
	}
	return true
}

func (b *budget) get() (spent float64, stopped bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent, b.stopped
}
