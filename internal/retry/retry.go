// Package retry holds what every client that retries needs: the wait
// before the next attempt, and a sleep that a context can cut short.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff returns the wait before attempt+1 (attempt counts from 1):
// base doubled per attempt, capped at limit, with jitter in [d/2, d] so that
// clients failing together do not retry in step.
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	d := limit
	if attempt >= 1 && attempt < 63 {
		if s := base << (attempt - 1); s > 0 && s < limit {
			d = s
		}
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or returns the context's cause when it is done first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
