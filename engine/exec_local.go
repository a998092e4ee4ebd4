package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// killGrace is how long an action's process group has between SIGTERM and
// SIGKILL when the build is cancelled.
const killGrace = 5 * time.Second

// runLocal runs argv in dir in a process group of its own, so cancelling
// stops the command and everything it started, with the files of readOnly
// protected (see startProtected).
func runLocal(ctx context.Context, dir string, argv, env []string, log io.Writer, readOnly []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if _, err := startProtected(cmd, readOnly); err != nil {
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitError(err)
	case <-ctx.Done():
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(killGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Whatever the group left behind dies with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return ctx.Err()
}

func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("command killed by signal %s", ws.Signal())
		}
		return fmt.Errorf("command exited with status %d", ee.ExitCode())
	}
	return err
}
