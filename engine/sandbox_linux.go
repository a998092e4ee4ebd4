package engine

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// startProtected starts cmd in a mount namespace of its own in which every
// path of readOnly is bind-mounted read-only over itself: the action sees
// its inputs where they are, and nothing it does, as root too, writes
// through them (chmod and writes fail with EROFS) short of remounting on
// purpose. It reports false, having started cmd without a namespace, where
// the system allows none (not root, no CAP_SYS_ADMIN, a container that
// forbids unshare or mount); verifyInputs then catches what the action
// changed, after the fact.
//
// The namespace is made on a locked OS thread that cmd is forked from and
// that ends with the goroutine (it is never unlocked), so no other
// goroutine ever runs in it.
func startProtected(cmd *exec.Cmd, readOnly []string) (bool, error) {
	if len(readOnly) == 0 {
		return false, cmd.Start()
	}
	type started struct {
		protected bool
		err       error
	}
	done := make(chan started, 1)
	go func() {
		runtime.LockOSThread()
		protected, err := enterReadOnlyNamespace(readOnly)
		if err != nil {
			done <- started{err: err}
			return
		}
		done <- started{protected, cmd.Start()}
	}()
	s := <-done
	return s.protected, s.err
}

// enterReadOnlyNamespace moves the calling thread into a new mount
// namespace, private to it, and makes each path read-only there.
func enterReadOnlyNamespace(readOnly []string) (bool, error) {
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		if notAllowed(err) {
			return false, nil
		}
		return false, fmt.Errorf("protecting the inputs: unshare: %w", err)
	}
	// Mounts made here must not propagate to the rest of the system.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		if notAllowed(err) {
			return false, nil
		}
		return false, fmt.Errorf("protecting the inputs: %w", err)
	}
	for i, p := range readOnly {
		err := syscall.Mount(p, p, "", syscall.MS_BIND, "")
		if err == nil {
			err = syscall.Mount("", p, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
		}
		if err != nil {
			if i == 0 && notAllowed(err) {
				return false, nil
			}
			return false, fmt.Errorf("protecting input %s: %w", p, err)
		}
	}
	return true, nil
}

func notAllowed(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL)
}
