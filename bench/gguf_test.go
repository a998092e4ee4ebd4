//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/safetensors"
)

// TestGGUFBench compares cogumi's GGUF conversion with llama.cpp's own
// quantiser on synthetic F16 checkpoints of Llama-2-7B-like layers (hidden
// 4096, feed-forward 11008, 32 heads, 8 KV heads, 32000 tokens). It is not
// part of the normal test run:
//
//	COGUMI_GGUF_BENCH=1 go test ./bench -run TestGGUFBench -v -timeout 3h
//
// Settings: COGUMI_GGUF_BENCH_LAYERS (layers of each model, default "2,6":
// about 1.1 and 2.5 GiB of F16), _TYPES (default "Q8_0,Q4_0,Q4_K_M"),
// _REPS (default 2), _THREADS (default GOMAXPROCS), _DIR (where the
// checkpoints go, default $TMPDIR; everything is deleted afterwards), _OUT
// (a Markdown file for the table; JSON is written beside it).
//
// cogumi converts the safetensors checkpoint straight to the type
// (ggufconv.Convert in a child process). llama.cpp quantises an F16 GGUF of
// the same checkpoint (written by cogumi beforehand, as convert_hf_to_gguf.py
// would) with llama_model_quantize from node-llama-cpp's libllama: the
// function behind llama-quantize, which runs ggml_quantize_chunk over the
// rows. Both get the same threads; every pair of outputs is compared by
// SHA-256, and the test fails unless the files are identical.
func TestGGUFBench(t *testing.T) {
	if os.Getenv("COGUMI_GGUF_BENCH") != "1" {
		t.Skip("set COGUMI_GGUF_BENCH=1 to run the GGUF benchmark (minutes, several GiB of /tmp)")
	}
	setting := func(key, def string) string {
		if v := os.Getenv("COGUMI_GGUF_BENCH_" + key); v != "" {
			return v
		}
		return def
	}
	reps, _ := strconv.Atoi(setting("REPS", "2"))
	threads := setting("THREADS", strconv.Itoa(numCPU()))
	quantizer := buildLlamaQuant(t)
	tmp, err := os.MkdirTemp(setting("DIR", ""), "cogumi-gguf-bench-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()
	var rows []row
	for _, ls := range strings.Split(setting("LAYERS", "2,6"), ",") {
		layers, err := strconv.Atoi(strings.TrimSpace(ls))
		if err != nil || layers < 1 {
			t.Fatalf("bad layer count %q", ls)
		}
		ckpt := filepath.Join(tmp, fmt.Sprintf("ckpt-%d", layers))
		t.Logf("writing a %d-layer F16 checkpoint and its F16 GGUF", layers)
		// In child processes: a child's peak RSS starts from its parent's
		// (exec records the old address space's high-water mark), so the
		// test process itself must stay small.
		if _, err := measure(ctx, tmp, []string{"COGUMI_GGUF_BENCH_CHILD=write", "CKPT=" + ckpt, "LAYERS=" + ls},
			os.Args[0], "-test.run=^TestGGUFBenchChild$"); err != nil {
			t.Fatal(err)
		}
		size := dirSize(t, ckpt)
		f16dir := filepath.Join(tmp, "f16")
		if _, err := measure(ctx, tmp, []string{"COGUMI_GGUF_BENCH_CHILD=convert", "CKPT=" + ckpt, "OUT=" + f16dir, "TYPE=F16", "THREADS=" + threads},
			os.Args[0], "-test.run=^TestGGUFBenchChild$"); err != nil {
			t.Fatal(err)
		}
		f16s, _ := filepath.Glob(filepath.Join(f16dir, "*.gguf"))
		if len(f16s) != 1 {
			t.Fatalf("F16 conversion wrote %v", f16s)
		}
		f16 := f16s[0]
		model := fmt.Sprintf("%d layers, %.2f GiB F16", layers, float64(size)/(1<<30))
		for _, typ := range strings.Split(setting("TYPES", "Q8_0,Q4_0,Q4_K_M"), ",") {
			ftype, err := ftypeOf(typ)
			if err != nil {
				t.Fatal(err)
			}
			var ours, theirs []sample
			var sumOurs, sumTheirs string
			for rep := range reps {
				outOurs, outTheirs := filepath.Join(tmp, "cogumi"), filepath.Join(tmp, "llama.gguf")
				// Alternate which tool goes first.
				runs := []func(){
					func() {
						s, err := measure(ctx, tmp, []string{"COGUMI_GGUF_BENCH_CHILD=convert", "CKPT=" + ckpt, "OUT=" + outOurs, "TYPE=" + typ, "THREADS=" + threads},
							os.Args[0], "-test.run=^TestGGUFBenchChild$")
						if err != nil {
							t.Fatal(err)
						}
						ours = append(ours, s)
					},
					func() {
						s, err := measure(ctx, tmp, nil, quantizer, f16, outTheirs, strconv.Itoa(ftype), threads)
						if err != nil {
							t.Fatal(err)
						}
						theirs = append(theirs, s)
					},
				}
				if rep%2 == 1 {
					runs[0], runs[1] = runs[1], runs[0]
				}
				for _, run := range runs {
					run()
				}
				files, _ := filepath.Glob(filepath.Join(outOurs, "*.gguf"))
				if len(files) != 1 {
					t.Fatalf("cogumi wrote %v", files)
				}
				sumOurs, sumTheirs = sha(t, files[0]), sha(t, outTheirs)
				os.RemoveAll(outOurs)
				os.Remove(outTheirs)
			}
			same := "identical files"
			if sumOurs != sumTheirs {
				t.Errorf("%s %s: cogumi's file %s differs from llama.cpp's %s", model, typ, sumOurs[:12], sumTheirs[:12])
				same = "FILES DIFFER"
			}
			note := func(s []sample) string {
				w := s[0].wall.Seconds()
				for _, x := range s[1:] {
					w = min(w, x.wall.Seconds())
				}
				return fmt.Sprintf("%.0f MB/s of F16 at best; %s (sha256 %s)", float64(size)/w/1e6, same, sumOurs[:12])
			}
			bench := fmt.Sprintf("gguf %s, %s", typ, model)
			rows = append(rows,
				summarize(bench, "cogumi (safetensors -> "+typ+")", ours, note(ours)),
				summarize(bench, "llama.cpp (F16 GGUF -> "+typ+")", theirs, note(theirs)))
			t.Logf("%s: cogumi %v, llama.cpp %v", bench, ours, theirs)
		}
		os.RemoveAll(ckpt)
		os.RemoveAll(f16dir)
	}
	out := setting("OUT", filepath.Join(tmp, "gguf-results.md"))
	if err := writeResults(out, rows, config{}, 0); err != nil {
		t.Fatal(err)
	}
}

// TestGGUFBenchChild runs one step of TestGGUFBench in its own process:
// writing a checkpoint, or a cogumi conversion (measured, so that its peak
// RSS is its own).
func TestGGUFBenchChild(t *testing.T) {
	switch os.Getenv("COGUMI_GGUF_BENCH_CHILD") {
	case "write":
		layers, _ := strconv.Atoi(os.Getenv("LAYERS"))
		// About 32000 tokens: tinyllama's SentencePiece vocabulary plus padding.
		if err := tinyllama.Write(os.Getenv("CKPT"), tinyllama.Options{
			DType: safetensors.F16, Seed: 7, Hidden: 4096, Intermediate: 11008, Layers: layers,
			Heads: 32, KVHeads: 8, MaxPositions: 4096, PadVocab: 32000 - 450,
		}); err != nil {
			t.Fatal(err)
		}
		return
	case "convert":
	default:
		t.Skip("run by TestGGUFBench")
	}
	m, err := checkpoint.Open(os.Getenv("CKPT"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	threads, _ := strconv.Atoi(os.Getenv("THREADS"))
	if _, err := ggufconv.Convert(context.Background(), m, os.Getenv("OUT"), ggufconv.Options{
		Type: os.Getenv("TYPE"), Threads: threads, Name: "bench",
	}); err != nil {
		t.Fatal(err)
	}
}

// buildLlamaQuant compiles model/ggufconv/testdata/llamaquant.cpp.
func buildLlamaQuant(t *testing.T) string {
	t.Helper()
	bin, err := llamaQuant("..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".safetensors") {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
	}
	return n
}

func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
