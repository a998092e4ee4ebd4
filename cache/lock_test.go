package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockWaitsForHolder(t *testing.T) {
	c := openTestCache(t)
	k := KeyFromRecords([]string{"lock"})
	ctx := context.Background()
	unlock, err := c.Lock(ctx, k, func() { t.Error("first locker waited") })
	if err != nil {
		t.Fatal(err)
	}
	var waits atomic.Int32
	var released atomic.Bool
	done := make(chan error)
	go func() {
		unlock2, err := c.Lock(ctx, k, func() { waits.Add(1) })
		if err == nil {
			if !released.Load() {
				err = errors.New("second locker got the lock while the first held it")
			}
			unlock2()
		}
		done <- err
	}()
	// Wait until the second locker is waiting, then hold a little longer.
	for deadline := time.Now().Add(5 * time.Second); waits.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("onWait not called")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	released.Store(true)
	unlock()
	unlock() // harmless
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second locker never got the lock")
	}
	if n := waits.Load(); n != 1 {
		t.Errorf("onWait called %d times, want 1", n)
	}
	// Other keys are independent.
	u1, err := c.Lock(ctx, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	u2, err := c.Lock(ctx, KeyFromRecords([]string{"other"}), func() { t.Error("other key waited") })
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestLockContextCancel(t *testing.T) {
	c := openTestCache(t)
	k := KeyFromRecords([]string{"cancel"})
	unlock, err := c.Lock(context.Background(), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := c.Lock(ctx, k, func() { close(waiting) })
		done <- err
	}()
	<-waiting
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Lock after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not return after cancel")
	}
	if _, err := c.Lock(ctx, KeyFromRecords([]string{"free"}), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a done context = %v", err)
	}
}

// TestLockHelperProcess is not a test: it is the other process of
// TestLockAcrossProcesses, which runs the test binary again to run it.
func TestLockHelperProcess(t *testing.T) {
	dir, key := os.Getenv("COGUMI_LOCK_DIR"), os.Getenv("COGUMI_LOCK_KEY")
	if dir == "" {
		t.Skip("helper process only")
	}
	c, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseActionKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(context.Background(), k, nil); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute) // until killed
}

// A lock held by another process makes Lock wait, and is released when that
// process dies without unlocking.
func TestLockAcrossProcesses(t *testing.T) {
	c := openTestCache(t)
	k := KeyFromRecords([]string{"two processes"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "COGUMI_LOCK_DIR="+c.Dir(), "COGUMI_LOCK_KEY="+k.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	waited := make(chan struct{})
	go func() {
		<-waited
		time.Sleep(50 * time.Millisecond)
		_ = cmd.Process.Kill()
	}()
	unlock, err := c.Lock(context.Background(), k, func() { close(waited) })
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	select {
	case <-waited:
	default:
		t.Error("Lock did not wait for the other process")
	}
}
