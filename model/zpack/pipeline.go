package zpack

import (
	"context"
	"errors"
	"sync"
)

// ordered runs produce in its own goroutine, work on the items it emits in
// workers goroutines, and consume in the calling goroutine in the order
// the items were emitted. At most depth+2 items exist at once, so memory
// stays bounded whatever the input size. The first error stops everything
// and is returned; the goroutines have exited when ordered returns.
func ordered[T any](ctx context.Context, workers, depth int,
	produce func(ctx context.Context, emit func(T) error) error,
	work func(worker int, item T) (T, error),
	consume func(item T) error,
) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type slot struct {
		item T
		err  error
		done chan struct{}
	}
	queue := make(chan *slot, depth) // in emission order, for consume
	jobs := make(chan *slot)         // for the workers
	var wg sync.WaitGroup
	var prodErr error

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		defer close(jobs)
		prodErr = produce(ctx, func(item T) error {
			s := &slot{item: item, done: make(chan struct{})}
			select {
			case queue <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
		if prodErr != nil {
			cancel()
		}
	}()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				s.item, s.err = work(i, s.item)
				close(s.done)
			}
		}()
	}

	err := func() error {
		for s := range queue {
			select {
			case <-s.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if s.err != nil {
				return s.err
			}
			if err := consume(s.item); err != nil {
				return err
			}
		}
		return nil
	}()
	cancel()
	wg.Wait()

	isCtx := func(e error) bool {
		return errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded)
	}
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case err != nil && !isCtx(err):
		return err
	case prodErr != nil && !isCtx(prodErr):
		return prodErr
	case err != nil:
		return err
	default:
		return prodErr
	}
}

// bufPool recycles byte slices within one call (never shared between
// calls, so there is no package-level state).
type bufPool chan []byte

func newBufPool(n int) bufPool { return make(bufPool, n) }

// get returns a slice of length n, reusing a pooled one when it is large
// enough.
func (p bufPool) get(n int) []byte {
	select {
	case b := <-p:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

// take returns a pooled slice of length 0, or nil when none is pooled.
func (p bufPool) take() []byte {
	select {
	case b := <-p:
		return b
	default:
		return nil
	}
}

// put offers b for reuse; it is dropped if the pool is full.
func (p bufPool) put(b []byte) {
	if b == nil {
		return
	}
	select {
	case p <- b[:0]:
	default:
	}
}
