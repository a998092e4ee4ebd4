// Package testproc supervises the servers tests start as child processes
// (the S3 server of internal/s3test, the OCI registry of
// internal/registrytest): each in its own process group, its output
// appended to a log file, started and waited for until it answers, killed
// as a crash would look to a client, and started again on the same address
// and data.
package testproc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long a starting server may take to answer.
const StartTimeout = 20 * time.Second

// Process is one supervised server. Set its fields before Start.
type Process struct {
	Name    string           // the program, for messages: "versitygw"
	Addr    string           // "127.0.0.1:PORT", for messages
	LogPath string           // where its output is appended
	Command func() *exec.Cmd // a new command for each start
	Answers func() bool      // whether it serves yet

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// Start runs the server and waits until it answers; a server that exits
// or does not answer within StartTimeout is an error quoting its log.
func (p *Process) Start() error {
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := p.Command()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Stop and signals reach only it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(StartTimeout)
	for !p.Answers() {
		select {
		case <-done:
			return fmt.Errorf("%s exited at start: %s", p.Name, p.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("%s did not answer on %s within %v: %s", p.Name, p.Addr, StartTimeout, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// Stop kills the server and waits for it to exit; its data stays for
// Relaunch. Stop is idempotent.
func (p *Process) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Relaunch stops the server and starts it again on the same address.
func (p *Process) Relaunch() error {
	p.Stop()
	var err error
	// The old listening socket may linger for a moment after the kill.
	for attempt := 0; attempt < 50; attempt++ {
		if err = p.Start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("restarting %s: %w", p.Name, err)
}

// Pid is the running server's process id (its process group's too), 0
// while it is stopped.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// LogTail returns the end of the server's log, for error messages.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(empty log)"
	}
	return "log: " + string(b)
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RandomHex returns 2n random hex characters.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FindBinary finds a server's program: $env when set (it must exist), else
// name on PATH, else name as a regular file in one of dirs (described as
// where, for the message).
func FindBinary(env, name, where string, dirs ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, in %s or $%s", name, where, env)
}

// Missing skips a test whose server's program was not found, saying how to
// install it, or fails it under CI=true, where a missing server is a
// broken installation rather than a reason to skip.
func Missing(t testing.TB, what string, err error, install string) {
	t.Helper()
	msg := fmt.Sprintf("no %s: %v; install it with: %s", what, err, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing server is a failure, not a skip)")
	}
	t.Skip(msg)
}
