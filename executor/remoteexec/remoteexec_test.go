package remoteexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/cache/s3"
	"github.com/cogumi/cogumi/engine/label"
	"github.com/cogumi/cogumi/engine/target"
	"github.com/cogumi/cogumi/executor/slurm"
	"github.com/cogumi/cogumi/internal/s3test"
)

func TestScratchPlaceholder(t *testing.T) {
	const scratch = "/c/scratch/pid1-ab"
	for _, tc := range []struct{ in, enc, job string }{
		{"OUT=/c/scratch/pid1-ab/out", "OUT=${COGUMI_SCRATCH}/out", "OUT=/j/s/out"},
		{"/c/scratch/pid1-ab", "${COGUMI_SCRATCH}", "/j/s"},
		{"P=/c/scratch/pid1-ab/a:/c/scratch/pid1-ab/b", "P=${COGUMI_SCRATCH}/a:${COGUMI_SCRATCH}/b", "P=/j/s/a:/j/s/b"},
		// A longer name that starts like the scratch path is another file.
		{"X=/c/scratch/pid1-abc /c/scratch/pid1-ab.d", "X=/c/scratch/pid1-abc /c/scratch/pid1-ab.d", "X=/c/scratch/pid1-abc /c/scratch/pid1-ab.d"},
		// Dollars of the user's own survive, the placeholder's text too.
		{"echo $OUT $$ ${COGUMI_SCRATCH}", "echo $$OUT $$$$ $${COGUMI_SCRATCH}", "echo $OUT $$ ${COGUMI_SCRATCH}"},
		{"", "", ""},
		{"a$", "a$$", "a$"},
	} {
		enc := encodeScratch(tc.in, scratch)
		if enc != tc.enc {
			t.Errorf("encodeScratch(%q) = %q, want %q", tc.in, enc, tc.enc)
		}
		dec, err := decodeScratch(enc, "/j/s")
		if err != nil || dec != tc.job {
			t.Errorf("decodeScratch(%q) = %q, %v; want %q", enc, dec, err, tc.job)
		}
	}
	for _, bad := range []string{"$", "a$b", "${COGUMI_SCRATC}", "${OTHER}"} {
		if _, err := decodeScratch(bad, "/j"); err == nil {
			t.Errorf("decodeScratch(%q): no error", bad)
		}
	}
}

func validSpec() *Spec {
	d := cache.DigestBytes([]byte("x"))
	return &Spec{
		Version: SpecVersion, Label: "//:x", Argv: []string{"/bin/sh", "-c", "true"}, Env: []string{"A=b"},
		WorkDir: "ws", OutDir: "out", ResumeDir: ".cogumi-exec/resume", Dirs: []string{"out", "ws", "ws/a"},
		Files: []cache.FileEntry{{Path: "ws/a/b.txt", Digest: d, Size: 1}},
	}
}

func TestSpecValidate(t *testing.T) {
	if err := validSpec().validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Spec){
		"version":     func(s *Spec) { s.Version = 2 },
		"no argv":     func(s *Spec) { s.Argv = nil },
		"env":         func(s *Spec) { s.Env = []string{"novalue"} },
		"workdir up":  func(s *Spec) { s.WorkDir = "../ws" },
		"workdir abs": func(s *Spec) { s.WorkDir = "/ws" },
		"out dot":     func(s *Spec) { s.OutDir = "." },
		"resume":      func(s *Spec) { s.ResumeDir = "a/../../b" },
		"dir":         func(s *Spec) { s.Dirs = append(s.Dirs, "../etc") },
		"file":        func(s *Spec) { s.Files[0].Path = "../x" },
		"unsorted": func(s *Spec) {
			s.Files = append(s.Files, cache.FileEntry{Path: "ws/a", Digest: s.Files[0].Digest, Size: 1})
		},
	} {
		s := validSpec()
		edit(s)
		if err := s.validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBuildSpec(t *testing.T) {
	tmp := t.TempDir()
	scratch := filepath.Join(tmp, "scratch", "pid1-x")
	ws, out := filepath.Join(scratch, "ws"), filepath.Join(scratch, "out")
	src := filepath.Join(tmp, "workspace", "data", "in.txt")
	py := filepath.Join(tmp, "cache", "python", "abc")
	resume := filepath.Join(tmp, "state", "resume", "t")
	for _, d := range []string{ws, filepath.Join(ws, "data"), filepath.Join(out, "sub"), filepath.Dir(src), py, resume} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(src, "input\n", 0o755)
	if err := os.Symlink(src, filepath.Join(ws, "data", "in.txt")); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(scratch, "params.json"), "{}", 0o644)
	write(filepath.Join(scratch, "log"), "the engine's log", 0o644)
	write(filepath.Join(py, "mod.py"), "x = 1\n", 0o644)
	write(filepath.Join(resume, "ckpt"), "step\n", 0o644)
	env := []string{
		"PATH=/usr/bin", "OUT=" + out, "CUDA_VISIBLE_DEVICES=GPU-1",
		"PYTHONPATH=" + py, "COGUMI_RESUME_DIR=" + resume, "COGUMI_PARAMS=" + filepath.Join(scratch, "params.json"),
		"SHELLY=$HOME",
	}
	l, err := buildSpec(ws, []string{"/bin/sh", "-c", "cat $SRCS > $OUT/x"}, env)
	if err != nil {
		t.Fatal(err)
	}
	s := l.spec
	if l.resume != resume || s.ResumeDir != ".cogumi-exec/resume" || s.WorkDir != "ws" || s.OutDir != "out" {
		t.Errorf("resume %q, spec resume %q, work %q, out %q", l.resume, s.ResumeDir, s.WorkDir, s.OutDir)
	}
	wantEnv := []string{
		"PATH=/usr/bin", "OUT=${COGUMI_SCRATCH}/out",
		"PYTHONPATH=${COGUMI_SCRATCH}/.cogumi-exec/pythonpath/0", "COGUMI_RESUME_DIR=${COGUMI_SCRATCH}/.cogumi-exec/resume",
		"COGUMI_PARAMS=${COGUMI_SCRATCH}/params.json", "SHELLY=$$HOME",
	}
	if !slices.Equal(s.Env, wantEnv) {
		t.Errorf("env\n got %q\nwant %q", s.Env, wantEnv)
	}
	if !slices.Equal(s.Argv, []string{"/bin/sh", "-c", "cat $$SRCS > $$OUT/x"}) {
		t.Errorf("argv %q", s.Argv)
	}
	var got []string
	for _, f := range l.files {
		got = append(got, f.rel+map[bool]string{true: " x", false: ""}[f.exec])
	}
	wantFiles := []string{".cogumi-exec/pythonpath/0/mod.py", ".cogumi-exec/resume/ckpt", "params.json", "ws/data/in.txt x"}
	if !slices.Equal(got, wantFiles) {
		t.Errorf("files %q, want %q", got, wantFiles)
	}
	wantDirs := []string{".cogumi-exec", ".cogumi-exec/pythonpath", ".cogumi-exec/pythonpath/0", ".cogumi-exec/resume", "out", "out/sub", "ws", "ws/data"}
	if !slices.Equal(s.Dirs, wantDirs) {
		t.Errorf("dirs %q, want %q", s.Dirs, wantDirs)
	}

	// A symlink loop is an error, not a hang.
	if err := os.Symlink(ws, filepath.Join(ws, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := buildSpec(ws, []string{"true"}, nil); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("loop: %v", err)
	}
}

var specArg = regexp.MustCompile(`'([0-9a-f]{64})'\n$`)

// TestExecThroughCache runs an action the way a Slurm job of an executor
// without shared_dir does, with exec-action in this process instead of a
// job and a client that cannot see the job's log file: the inputs go up,
// the job runs in a directory of its own, the outputs and the log come
// back, the resume directory of a failed attempt too, and the job's
// message to the client is deleted.
func TestExecThroughCache(t *testing.T) {
	srv := s3test.Start(t)
	srv.Env(t)
	ctx := context.Background()
	rc := s3.Config{URL: "s3://" + srv.Bucket + "/team", Endpoint: srv.Endpoint, Upload: true}
	client, err := s3.Open(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	jobStore, err := s3.Open(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	var jobOut bytes.Buffer
	tr := &Transit{Store: client, URL: rc.URL, Endpoint: rc.Endpoint}
	submit := func(ctx context.Context, job slurm.Job) (*slurm.Result, error) {
		m := specArg.FindStringSubmatch(job.Script)
		if m == nil {
			t.Fatalf("no spec in the script:\n%s", job.Script)
		}
		if !strings.Contains(job.Script, "'exec-action' '--remote-cache' '"+rc.URL+"' '--remote-endpoint' '"+rc.Endpoint+"'") {
			t.Errorf("script:\n%s", job.Script)
		}
		d, err := cache.ParseDigest(m[1])
		if err != nil {
			t.Fatal(err)
		}
		res := &slurm.Result{Status: slurm.Status{JobID: "7", State: "COMPLETED"}}
		if err := RunJob(ctx, jobStore, d, &jobOut); err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("exec-action: %v", err)
			}
			res.State, res.ExitCode = "FAILED", ce.Code
			return res, &slurm.JobError{Name: job.Name, Result: res}
		}
		return res, nil
	}

	tmp := t.TempDir()
	scratch := filepath.Join(tmp, "scratch", "pid1-x")
	ws, out := filepath.Join(scratch, "ws"), filepath.Join(scratch, "out")
	resume := filepath.Join(tmp, "resume")
	src := filepath.Join(tmp, "src.txt")
	for _, d := range []string{ws, filepath.Join(out, "sub"), resume} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(src, []byte("source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(ws, "src.txt")); err != nil {
		t.Fatal(err)
	}
	l, err := label.Parse("//:t", "")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target.Target{Label: l}
	env := []string{"OUT=" + out, "COGUMI_RESUME_DIR=" + resume, "PATH=" + os.Getenv("PATH")}
	cmd := `pwd > $OUT/pwd; cat src.txt > $OUT/sub/copy; printf '#!/bin/sh\n' > $OUT/run; chmod +x $OUT/run; mkdir $OUT/empty;
		if [ -f $COGUMI_RESUME_DIR/ckpt ]; then echo resumed; else echo saved > $COGUMI_RESUME_DIR/ckpt; echo failing; exit 5; fi`

	var log bytes.Buffer
	err = tr.Exec(ctx, tg, ws, []string{"/bin/sh", "-c", cmd}, env, &log, submit)
	var je *slurm.JobError
	if !errors.As(err, &je) || je.Result.ExitCode != 5 {
		t.Fatalf("first attempt: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(resume, "ckpt")); err != nil || string(b) != "saved\n" {
		t.Errorf("resume directory after a failure: %q, %v", b, err)
	}
	if !strings.Contains(log.String(), "failing\n") || !strings.Contains(log.String(), "cogumi exec-action: command exited with status 5") {
		t.Errorf("the client's log lacks the job's:\n%s", log.String())
	}

	log.Reset()
	if err := tr.Exec(ctx, tg, ws, []string{"/bin/sh", "-c", cmd}, env, &log, submit); err != nil {
		t.Fatalf("second attempt: %v\nlog:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "resumed\n") {
		t.Errorf("log:\n%s", log.String())
	}
	if b, _ := os.ReadFile(filepath.Join(out, "sub", "copy")); string(b) != "source\n" {
		t.Errorf("out/sub/copy = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "pwd")); strings.HasPrefix(string(b), scratch) || !strings.Contains(string(b), "/cogumi-exec-") {
		t.Errorf("the job ran in %q", b)
	}
	if fi, err := os.Stat(filepath.Join(out, "run")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("out/run: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "empty")); err != nil || !fi.IsDir() {
		t.Errorf("out/empty: %v", err)
	}
	if jobOut.Len() == 0 {
		t.Error("the job's own output is empty")
	}
	// Only blobs remain: the results were messages to the client.
	n := 0
	for o := range srv.Client(t).ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Prefix: "team/ac/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 0 {
		t.Errorf("%d action results left in the bucket", n)
	}
	// The spec the job read is plain JSON naming the scratch directory by
	// its placeholder.
	var spec Spec
	l2, err := buildSpec(ws, []string{"true"}, env)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(l2.spec)
	if err := json.Unmarshal(b, &spec); err != nil || !slices.Contains(spec.Env, "OUT=${COGUMI_SCRATCH}/out") {
		t.Errorf("spec env %q, %v", spec.Env, err)
	}
}
