package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashRuns is how many builds TestCrashConsistency kills; a test flag must
// be registered at package level. COGUMI_CRASH_RUNS overrides the default.
var crashRuns = flag.Int("crash.runs", 0, "builds TestCrashConsistency kills (default 5, or $COGUMI_CRASH_RUNS)")

// faultGraph is the graph of the fault tests' workspace: target i depends
// on the targets listed. Chains (4-7, 16-19) and fan-ins (10, 15, 18, 19).
func faultGraph() [][]int {
	return [][]int{
		{}, {}, {}, {},
		{0}, {4}, {5}, {6},
		{1, 2}, {2, 3}, {8, 9, 4}, {10},
		{11, 7}, {3}, {13, 12}, {0, 1, 2, 3},
		{15, 14}, {16}, {17, 5, 9}, {18, 15, 11},
	}
}

// writeFaultWorkspace writes a workspace of 20 run targets that sleep
// 10-200 ms and write 1-4 MiB each (a file whose bytes depend on var.salt
// and on every input, a summary of the inputs, and for every fourth target
// an executable in a subdirectory). With var.trace set, each appends
// "start tNN SECONDS" and "end tNN SECONDS" to that file.
func writeFaultWorkspace(t *testing.T, dir string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`locals {
  trace = "echo start $NAME $(date +%s.%N) >> $TRACE"
  done  = "echo end $NAME $(date +%s.%N) >> $TRACE"
}
`)
	for i, deps := range faultGraph() {
		name := fmt.Sprintf("t%02d", i)
		var srcs []string
		for _, d := range deps {
			srcs = append(srcs, fmt.Sprintf(`":t%02d"`, d))
		}
		outs := `"head.txt", "data.bin"`
		extra := ""
		if i%4 == 0 {
			outs += `, "bin"`
			extra = ` && mkdir $OUT/bin && printf '#!/bin/sh\necho ` + name + `\n' > $OUT/bin/run.sh && chmod +x $OUT/bin/run.sh`
		}
		sleep := 10 + i*37%191
		size := (1 + i%4) << 20
		fmt.Fprintf(&b, `run %q {
  srcs    = [%s]
  outs    = [%s]
  command = "${local.trace}; sleep %d.%03d; { echo $NAME salt=$SALT; cat /dev/null $SRCS | sha256sum; } > $OUT/head.txt && yes \"$NAME $SALT\" | head -c %d > $OUT/data.bin%s; ${local.done}"
  env     = { NAME = %q, SALT = var.salt, TRACE = var.trace }
}
`, name, strings.Join(srcs, ", "), outs, sleep/1000, sleep%1000, size, extra, name)
	}
	settings := `workspace {
  name = "fault"
}
variable "salt" {
  default = "0"
}
variable "trace" {
  default = "/dev/null"
}
`
	for name, content := range map[string]string{"cogumi.hcl": settings, "BUILD.hcl": b.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// faultEnv runs cogumi binaries against one workspace and cache.
type faultEnv struct {
	bin, ws, cache string
}

// buildCogumi builds the command into a temporary directory.
func buildCogumi(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build cogumi with")
	}
	bin := filepath.Join(t.TempDir(), "cogumi")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newFaultEnv(t *testing.T, bin string) *faultEnv {
	t.Helper()
	root := t.TempDir()
	e := &faultEnv{bin: bin, ws: filepath.Join(root, "ws"), cache: filepath.Join(root, "cache")}
	if err := os.Mkdir(e.ws, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFaultWorkspace(t, e.ws)
	return e
}

// command returns cogumi ARGS run in the workspace with only the host's
// non-cogumi environment, the cache and the given variables.
func (e *faultEnv) command(vars map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = e.ws
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COGUMI_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "COGUMI_CACHE_DIR="+e.cache, "XDG_CACHE_HOME="+filepath.Join(filepath.Dir(e.cache), "xdg"))
	for k, v := range vars {
		cmd.Env = append(cmd.Env, "COGUMI_VAR_"+k+"="+v)
	}
	return cmd
}

// run runs cogumi to completion and fails the test if it does not exit 0.
func (e *faultEnv) run(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	out, err := e.command(vars, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cogumi %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// outputs returns every file under cogumi-out (but its .cogumi directory)
// as path -> "sha256 mode".
func (e *faultEnv) outputs(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join(e.ws, "cogumi-out")
	got := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		switch {
		case err != nil:
			return err
		case d.IsDir() && rel == ".cogumi":
			return filepath.SkipDir
		case d.IsDir() && strings.HasPrefix(d.Name(), "."):
			got[rel+"/"] = "directory" // what an interrupted link left
			return nil
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			got[rel] = d.Type().String()
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		got[rel] = hex.EncodeToString(sum[:]) + " " + info.Mode().Perm().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sameOutputs fails the test if got and want differ, naming the paths.
func sameOutputs(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, "missing "+p)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "unexpected "+p)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("%s: outputs differ from what the commands make:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// modelOutputs returns the outputs writeFaultWorkspace's commands make
// with salt, computed here, in the form of (*faultEnv).outputs: so that a
// run with a new salt needs no reference build.
func modelOutputs(salt string) map[string]string {
	graph := faultGraph()
	files := make([]map[string][]byte, len(graph)) // target -> path -> content
	out := make(map[string]string)
	for i, deps := range graph {
		name := fmt.Sprintf("t%02d", i)
		in := sha256.New()
		for _, d := range deps {
			paths := make([]string, 0, len(files[d]))
			for p := range files[d] {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				in.Write(files[d][p])
			}
		}
		line := []byte(name + " " + salt + "\n")
		data := bytes.Repeat(line, (1+i%4)<<20/len(line)+1)[:(1+i%4)<<20]
		files[i] = map[string][]byte{
			"head.txt": fmt.Appendf(nil, "%s salt=%s\n%x  -\n", name, salt, in.Sum(nil)),
			"data.bin": data,
		}
		if i%4 == 0 {
			files[i]["bin/run.sh"] = []byte("#!/bin/sh\necho " + name + "\n")
		}
		for p, b := range files[i] {
			mode := fs.FileMode(0o444)
			if strings.HasPrefix(p, "bin/") {
				mode = 0o555
			}
			sum := sha256.Sum256(b)
			out[name+"/"+p] = hex.EncodeToString(sum[:]) + " " + mode.String()
		}
	}
	return out
}

// TestFaultWorkspaceModel checks modelOutputs against a plain build.
func TestFaultWorkspaceModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a workspace of 20 actions")
	}
	e := newFaultEnv(t, buildCogumi(t))
	e.run(t, map[string]string{"salt": "7"}, "build", "//...")
	sameOutputs(t, "a plain build", e.outputs(t), modelOutputs("7"))
}

// crashSettings returns how many builds TestCrashConsistency kills and
// the seed of its choices: -crash.runs or COGUMI_CRASH_RUNS (default 5),
// COGUMI_CRASH_SEED (default the clock).
func crashSettings(t *testing.T) (runs int, seed int64) {
	runs, seed = *crashRuns, time.Now().UnixNano()
	var err error
	if s := os.Getenv("COGUMI_CRASH_RUNS"); s != "" && runs == 0 {
		if runs, err = strconv.Atoi(s); err != nil {
			t.Fatalf("COGUMI_CRASH_RUNS=%q: %v", s, err)
		}
	}
	if s := os.Getenv("COGUMI_CRASH_SEED"); s != "" {
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("COGUMI_CRASH_SEED=%q: %v", s, err)
		}
	}
	if runs <= 0 {
		runs = 5
	}
	return runs, seed
}

// TestCrashConsistency kills `cogumi build` with SIGKILL and checks after
// each kill that `cogumi cache verify` finds nothing wrong and that the next
// build succeeds with the right outputs. Half the kills come after a random
// delay (mostly while actions run); the others a few milliseconds after an
// action's command finished, while cogumi hashes its outputs into the
// cache, records its result and links it under cogumi-out. One workspace
// and one cache serve every run; a run builds new keys, or after a kill,
// half the time, the same keys again (resuming what the killed run left,
// and killed in turn).
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("kills builds for several seconds")
	}
	runs, seed := crashSettings(t)
	t.Logf("%d runs, seed %d (COGUMI_CRASH_SEED=%d repeats them)", runs, seed, seed)
	rng := rand.New(rand.NewSource(seed))
	e := newFaultEnv(t, buildCogumi(t))
	trace := filepath.Join(t.TempDir(), "trace")
	killed, resumed, salt, resume := 0, 0, "", false
	for i := range runs {
		if resume {
			resumed++
		} else {
			salt = strconv.Itoa(i) // new keys: everything to build
		}
		vars := map[string]string{"salt": salt, "trace": trace}
		if err := os.WriteFile(trace, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var kill <-chan time.Time
		var what string
		n, jitter := 1+rng.Intn(len(faultGraph())), time.Duration(rng.Int63n(int64(3*time.Millisecond)))
		switch rng.Intn(3) {
		case 0:
			delay := time.Duration(rng.Int63n(int64(1500 * time.Millisecond)))
			kill, what = time.After(delay), fmt.Sprintf("run %d (salt %s, kill at %v)", i, salt, delay)
		case 1:
			// While outputs are adopted, linked and their stat recorded.
			kill = afterActions(trace, "end ", n, jitter)
			what = fmt.Sprintf("run %d (salt %s, kill %v after the end of action %d)", i, salt, jitter, n)
		default:
			// Just after an action's inputs were staged (copies, symlinks
			// and, for root, read-only mounts in its namespace).
			kill = afterActions(trace, "start ", n, jitter)
			what = fmt.Sprintf("run %d (salt %s, kill %v after the start of action %d)", i, salt, jitter, n)
		}
		log, wasKilled := e.buildUntil(t, what, vars, kill)
		if wasKilled {
			killed++
			t.Logf("%s: killed, %d actions had finished", what, strings.Count(log, "DONE "))
		} else {
			t.Logf("%s: finished first", what)
		}
		if out, err := e.command(nil, "cache", "verify").CombinedOutput(); err != nil {
			t.Fatalf("%s: cache verify: %v\n%s\nthe killed build said:\n%s", what, err, out, log)
		}
		// After a kill, half the time the next run builds the same keys
		// again and is killed too, resuming from what this one left.
		if resume = wasKilled && i+1 < runs && rng.Intn(2) == 0; resume {
			continue
		}
		ev := filepath.Join(e.ws, "events.jsonl")
		e.run(t, vars, "build", "--events", ev, "//...")
		for label, result := range readEvents(t, ev) {
			if result[0] != "built" && result[0] != "cached" {
				t.Errorf("%s: %s: %s in the next build", what, label, result[0])
			}
		}
		sameOutputs(t, what, e.outputs(t), modelOutputs(salt))
	}
	t.Logf("%d of %d builds killed (%d runs resumed a killed build); cache verify found nothing and every next build was right",
		killed, runs, resumed)
}

// buildUntil runs `cogumi build //...` until it exits, which must be with
// success, or kill fires and it is killed with SIGKILL. It returns what the
// build printed.
func (e *faultEnv) buildUntil(t *testing.T, what string, vars map[string]string, kill <-chan time.Time) (log string, killed bool) {
	t.Helper()
	cmd := e.command(vars, "build", "//...")
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
	case <-kill:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		killed = true
	}
	return out.String(), killed
}

// afterActions fires jitter after the trace file holds n lines holding word
// ("end " or "start "), or after 5 s, when the build has fewer actions left
// to run.
func afterActions(trace, word string, n int, jitter time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			b, _ := os.ReadFile(trace)
			if bytes.Count(b, []byte(word)) >= n {
				break
			}
		}
		time.Sleep(jitter)
		c <- time.Now()
	}()
	return c
}

// readEvents returns the results of an --events file by label.
func readEvents(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string][]string)
	for dec := json.NewDecoder(bytes.NewReader(b)); dec.More(); {
		var ev struct{ Label, Result string }
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s: bad event: %v", path, err)
		}
		got[ev.Label] = append(got[ev.Label], ev.Result)
	}
	return got
}

// TestConcurrentBuilds starts four `cogumi build //...` processes at once on
// one workspace and cache: all succeed with the right outputs, every
// action runs exactly once (never twice at the same time), and the other
// processes wait for it and take its result from the cache.
func TestConcurrentBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four builds of several seconds")
	}
	want := modelOutputs("0") // the default salt
	e := newFaultEnv(t, buildCogumi(t))
	trace := filepath.Join(t.TempDir(), "trace")
	vars := map[string]string{"trace": trace}
	const procs = 4
	var wg sync.WaitGroup
	errs := make([]error, procs)
	logs := make([][]byte, procs)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := filepath.Join(e.ws, fmt.Sprintf("events%d.jsonl", p))
			logs[p], errs[p] = e.command(vars, "build", "--events", ev, "//...").CombinedOutput()
		}()
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil {
			t.Fatalf("build %d: %v\n%s", p, errs[p], logs[p])
		}
	}
	sameOutputs(t, "after four concurrent builds", e.outputs(t), want)

	results := make(map[string][]string)
	for p := range procs {
		for label, r := range readEvents(t, filepath.Join(e.ws, fmt.Sprintf("events%d.jsonl", p))) {
			results[label] = append(results[label], r...)
		}
	}
	if len(results) != len(faultGraph()) {
		t.Errorf("events name %d targets, want %d", len(results), len(faultGraph()))
	}
	for label, rs := range results {
		sort.Strings(rs)
		if strings.Join(rs, " ") != "built cached cached cached" {
			t.Errorf("%s: results %v, want built once and cached three times", label, rs)
		}
	}
	checkTrace(t, trace)
	if out := e.run(t, nil, "cache", "verify"); !strings.Contains(out, " 0 problems") {
		t.Errorf("cache verify: %s", out)
	}
}

// checkTrace checks that each target of the trace ran exactly once: never
// twice at the same time, and not again after another process ran it.
func checkTrace(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	open, runs := make(map[string]int), make(map[string]int)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad trace line %q", line)
		}
		if f[0] == "end" {
			open[f[1]]--
			continue
		}
		runs[f[1]]++
		if open[f[1]]++; open[f[1]] > 1 {
			t.Errorf("%s ran twice at the same time", f[1])
		}
	}
	if len(runs) != len(faultGraph()) {
		t.Errorf("trace names %d targets, want %d", len(runs), len(faultGraph()))
	}
	for name, n := range runs {
		if n != 1 {
			t.Errorf("%s ran %d times, want once", name, n)
		}
	}
}
