// Package registrytest starts a real OCI registry (the distribution
// server, Debian's docker-registry package) on 127.0.0.1 for tests: a
// generated configuration, a fresh storage directory, a free port and,
// when asked, htpasswd authentication with one user. Tests that need it
// call Start; when the binary is missing they are skipped with a message
// saying how to install it, except under CI=true, where a missing server
// fails the test instead (as internal/s3test does).
package registrytest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cogumi/cogumi/internal/testproc"
)

// InstallCommand installs the server binary the tests use.
const InstallCommand = "apt-get install -y docker-registry"

// EnvBinary names the environment variable that may point at the binary.
const EnvBinary = "COGUMI_DOCKER_REGISTRY"

// Server is one running registry serving a fresh storage directory.
type Server struct {
	// Addr is "127.0.0.1:PORT", the registry's host in references.
	Addr string
	// User and Password are the one account when started with auth, else "".
	User, Password string

	dir  string
	proc *testproc.Process
}

// Binary finds the registry: $COGUMI_DOCKER_REGISTRY, then docker-registry
// on PATH, then /usr/bin/docker-registry.
func Binary() (string, error) {
	return testproc.FindBinary(EnvBinary, "docker-registry", "/usr/bin", "/usr/bin")
}

// Start starts a registry, stopped when the test ends; with auth, it
// requires User and Password. Without the binary it skips the test (fails
// under CI=true).
func Start(t testing.TB, auth bool) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testproc.Missing(t, "test registry", err, InstallCommand)
	}
	s, err := Launch(bin, t.TempDir(), auth)
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Launch starts bin with its configuration and storage under dir, for
// callers without a testing.TB (testscript commands). The caller stops it;
// a non-nil Server comes back even with an error.
func Launch(bin, dir string, auth bool) (*Server, error) {
	s := &Server{dir: dir}
	s.proc = &testproc.Process{
		Name:    "docker-registry",
		LogPath: filepath.Join(dir, "registry.log"),
		Command: func() *exec.Cmd { return exec.Command(bin, "serve", filepath.Join(dir, "config.yml")) },
		Answers: s.answers,
	}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return s, err
	}
	if auth {
		s.User, s.Password = "cogumi", testproc.RandomHex(12)
		h, err := bcrypt.GenerateFromPassword([]byte(s.Password), bcrypt.MinCost)
		if err != nil {
			return s, err
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(s.User+":"+string(h)+"\n"), 0o600); err != nil {
			return s, err
		}
	}
	// A port found free may be taken before the server binds it: try again.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var port int
		if port, err = testproc.FreePort(); err != nil {
			return s, err
		}
		s.Addr = "127.0.0.1:" + strconv.Itoa(port)
		s.proc.Addr = s.Addr
		if err = s.writeConfig(auth); err != nil {
			return s, err
		}
		if err = s.proc.Start(); err == nil {
			return s, nil
		}
	}
	return s, fmt.Errorf("starting docker-registry: %w", err)
}

func (s *Server) writeConfig(auth bool) error {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
`, filepath.Join(s.dir, "storage"), s.Addr, testproc.RandomHex(16))
	if auth {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: cogumi-test\n    path: %s\n", filepath.Join(s.dir, "htpasswd"))
	}
	return os.WriteFile(filepath.Join(s.dir, "config.yml"), []byte(cfg), 0o600)
}

// answers reports whether the registry's API root responds (200, or 401
// when it requires credentials).
func (s *Server) answers() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + s.Addr + "/v2/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
}

// Stop kills the registry, as a crash would look to a client, and waits
// for it to exit. Its storage stays for Relaunch. Stop is idempotent.
func (s *Server) Stop() { s.proc.Stop() }

// Relaunch starts the registry again on the same address and storage.
func (s *Server) Relaunch() error { return s.proc.Relaunch() }

// Get sends an authenticated GET for path ("/v2/...") with the given Accept
// header and returns the status and body, for tests that check what a
// registry holds through its HTTP API.
func (s *Server) Get(path, accept string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if s.User != "" {
		req.SetBasicAuth(s.User, s.Password)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}

// BlobFile is where the registry stores the blob with this hex SHA-256
// (the distribution server's filesystem layout), for tests that damage it.
func (s *Server) BlobFile(sha256hex string) string {
	return filepath.Join(s.dir, "storage", "docker", "registry", "v2", "blobs", "sha256", sha256hex[:2], sha256hex, "data")
}
