package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Polling interval bounds while waiting for a lock another process holds.
const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 100 * time.Millisecond
)

// Lock takes the exclusive lock of action key k, shared by every process
// (and every goroutine: each call opens its own file description) using
// this cache directory. If someone else holds it, onWait (if not nil) is
// called once, and Lock waits until the lock is free or ctx is done. The
// returned unlock releases the lock; calling it more than once is harmless.
// The operating system releases the lock if the process dies.
//
// The engine takes it around "look up k, else run the action and put its
// result", so two builds never run the same action at once: the second finds
// the first's result when it gets the lock. Lock files are empty and are
// never removed (removing them would let two processes lock different files
// under one name); `clean --cache` may remove the locks directory when no
// build is running.
func (c *Local) Lock(ctx context.Context, k ActionKey, onWait func()) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("locking action %s: %w", k.Short(), context.Cause(ctx))
	}
	path := filepath.Join(c.dir, "locks", k.String()+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		// Someone removed the locks directory (clean --cache): recreate it.
		if err = os.MkdirAll(filepath.Dir(path), dirMode); err == nil {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("locking action %s: %w", k.Short(), err)
	}
	fd := int(f.Fd())
	wait := lockPollMin
	for waited := false; ; {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking action %s: %w", k.Short(), err)
		}
		if !waited {
			waited = true
			if onWait != nil {
				onWait()
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for the lock of action %s: %w", k.Short(), context.Cause(ctx))
		case <-timer.C:
		}
		wait = min(2*wait, lockPollMax)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Closing the file releases the lock.
			_ = unix.Flock(fd, unix.LOCK_UN)
			_ = f.Close()
		})
	}, nil
}
