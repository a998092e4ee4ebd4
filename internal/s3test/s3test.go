// Package s3test starts a real S3-compatible server (versitygw) on 127.0.0.1
// for tests: a fresh data directory, a free port, root credentials and one
// bucket. Tests that need it call Start; when the versitygw binary cannot be
// found they are skipped with a message saying how to install it, except
// under CI=true, where a missing server fails the test instead (a skipped
// remote-cache suite in CI would hide regressions).
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cogumi/cogumi/internal/testproc"
)

// InstallCommand installs the server binary the tests use.
const InstallCommand = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// EnvBinary names the environment variable that may point at the binary.
const EnvBinary = "COGUMI_VERSITYGW"

// Server is one running versitygw process serving a fresh directory.
type Server struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Bucket exists and is empty when Start returns.
	Bucket string
	// Region is the region the server answers for.
	Region string

	dataDir string
	proc    *testproc.Process
}

// Binary finds the versitygw binary: $COGUMI_VERSITYGW, then PATH, then
// $(go env GOPATH)/bin (where go install puts it, often not on PATH).
func Binary() (string, error) {
	return testproc.FindBinary(EnvBinary, "versitygw", "$(go env GOPATH)/bin", gopathBins()...)
}

// gopathBins lists the bin directories of $GOBIN and GOPATH (env or default).
func gopathBins() []string {
	var dirs []string
	if b := os.Getenv("GOBIN"); b != "" {
		dirs = append(dirs, b)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		// Asking the go command is slower but exact; fall back to its default.
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		} else if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, p := range filepath.SplitList(gopath) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
}

// Start starts a server with a fresh data directory and bucket, stopped when
// the test ends. Without the binary it skips the test (fails under CI=true).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testproc.Missing(t, "S3 test server", err, InstallCommand)
	}
	s, err := Launch(bin, t.TempDir())
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Launch starts bin serving a fresh data directory under dir, with one empty
// bucket, for callers that have no testing.TB (testscript commands). The
// caller stops it; a non-nil Server comes back even with an error, so that
// what did start can be stopped.
func Launch(bin, dir string) (*Server, error) {
	s := &Server{
		AccessKey: "cogumi" + testproc.RandomHex(6),
		SecretKey: testproc.RandomHex(20),
		Bucket:    "cogumi-test",
		Region:    "us-east-1",
		dataDir:   filepath.Join(dir, "data"),
	}
	s.proc = &testproc.Process{
		Name:    "versitygw",
		LogPath: filepath.Join(dir, "versitygw.log"),
		Command: func() *exec.Cmd {
			cmd := exec.Command(bin, "--port", s.Addr, "--quiet", "--keep-alive", "posix", s.dataDir)
			// Credentials go through the environment, never the command line (ps).
			cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
			return cmd
		},
		Answers: func() bool { return answers(s.Endpoint) },
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return s, err
	}
	// A port found free may be taken before the server binds it: try again.
	for attempt := 0; ; attempt++ {
		port, err := testproc.FreePort()
		if err != nil {
			return s, err
		}
		s.Addr = "127.0.0.1:" + strconv.Itoa(port)
		s.Endpoint = "http://" + s.Addr
		s.proc.Addr = s.Addr
		if err = s.proc.Start(); err == nil {
			break
		}
		if attempt == 2 {
			return s, fmt.Errorf("starting versitygw: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testproc.StartTimeout)
	defer cancel()
	c, err := s.Minio()
	if err != nil {
		return s, err
	}
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return s, fmt.Errorf("creating bucket %s on %s: %w", s.Bucket, s.Endpoint, err)
	}
	return s, nil
}

// answers reports whether an HTTP server responds at endpoint.
func answers(endpoint string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(endpoint + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Stop kills the server (as a crash or a network cut would look to a
// client) and waits for it to exit. Its data stays for Restart. Stop is
// idempotent.
func (s *Server) Stop() { s.proc.Stop() }

// Restart starts the server again on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Relaunch(); err != nil {
		t.Fatal(err)
	}
}

// Relaunch is Restart for callers without a testing.TB.
func (s *Server) Relaunch() error { return s.proc.Relaunch() }

// Pause freezes the server (SIGSTOP): connections are still accepted by the
// kernel but nothing answers, like a hung server. Resume undoes it.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	pid := s.signal(t, syscall.SIGSTOP)
	// The signal is asynchronous: wait until the process is really stopped,
	// or a request sent now might still be answered.
	for range 500 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // not Linux: best effort
		}
		if _, rest, ok := bytes.Cut(b, []byte(") ")); ok && len(rest) > 0 && rest[0] == 'T' {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("versitygw did not stop on SIGSTOP")
}

// Resume lets a paused server run again.
func (s *Server) Resume(t testing.TB) { s.signal(t, syscall.SIGCONT) }

// signal sends sig to the server's process group and returns its pid.
func (s *Server) signal(t testing.TB, sig syscall.Signal) int {
	t.Helper()
	pid := s.proc.Pid()
	if pid == 0 {
		t.Fatal("versitygw is not running")
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		t.Fatalf("signalling versitygw: %v", err)
	}
	return pid
}

// Env sets the AWS_* variables minio-go's credential chain reads, for the
// rest of the test (t.Setenv: such tests cannot run in parallel).
func (s *Server) Env(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", s.Region)
}

// Client returns a plain minio-go client with the root credentials, for
// tests that inspect or damage objects behind the store's back.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := s.Minio()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Minio is Client for callers without a testing.TB.
func (s *Server) Minio() (*minio.Client, error) {
	return minio.New(s.Addr, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       false,
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
}

// CPUTime returns the user and system time the server has used so far
// (Linux only; zero elsewhere), for benchmarks that compare clients.
func (s *Server) CPUTime() time.Duration {
	pid := s.proc.Pid()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of stat (utime, stime) in clock ticks, 100 a second
	// on Linux.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// DataDir is the directory the server stores buckets in.
func (s *Server) DataDir() string { return s.dataDir }
