package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, limit := 100*time.Millisecond, time.Second
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 80: time.Second} {
		for range 50 {
			if d := Backoff(attempt, base, limit); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestSleepCancelled(t *testing.T) {
	cause := errors.New("stopped")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, cause) || time.Since(start) > time.Second {
		t.Fatalf("Sleep = %v after %v", err, time.Since(start))
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
