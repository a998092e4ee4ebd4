package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cogumi/cogumi/internal/s3test"
)

// TestCrashConsistencyUploads is TestCrashConsistency with a remote cache:
// each build uploads what it runs to a local S3 server and is killed with
// SIGKILL after a random delay, so that kills land while results and blobs
// go up. After each kill, `cogumi cache verify` finds nothing wrong, `cogumi
// cache push` completes what the killed build did not upload, and a second
// clone (its own empty local cache, the same bucket) builds the graph
// without a warning and with the right outputs: no result is visible in the
// bucket before its blobs, and no half-uploaded blob is served. Runs: as
// for TestCrashConsistency (COGUMI_CRASH_RUNS, default 5; -short skips).
func TestCrashConsistencyUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("kills builds for several seconds")
	}
	runs, seed := crashSettings(t)
	t.Logf("%d runs, seed %d (COGUMI_CRASH_SEED=%d repeats them)", runs, seed, seed)
	srv := s3test.Start(t)
	rng := rand.New(rand.NewSource(seed))
	bin := buildCogumi(t)
	a := newFaultEnv(t, bin)
	b := &faultEnv{bin: bin, ws: filepath.Join(t.TempDir(), "ws"), cache: filepath.Join(t.TempDir(), "cache")}
	if err := os.Mkdir(b.ws, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFaultWorkspace(t, b.ws)
	remote := fmt.Sprintf("\nremote_cache {\n  url      = \"s3://%s/crash\"\n  endpoint = %q\n}\n", srv.Bucket, srv.Endpoint)
	for _, ws := range []string{a.ws, b.ws} {
		f, err := os.OpenFile(filepath.Join(ws, "cogumi.hcl"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(remote)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	creds := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + srv.Region}
	command := func(e *faultEnv, vars map[string]string, args ...string) *exec.Cmd {
		cmd := e.command(vars, args...)
		cmd.Env = append(cmd.Env, creds...)
		return cmd
	}
	run := func(e *faultEnv, what string, vars map[string]string, args ...string) string {
		t.Helper()
		out, err := command(e, vars, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: cogumi %s: %v\n%s", what, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	killed := 0
	for i := range runs {
		salt := "up" + strconv.Itoa(i)
		vars := map[string]string{"salt": salt, "trace": "/dev/null"}
		delay := time.Duration(rng.Int63n(int64(2500 * time.Millisecond)))
		what := fmt.Sprintf("run %d (salt %s, kill at %v)", i, salt, delay)

		cmd := command(a, vars, "build", "//...")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: the build failed before it was killed: %v\n%s", what, err, out.String())
			}
			t.Logf("%s: finished first", what)
		case <-time.After(delay):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
			t.Logf("%s: killed, %d actions had finished", what, strings.Count(out.String(), "DONE "))
		}
		if out, err := command(a, nil, "cache", "verify").CombinedOutput(); err != nil {
			t.Fatalf("%s: cache verify: %v\n%s", what, err, out)
		}
		run(a, what, vars, "cache", "push")

		// Clone B starts from an empty local cache each time.
		if err := os.RemoveAll(b.cache); err != nil {
			t.Fatal(err)
		}
		ev := filepath.Join(b.ws, "events.jsonl")
		log := run(b, what, vars, "build", "--download", "all", "--events", ev, "//...")
		if strings.Contains(log, "warning") {
			t.Errorf("%s: clone B warned:\n%s", what, log)
		}
		for label, result := range readEvents(t, ev) {
			if r := result[0]; r != "built" && r != "remote" && r != "cached" {
				t.Errorf("%s: clone B: %s: %s", what, label, r)
			}
		}
		sameOutputs(t, what+", clone B", b.outputs(t), modelOutputs(salt))

		// Clone A finishes its own build with the right outputs.
		run(a, what, vars, "build", "//...")
		sameOutputs(t, what+", clone A", a.outputs(t), modelOutputs(salt))
	}
	t.Logf("%d of %d builds killed (uploads run after every action); verify, push and a second clone's build were right every time", killed, runs)
}
