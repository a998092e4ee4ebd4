package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testCluster returns a Config for a running one-node cluster: the one
// named by COGUMI_SLURM_CONF, or one started for this test with
// scripts/slurm-test-cluster.sh and stopped when the test ends. Without
// Slurm (or root) the test is skipped, except in CI, where it must run.
func testCluster(t *testing.T) (cfg Config, ownCluster bool) {
	t.Helper()
	cfg = Config{Partition: "gpu", PollInterval: 500 * time.Millisecond, CancelWait: 30 * time.Second}
	if conf := os.Getenv("COGUMI_SLURM_CONF"); conf != "" {
		cfg.ClientEnv = []string{"SLURM_CONF=" + conf}
		return cfg, false
	}
	ci := os.Getenv("CI") == "true"
	if _, err := exec.LookPath("sbatch"); err != nil && !ci {
		t.Skip("sbatch not installed (scripts/slurm-test-cluster.sh installs Slurm; CI=true makes this test run)")
	}
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("starting a test Slurm cluster needs root")
		}
		t.Skip("starting a test Slurm cluster needs root; or set COGUMI_SLURM_CONF to a running cluster's slurm.conf")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "slurm-test-cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", dir)
	// Four CPU slots for two GPUs: a waiting GPU job then waits for a GPU,
	// not for a CPU.
	cmd.Env = append(os.Environ(), "COGUMI_SLURM_CPUS=4")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Cleanup(func() {
		stop := exec.Command(script, "stop", dir)
		if b, err := stop.CombinedOutput(); err != nil {
			t.Errorf("stopping the test cluster: %v\n%s", err, b)
		}
	})
	if err != nil {
		t.Fatalf("starting the test cluster: %v\n%s", err, stderr.String())
	}
	conf, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "export SLURM_CONF=")
	if !ok {
		t.Fatalf("start printed %q, want export SLURM_CONF=...", out)
	}
	cfg.ClientEnv = []string{"SLURM_CONF=" + conf}
	return cfg, true
}

// syncBuffer is a log writer that the test can read while Submit writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gpuScript prints the devices Slurm gave the job and when it ran.
const gpuScript = `echo "start $(date +%s.%N) devices=$CUDA_VISIBLE_DEVICES"
sleep 2
echo "end $(date +%s.%N)"
`

type run struct {
	res     *Result
	err     error
	log     *syncBuffer
	states  []string
	devices string
	start   float64
	end     float64
}

func TestClusterJobs(t *testing.T) {
	cfg, own := testCluster(t)
	shared := t.TempDir()
	ctx := context.Background()

	submit := func(name string, gpus int, script string, running chan<- string) *run {
		r := &run{log: &syncBuffer{}}
		job := Job{
			Name: name, Script: script, WorkDir: shared,
			LogPath:   filepath.Join(shared, name+"-%j.log"),
			Env:       map[string]string{"COGUMI_TEST": name},
			Resources: Resources{GPUs: gpus, CPUs: 1, Memory: 100 << 20, Time: 5 * time.Minute},
			Log:       r.log,
			Progress: func(s Status) {
				r.states = append(r.states, s.State+"/"+s.Reason)
				if s.State == "RUNNING" && running != nil {
					running <- name
				}
			},
		}
		r.res, r.err = cfg.Submit(ctx, job)
		if r.err == nil {
			for _, f := range strings.Fields(r.log.String()) {
				if v, ok := strings.CutPrefix(f, "devices="); ok {
					r.devices = v
				}
			}
			fmt.Sscanf(r.log.String(), "start %f devices=%s\nend %f", &r.start, new(string), &r.end)
		}
		return r
	}

	t.Run("gpus", func(t *testing.T) {
		running := make(chan string, 8)
		runs := map[string]*run{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := func(name string, gpus int) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := submit(name, gpus, gpuScript, running)
				mu.Lock()
				runs[name] = r
				mu.Unlock()
			}()
		}
		start("one-a", 1)
		start("one-b", 1)
		for range 2 {
			select {
			case <-running:
			case <-time.After(60 * time.Second):
				t.Fatal("the two 1-GPU jobs did not both start")
			}
		}
		// Both GPUs are busy now; with 4 CPU slots only GPUs are short.
		busy := nodeInfo(t, cfg)
		start("one-c", 1)
		start("two", 2)
		wg.Wait()
		for name, r := range runs {
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
			t.Logf("%s: job %s %s, CUDA_VISIBLE_DEVICES=%s, ran %.2f..%.2f, states %v",
				name, r.res.JobID, r.res.State, r.devices, r.start, r.end, r.states)
			if !strings.Contains(r.log.String(), "end ") {
				t.Errorf("%s: streamed log %q lacks the job's last line", name, r.log.String())
			}
		}
		a, b, c, two := runs["one-a"], runs["one-b"], runs["one-c"], runs["two"]
		if a.devices == "" || b.devices == "" || a.devices == b.devices || strings.Contains(a.devices, ",") || strings.Contains(b.devices, ",") {
			t.Errorf("1-GPU jobs got devices %q and %q, want one different device each", a.devices, b.devices)
		}
		if two.devices != "0,1" {
			t.Errorf("the 2-GPU job got CUDA_VISIBLE_DEVICES=%q, want 0,1", two.devices)
		}
		if first := min(a.end, b.end); c.start < first {
			t.Errorf("third 1-GPU job started at %.2f, before a GPU was free at %.2f", c.start, first)
		}
		if !strings.HasPrefix(strings.Join(c.states, " "), "PENDING/") {
			t.Errorf("third 1-GPU job states %v, want it PENDING first", c.states)
		}
		t.Logf("while the third job waited, the node had %s", busy)
		if own && !strings.Contains(busy, "CPUAlloc=2 ") {
			t.Errorf("node while both GPUs were busy: %s; want 2 of 4 CPUs allocated", busy)
		}
	})

	t.Run("failure", func(t *testing.T) {
		r := submit("fails", 0, "echo about to fail >&2\nexit 3\n", nil)
		var jerr *JobError
		if !errors.As(r.err, &jerr) {
			t.Fatalf("failing job: err = %v, want a *JobError", r.err)
		}
		t.Logf("error: %v", r.err)
		if r.res.State != "FAILED" || r.res.ExitCode != 3 {
			t.Errorf("failing job: state %s exit %d, want FAILED 3", r.res.State, r.res.ExitCode)
		}
		if !strings.Contains(r.res.LogTail, "about to fail") || !strings.Contains(r.err.Error(), "about to fail") {
			t.Errorf("log tail %q (error %v) lacks the job's output", r.res.LogTail, r.err)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pidFile := filepath.Join(shared, "sleeper.pid")
		log := &syncBuffer{}
		type out struct {
			res *Result
			err error
		}
		done := make(chan out, 1)
		go func() {
			res, err := cfg.Submit(cctx, Job{
				Name: "sleeper", WorkDir: shared, LogPath: filepath.Join(shared, "sleeper-%j.log"), Log: log,
				Script: "echo $$ > " + pidFile + "\necho started\nsleep 300\necho not cancelled\n",
			})
			done <- out{res, err}
		}()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(log.String(), "started") {
			if time.Now().After(deadline) {
				t.Fatal("the job to cancel did not start")
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancelled := time.Now()
		cancel()
		var o out
		select {
		case o = <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("Submit did not return after its context was cancelled")
		}
		t.Logf("returned %.1f s after cancel: %v", time.Since(cancelled).Seconds(), o.err)
		if !errors.Is(o.err, context.Canceled) || o.res == nil || o.res.State != "CANCELLED" {
			t.Fatalf("cancelled job: result %+v, err %v; want CANCELLED and context.Canceled", o.res, o.err)
		}
		st, err := cfg.run(ctx, "scontrol", "show", "job", "-o", o.res.JobID)
		if err != nil || !strings.Contains(st, "JobState=CANCELLED") {
			t.Errorf("scontrol after cancel: %v %s", err, st)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("the cancelled job's shell (pid %d) still runs", pid)
		}
	})
}

// nodeInfo returns the node's allocation fields from scontrol show node.
func nodeInfo(t *testing.T, cfg Config) string {
	out, err := cfg.run(context.Background(), "scontrol", "show", "node", "-o", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	f := ParseJobInfo(out)
	return fmt.Sprintf("CPUAlloc=%s CPUTot=%s Gres=%s", f["CPUAlloc"], f["CPUTot"], f["Gres"])
}

// zombie reports whether pid has exited but not been reaped: in a
// container whose init does not reap, a killed job stays a zombie.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}
