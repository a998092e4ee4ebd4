package testproc

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The test binary doubles as the supervised server: with
// TESTPROC_SERVE=ADDR it serves HTTP there, with TESTPROC_FAIL it prints
// and exits at once.
func TestMain(m *testing.M) {
	if msg := os.Getenv("TESTPROC_FAIL"); msg != "" {
		os.Stderr.WriteString(msg + "\n")
		os.Exit(3)
	}
	if addr := os.Getenv("TESTPROC_SERVE"); addr != "" {
		_ = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func server(t *testing.T, env string) *Process {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := &Process{
		Name: "test server", Addr: addr, LogPath: filepath.Join(t.TempDir(), "log"),
		Command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), strings.ReplaceAll(env, "ADDR", addr))
			return cmd
		},
		Answers: func() bool {
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return true
		},
	}
	t.Cleanup(p.Stop)
	return p
}

func TestStartStopRelaunch(t *testing.T) {
	p := server(t, "TESTPROC_SERVE=ADDR")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	first := p.Pid()
	if first == 0 || !p.Answers() {
		t.Fatalf("running: pid %d, answers %v", first, p.Answers())
	}
	p.Stop()
	if p.Pid() != 0 || syscall.Kill(first, 0) == nil {
		t.Fatalf("after Stop: pid %d, process %d still there", p.Pid(), first)
	}
	p.Stop() // idempotent
	if err := p.Relaunch(); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == 0 || p.Pid() == first || !p.Answers() {
		t.Fatalf("after Relaunch: pid %d (first %d), answers %v", p.Pid(), first, p.Answers())
	}
}

func TestExitAtStartQuotesTheLog(t *testing.T) {
	p := server(t, "TESTPROC_FAIL=no such bucket directory")
	err := p.Start()
	if err == nil || !strings.Contains(err.Error(), "test server exited at start: log: no such bucket directory") {
		t.Fatalf("Start = %v, want the exit and the log's line", err)
	}
}
