package ggufconv_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/executor/llamarun"
	"github.com/cogumi/cogumi/executor/toolchain"
	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
)

// TestSplit writes a checkpoint whole and split, by tensor count and by
// size, and checks the shards are what llama-gguf-split --split makes of
// the whole file: <stem>-0000i-of-0000N.gguf, the whole file's metadata
// then split.no, split.tensors.count and split.count in the first shard,
// only those three keys in the others, the whole file's tensors in order,
// cut where gguf-split cuts, with the same bytes.
func TestSplit(t *testing.T) {
	m := tiny(t, tinyllama.Options{Layers: 3})
	whole, wf, _ := convert(t, m, ggufconv.Options{Type: "Q8_0", Name: "tiny"})
	for _, tc := range []struct {
		name string
		lim  gguf.SplitLimit
	}{
		{"tensors", gguf.SplitLimit{MaxTensors: 8}},
		{"size", gguf.SplitLimit{MaxBytes: 500_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			rep, err := ggufconv.Convert(context.Background(), m, dst, ggufconv.Options{Type: "Q8_0", Name: "tiny", Split: &tc.lim})
			if err != nil {
				t.Fatal(err)
			}
			var sizes []uint64
			for _, ti := range wf.Tensors {
				sizes = append(sizes, ti.Size)
			}
			starts, err := gguf.Split(sizes, tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			if len(starts) < 2 || len(rep.Files) != len(starts) {
				t.Fatalf("%d files %v for %d shards (want several)", len(rep.Files), rep.Files, len(starts))
			}
			var names []string
			for i, file := range rep.Files {
				want := fmt.Sprintf("tiny-%s-Q8_0-%05d-of-%05d.gguf", rep.SizeLabel, i+1, len(starts))
				if file != want {
					t.Errorf("file %d is %s, want %s", i, file, want)
				}
				f, err := gguf.Open(filepath.Join(dst, file))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var kvs []gguf.KV
				if i == 0 {
					kvs = append(kvs, wf.KVs...)
				}
				kvs = append(kvs, kv(t, gguf.KeySplitNo, uint16(i)), kv(t, gguf.KeySplitTensorsCount, int32(len(wf.Tensors))),
					kv(t, gguf.KeySplitCount, uint16(len(starts))))
				if !reflect.DeepEqual(f.KVs, kvs) {
					t.Errorf("%s: keys\n%v\nwant\n%v", file, f.KVs, kvs)
				}
				end := len(wf.Tensors)
				if i+1 < len(starts) {
					end = starts[i+1]
				}
				if len(f.Tensors) != end-starts[i] {
					t.Fatalf("%s: %d tensors, want %d", file, len(f.Tensors), end-starts[i])
				}
				for j, ti := range f.Tensors {
					w := wf.Tensors[starts[i]+j]
					got, _ := f.TensorData(ti.Name)
					exp, _ := wf.TensorData(w.Name)
					if ti.Name != w.Name || ti.Type != w.Type || !bytes.Equal(got, exp) {
						t.Errorf("%s: tensor %d is %s %v, want %s %v with the same bytes", file, j, ti.Name, ti.Type, w.Name, w.Type)
					}
					names = append(names, ti.Name)
				}
			}
			if len(names) != len(whole.Tensors) {
				t.Errorf("%d tensors over the shards, want %d", len(names), len(whole.Tensors))
			}
		})
	}
	// The first tensor alone over the size leaves an empty first shard,
	// which gguf-split refuses too.
	_, err := ggufconv.Convert(context.Background(), m, t.TempDir(), ggufconv.Options{Type: "Q8_0", Split: &gguf.SplitLimit{MaxBytes: 1000}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("would leave a shard without tensors")) {
		t.Errorf("a split size below the first tensor: %v", err)
	}
}

func kv(t *testing.T, key string, v any) gguf.KV {
	t.Helper()
	val, err := gguf.ValueOf(v)
	if err != nil {
		t.Fatal(err)
	}
	return gguf.KV{Key: key, Value: val}
}

// TestSplitLoadsInLlamaCpp has llama.cpp (node-llama-cpp) load a split
// file from its first shard and checks it tokenizes, generates and scores
// exactly as from the whole file: the same tokens, the same greedy
// continuation, and the same log-likelihood of texts (read from the full
// next-token distributions, so the same logits).
func TestSplitLoadsInLlamaCpp(t *testing.T) {
	_, dir := nodeLlama(t)
	m := tiny(t, tinyllama.Options{})
	_, _, whole := convert(t, m, ggufconv.Options{Type: "F16", Name: "tiny"})
	dst := t.TempDir()
	rep, err := ggufconv.Convert(context.Background(), m, dst, ggufconv.Options{Type: "F16", Name: "tiny", Split: &gguf.SplitLimit{MaxBytes: 1_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) < 3 {
		t.Fatalf("%d shards, want at least 3", len(rep.Files))
	}
	first := filepath.Join(dst, rep.File)
	a, b := loadWithLlamaCpp(t, whole), loadWithLlamaCpp(t, first)
	if !reflect.DeepEqual(a.Tokens, b.Tokens) || !reflect.DeepEqual(a.Generated, b.Generated) || len(a.Generated) == 0 {
		t.Errorf("whole file: tokens %v, generated %v; split: %v, %v", a.Tokens, a.Generated, b.Tokens, b.Generated)
	}
	tc, err := toolchain.FindNodeLlama(dir)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	input := filepath.Join(work, "texts.jsonl")
	if err := llamarun.WriteTexts(input, []llamarun.Text{{Text: "Once upon a time the cat said hello"}, {Text: "The dog and the sun"}}); err != nil {
		t.Fatal(err)
	}
	score := func(model, out string) llamarun.Result {
		r, err := llamarun.Run(context.Background(), tc, work, llamarun.Job{Model: model, Input: input, Output: filepath.Join(work, out), Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sw, ss := score(whole, "whole.json"), score(first, "split.json")
	for i := range sw.Results {
		w, s := sw.Results[i], ss.Results[i]
		if w.Tokens != s.Tokens || w.NLL != s.NLL || w.Tokens == 0 {
			t.Errorf("text %d: whole file %d tokens, NLL %v; split %d tokens, NLL %v", i, w.Tokens, w.NLL, s.Tokens, s.NLL)
		}
	}
}

// TestSplitMatchesGGUFSplit splits cogumi's whole file with ggml's own
// GGUF code as llama-gguf-split --split does (testdata/ggufsplit.c over
// node-llama-cpp's libggml-base) and compares every shard with cogumi's,
// byte for byte.
func TestSplitMatchesGGUFSplit(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		unavailable(t, "the reference library is node-llama-cpp's linux-x64 build, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(root, llamaBins, "libggml-base.so")
	if _, err := os.Stat(lib); err != nil {
		unavailable(t, "%v", err)
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		unavailable(t, "gcc not found")
	}
	bin := filepath.Join(t.TempDir(), "ggufsplit")
	if out, err := exec.Command(gcc, "-O2", "-o", bin, filepath.Join("testdata", "ggufsplit.c"), "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/ggufsplit.c: %v\n%s", err, out)
	}
	m := tiny(t, tinyllama.Options{Layers: 3, Tokenizer: tinyllama.BPE})
	_, _, whole := convert(t, m, ggufconv.Options{Type: "Q4_K_M", Name: "tiny"})
	for _, tc := range []struct {
		mode string
		n    uint64
		lim  gguf.SplitLimit
	}{
		{"tensors", 7, gguf.SplitLimit{MaxTensors: 7}},
		{"size", 300_000, gguf.SplitLimit{MaxBytes: 300_000}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dst := t.TempDir()
			rep, err := ggufconv.Convert(context.Background(), m, dst, ggufconv.Options{Type: "Q4_K_M", Name: "tiny", Split: &tc.lim})
			if err != nil {
				t.Fatal(err)
			}
			ref := filepath.Join(t.TempDir(), "ref")
			out, err := exec.Command(bin, lib, whole, ref, tc.mode, strconv.FormatUint(tc.n, 10)).CombinedOutput()
			if err != nil {
				t.Fatalf("ggufsplit: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != strconv.Itoa(len(rep.Files)) || len(rep.Files) < 2 {
				t.Fatalf("ggufsplit wrote %s shards, cogumi %d", got, len(rep.Files))
			}
			for i, file := range rep.Files {
				a, err := os.ReadFile(filepath.Join(dst, file))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(gguf.SplitPath(ref, i, len(rep.Files)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, b) {
					first := 0
					for first < min(len(a), len(b)) && a[first] == b[first] {
						first++
					}
					t.Errorf("%s differs from llama-gguf-split's shard (%d and %d bytes) from byte %d: %q vs %q", file, len(a), len(b), first, a[first:min(first+40, len(a))], b[first:min(first+40, len(b))])
				}
			}
		})
	}
}
