package s3

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/internal/s3test"
)

// The 2 GiB benchmark is opt-in: it writes about 10 GiB to disk.
//
//	COGUMI_BENCH_S3=1 go test ./cache/s3 -run '^$' -bench PushPull2GiB -benchtime 1x
//
// COGUMI_BENCH_S3_SIZE (bytes) changes the size; COGUMI_BENCH_S3_DATA=random
// uses incompressible bytes instead of bfloat16-like weights;
// COGUMI_BENCH_S3_CONC sets Config.Concurrency; COGUMI_BENCH_S3_PROF=DIR
// writes a CPU profile of each transfer there. Each transfer runs in a
// child process so that its peak RSS (VmHWM) and CPU time are its own; the
// order of cogumi and minio-go alternates between iterations.
const (
	envBench     = "COGUMI_BENCH_S3"
	envBenchSize = "COGUMI_BENCH_S3_SIZE"
	envBenchData = "COGUMI_BENCH_S3_DATA"
	envChild     = "COGUMI_BENCH_S3_CHILD" // JSON benchJob, in the child
)

// benchJob is what the parent asks a child to do.
type benchJob struct {
	Op                     string // cogumi-push, cogumi-pull, minio-push, minio-pull
	Endpoint, Bucket, Addr string
	Prefix, Path, Digest   string
	Size                   int64
}

// benchResult is what a child reports on its last line of output.
type benchResult struct {
	Seconds   float64
	PeakRSS   int64   // bytes (VmHWM)
	CPU       float64 // seconds of user and system time
	ServerCPU float64 // the server's, measured by the parent
	Requests  int64
	Wire      int64 // bytes over HTTP, for cogumi
}

func BenchmarkPushPull2GiB(b *testing.B) {
	if os.Getenv(envBench) == "" {
		b.Skipf("set %s=1 to run (moves 2 GiB each way, needs ~10 GiB of disk)", envBench)
	}
	size := int64(2 << 30)
	if v := os.Getenv(envBenchSize); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q", envBenchSize, v)
		}
		size = n
	}
	srv := s3test.Start(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "weights.bin")
	writeWeights(b, src, size, os.Getenv(envBenchData) == "random")
	d, _, err := cache.DigestFile(src)
	if err != nil {
		b.Fatal(err)
	}
	job := benchJob{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Addr: srv.Addr, Digest: d.String(), Size: size}
	run := func(op, prefix, path string) benchResult {
		j := job
		j.Op, j.Prefix, j.Path = op, prefix, path
		return runChild(b, srv, j)
	}
	mb := float64(size) / 1e6
	sum := map[string]benchResult{}
	for i := 0; i < b.N; i++ {
		prefix := fmt.Sprintf("bench%d", i)
		// Alternate which of a pair goes first: on some VMs the first
		// process to touch fresh page-cache memory pays for it.
		for _, pair := range [][2]string{{"cogumi-push", "minio-push"}, {"cogumi-pull", "minio-pull"}} {
			if i%2 == 1 {
				pair[0], pair[1] = pair[1], pair[0]
			}
			for _, op := range pair {
				path := src
				if strings.HasSuffix(op, "pull") {
					path = filepath.Join(dir, "pulled")
				}
				// Start each transfer without the previous one's dirty
				// pages being written back under it.
				syscall.Sync()
				c0 := srv.CPUTime()
				r := run(op, prefix, path)
				r.ServerCPU = (srv.CPUTime() - c0).Seconds()
				_ = os.Remove(filepath.Join(dir, "pulled"))
				fmt.Printf("%-12s %6.2f s %7.1f MB/s  CPU %5.2f s (server %5.2f s)  peak RSS %5.0f MiB  %d requests  %d wire bytes\n",
					op, r.Seconds, mb/r.Seconds, r.CPU, r.ServerCPU, float64(r.PeakRSS)/(1<<20), r.Requests, r.Wire)
				t := sum[op]
				t.Seconds += r.Seconds
				t.PeakRSS = max(t.PeakRSS, r.PeakRSS)
				sum[op] = t
			}
		}
	}
	for op, r := range sum {
		b.ReportMetric(mb*float64(b.N)/r.Seconds, op+"-MB/s")
		b.ReportMetric(float64(r.PeakRSS)/(1<<20), op+"-peakRSS-MiB")
	}
}

// writeWeights writes size bytes that compress like bfloat16 weights of a
// trained model (random signs and mantissas, exponents clustered around
// 2^-6), or random bytes.
func writeWeights(b *testing.B, path string, size int64, random bool) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 8<<20)
	rng := mrand.NewChaCha8([32]byte{42})
	buf := make([]byte, 8<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		_, _ = rng.Read(buf)
		if !random {
			for i := 0; i+1 < len(buf); i += 2 {
				r := buf[i+1]
				exp := 122 - min(bits.LeadingZeros8(r), 6) // geometric around 2^-5
				buf[i+1] = r&0x80 | byte(exp>>1)
				buf[i] = byte(exp&1)<<7 | buf[i]&0x7f
			}
		}
		if _, err := w.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// runChild runs one transfer in a child process (TestBenchChild).
func runChild(b *testing.B, srv *s3test.Server, j benchJob) benchResult {
	b.Helper()
	spec, _ := json.Marshal(j)
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.v")
	cmd.Env = append(os.Environ(), envChild+"="+string(spec),
		"AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", j.Op, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "BENCHRESULT "); ok {
			var r benchResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				b.Fatal(err)
			}
			return r
		}
	}
	b.Fatalf("%s: no result in\n%s", j.Op, out)
	return benchResult{}
}

// TestBenchChild is the child side of BenchmarkPushPull2GiB.
func TestBenchChild(t *testing.T) {
	spec := os.Getenv(envChild)
	if spec == "" {
		t.Skip("run by BenchmarkPushPull2GiB")
	}
	var j benchJob
	if err := json.Unmarshal([]byte(spec), &j); err != nil {
		t.Fatal(err)
	}
	d, err := cache.ParseDigest(j.Digest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var s *Store
	if strings.HasPrefix(j.Op, "cogumi") {
		conc, _ := strconv.Atoi(os.Getenv("COGUMI_BENCH_S3_CONC"))
		s, err = Open(ctx, Config{URL: "s3://" + j.Bucket + "/" + j.Prefix, Endpoint: j.Endpoint, Upload: true, Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
	}
	mc, err := minio.New(j.Addr, &minio.Options{Creds: credentials.NewEnvAWS(), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	key := j.Prefix + "/minio/" + j.Digest
	if dir := os.Getenv("COGUMI_BENCH_S3_PROF"); dir != "" {
		f, err := os.Create(filepath.Join(dir, j.Op+".prof"))
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	switch j.Op {
	case "cogumi-push":
		err = s.PutFile(ctx, d, j.Size, j.Path)
	case "cogumi-pull":
		err = s.GetFile(ctx, d, j.Size, j.Path)
	case "minio-push":
		var f *os.File
		if f, err = os.Open(j.Path); err == nil {
			// A plain stream: hide ReadAt, which minio-go would use for
			// parallel parts.
			_, err = mc.PutObject(ctx, j.Bucket, key, struct{ io.Reader }{f}, j.Size, minio.PutObjectOptions{})
			f.Close()
		}
	case "minio-pull":
		err = minioPull(ctx, mc, j.Bucket, key, j.Path)
	default:
		err = fmt.Errorf("unknown op %q", j.Op)
	}
	secs := time.Since(start).Seconds()
	if err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	r := benchResult{Seconds: secs, PeakRSS: peakRSS(t), CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()}
	if s != nil {
		st := s.Stats()
		r.Requests, r.Wire = st.Requests, st.BytesUp+st.BytesDown
	}
	out, _ := json.Marshal(r)
	fmt.Printf("BENCHRESULT %s\n", out)
}

// minioPull streams an object into a file with one GET.
func minioPull(ctx context.Context, mc *minio.Client, bucket, key, path string) error {
	obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, obj); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// peakRSS reads this process's VmHWM.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	return 0
}
