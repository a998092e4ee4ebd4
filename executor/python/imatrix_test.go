package python

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/imatrix"
	"github.com/cogumi/cogumi/model/safetensors"
)

// llamaBins is where `npm ci` in testdata/llama puts node-llama-cpp's
// prebuilt CPU libraries, and llamaBundle the llama.cpp sources they were
// built from.
var (
	llamaBins   = filepath.Join("..", "..", "testdata", "llama", "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64")
	llamaBundle = filepath.Join("..", "..", "testdata", "llama", "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle")
)

// imatrixRef builds testdata/imatrixref.c (llama-imatrix's collection over
// node-llama-cpp's libllama) and testdata/imatrixload.cpp (llama-quantize's
// imatrix loader, from libllama-common) against the headers of the release
// it ships, taken from its git bundle, and returns the programs and the
// library directory.
func imatrixRef(t *testing.T) (ref, load, bins string) {
	t.Helper()
	needTool(t, runtime.GOOS == "linux" && runtime.GOARCH == "amd64", "the reference library is node-llama-cpp's linux-x64 build")
	bins, err := filepath.Abs(llamaBins)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := filepath.Glob(filepath.Join(bins, "libllama.*so")) // not libllama-common.so
	_, bundleErr := os.Stat(llamaBundle)
	needTool(t, len(libs) == 1 && bundleErr == nil, "node-llama-cpp is not installed under testdata/llama (npm ci there)")
	gcc, err := exec.LookPath("gcc")
	needTool(t, err == nil, "gcc not found")
	_, err = exec.LookPath("git")
	needTool(t, err == nil, "git not found")
	src := t.TempDir()
	bundle, _ := filepath.Abs(llamaBundle)
	for _, args := range [][]string{{"init", "-q"}, {"fetch", "-q", bundle, "HEAD"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cmd := exec.Command("sh", "-c", "git archive FETCH_HEAD include ggml/include common/imatrix-loader.h | tar -x")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting llama.cpp's headers: %v\n%s", err, out)
	}
	ref = filepath.Join(t.TempDir(), "imatrixref")
	args := []string{"-O2", "-I", filepath.Join(src, "include"), "-I", filepath.Join(src, "ggml", "include"),
		"-o", ref, filepath.Join("testdata", "imatrixref.c"), libs[0],
		filepath.Join(bins, "libggml-base.so"), filepath.Join(bins, "libggml.v0.4.0.so"), "-Wl,-rpath," + bins}
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("building testdata/imatrixref.c: %v\n%s", err, out)
	}
	gxx, err := exec.LookPath("g++")
	needTool(t, err == nil, "g++ not found")
	load = filepath.Join(t.TempDir(), "imatrixload")
	args = []string{"-O1", "-std=c++17", "-I", filepath.Join(src, "common"), "-o", load, filepath.Join("testdata", "imatrixload.cpp"),
		filepath.Join(bins, "libllama-common.so"), "-Wl,-rpath," + bins}
	if out, err := exec.Command(gxx, args...).CombinedOutput(); err != nil {
		t.Fatalf("building testdata/imatrixload.cpp: %v\n%s", err, out)
	}
	return ref, load, bins
}

// TestImatrixMatchesLlamaCpp runs cogumi_imatrix.py on small random-weight
// checkpoints and llama-imatrix's collection (testdata/imatrixref.c) over
// libllama on the F32 GGUF of the same checkpoint, on the same text: the
// same entries, the same token counts and chunks, the sums within 1e-4
// relative. And model/imatrix writes llama.cpp's file byte for byte: the
// reference's numbers written by imatrix.Write are the reference file; and
// llama-quantize's loader reads what the rule writes.
func TestImatrixMatchesLlamaCpp(t *testing.T) {
	py := torchPython(t)
	bin, load, bins := imatrixRef(t)
	var text strings.Builder
	for i := range 6 {
		fmt.Fprintf(&text, "Paragraph %d: the quick brown fox jumps over the lazy dog, and the build cache remembers what was built.\n\n", i)
	}
	for _, c := range []struct {
		name          string
		o             tinyllama.Options
		processOutput bool
		wantEntries   int
	}{
		{"spm-output", tinyllama.Options{DType: safetensors.F32}, true, 2*7 + 1},
		{"bpe-tied", tinyllama.Options{DType: safetensors.BF16, Tokenizer: tinyllama.BPE, TieEmbeddings: true}, true, 2 * 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ckpt := filepath.Join(dir, "ckpt")
			c.o.Seed = 1
			if err := tinyllama.Write(ckpt, c.o); err != nil {
				t.Fatal(err)
			}
			m, err := checkpoint.Open(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			rep, err := ggufconv.Convert(context.Background(), m, dir, ggufconv.Options{Type: "F32", Name: "tiny"})
			if err != nil {
				t.Fatal(err)
			}
			textPath := filepath.Join(dir, "text.txt")
			if err := os.WriteFile(textPath, []byte(text.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			const chunk = 64
			po := map[bool]string{false: "0", true: "1"}[c.processOutput]
			ref := filepath.Join(dir, "ref.gguf")
			cmd := exec.Command(bin, bins, filepath.Join(dir, rep.File), textPath, fmt.Sprint(chunk), po, "text.txt", ref)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("imatrixref: %v\n%s", err, stderr.Bytes())
			}
			t.Logf("libllama: %s", bytes.TrimSpace(out))

			params := filepath.Join(dir, "params.json")
			b, _ := json.Marshal(map[string]any{"chunk_size": chunk, "process_output": c.processOutput, "dtype": "float32"})
			if err := os.WriteFile(params, b, 0o644); err != nil {
				t.Fatal(err)
			}
			sums := filepath.Join(dir, "sums.safetensors")
			t.Logf("torch: %s", strings.TrimSpace(runScript(t, py, nil, "cogumi_imatrix.py", ckpt, textPath, sums, params)))
			ours, err := imatrix.FromSafetensors(sums)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := imatrix.Read(ref)
			if err != nil {
				t.Fatal(err)
			}
			compareImatrix(t, ours, theirs, c.wantEntries)

			// llama-quantize's loader reads the rule's file.
			ours.Datasets, ours.ChunkSize = []string{"//data:calib"}, chunk
			mine := filepath.Join(dir, "imatrix.gguf")
			if err := imatrix.Write(mine, ours); err != nil {
				t.Fatal(err)
			}
			checkLoads(t, load, mine, ours)

			// imatrix.Write writes what ggml's gguf writer wrote.
			again := filepath.Join(dir, "again.gguf")
			if err := imatrix.Write(again, theirs); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(ref)
			got, _ := os.ReadFile(again)
			if !bytes.Equal(got, want) {
				t.Errorf("imatrix.Write of libllama's matrix: %d bytes, differing from libllama's file of %d bytes", len(got), len(want))
			}
		})
	}
}

// checkLoads has common_imatrix_load (testdata/imatrixload.cpp) read path
// and compares what it found with m.
func checkLoads(t *testing.T, load, path string, m imatrix.Matrix) {
	t.Helper()
	cmd := exec.Command(load, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("common_imatrix_load: %v\n%s", err, stderr.Bytes())
	}
	var got struct {
		Legacy, Metadata bool
		ChunkCount       uint32 `json:"chunk_count"`
		ChunkSize        uint32 `json:"chunk_size"`
		Datasets         []string
		Entries          map[string]struct {
			Sums   int
			Counts []float32
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("imatrixload printed %q: %v", out, err)
	}
	if got.Legacy || !got.Metadata || got.ChunkCount != m.ChunkCount || got.ChunkSize != m.ChunkSize || !slices.Equal(got.Datasets, m.Datasets) || len(got.Entries) != len(m.Entries) {
		t.Fatalf("common_imatrix_load read %s", out)
	}
	for _, e := range m.Entries {
		g, ok := got.Entries[e.Name]
		if !ok || g.Sums != len(e.Sums) || !slices.Equal(g.Counts, e.Counts) {
			t.Errorf("common_imatrix_load: %s is %+v, want %d sums and counts %v", e.Name, g, len(e.Sums), e.Counts)
		}
	}
}

func compareImatrix(t *testing.T, ours, theirs imatrix.Matrix, wantEntries int) {
	t.Helper()
	name := func(e imatrix.Entry) string { return e.Name }
	var on, tn []string
	for _, e := range ours.Entries {
		on = append(on, name(e))
	}
	for _, e := range theirs.Entries {
		tn = append(tn, name(e))
	}
	slices.Sort(on)
	if !slices.Equal(on, tn) || len(on) != wantEntries {
		t.Fatalf("entries: cogumi %v, libllama %v; want %d", on, tn, wantEntries)
	}
	if ours.ChunkCount != theirs.ChunkCount {
		t.Errorf("chunks: cogumi %d, libllama %d", ours.ChunkCount, theirs.ChunkCount)
	}
	byName := make(map[string]imatrix.Entry)
	for _, e := range ours.Entries {
		byName[e.Name] = e
	}
	worst, worstAt := 0.0, ""
	for _, te := range theirs.Entries {
		oe := byName[te.Name]
		if !slices.Equal(oe.Counts, te.Counts) {
			t.Errorf("%s: counts %v, libllama %v", te.Name, oe.Counts, te.Counts)
		}
		if len(oe.Sums) != len(te.Sums) {
			t.Errorf("%s: %d sums, libllama %d", te.Name, len(oe.Sums), len(te.Sums))
			continue
		}
		for j, want := range te.Sums {
			rel := math.Abs(float64(oe.Sums[j])-float64(want)) / math.Max(math.Abs(float64(want)), 1e-30)
			if rel > worst {
				worst, worstAt = rel, fmt.Sprintf("%s[%d]: %g vs libllama %g", te.Name, j, oe.Sums[j], want)
			}
		}
	}
	t.Logf("%d entries, %d chunks; largest relative difference %.2g (%s)", len(theirs.Entries), theirs.ChunkCount, worst, worstAt)
	if worst > 1e-4 {
		t.Errorf("sums differ from libllama's by up to %.2g relative (%s), want at most 1e-4", worst, worstAt)
	}
}
