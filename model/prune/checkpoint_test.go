package prune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/prune"
	"github.com/cogumi/cogumi/model/safetensors"
)

func open(t *testing.T, dir string) *checkpoint.Model {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func tiny(t *testing.T, o tinyllama.Options) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := tinyllama.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	return open(t, dir)
}

// elem is one weight: its magnitude and raw bits, and where it lives.
type elem struct {
	key    uint32 // float32 bits of |w|
	bits   uint32 // raw element bits in the tensor's dtype
	tensor int
	index  int
}

func elems(t *testing.T, m *checkpoint.Model, tr checkpoint.TensorRef, ti int) []elem {
	t.Helper()
	raw, err := m.Bytes(tr.Name)
	if err != nil {
		t.Fatal(err)
	}
	size := tr.DType.Size()
	out := make([]elem, len(raw)/size)
	vals := make([]float32, len(out))
	safetensors.DecodeF32(vals, raw, tr.DType)
	for i := range out {
		var bits uint32
		if size == 4 {
			bits = uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
		} else {
			bits = uint32(raw[2*i]) | uint32(raw[2*i+1])<<8
		}
		out[i] = elem{key: math.Float32bits(vals[i]) &^ (1 << 31), bits: bits, tensor: ti, index: i}
	}
	return out
}

// zeroSet marks weights by tensor and index.
type zeroSet map[int][]bool

func (z zeroSet) add(e elem, n int) {
	if z[e.tensor] == nil {
		z[e.tensor] = make([]bool, n)
	}
	z[e.tensor][e.index] = true
}

func (z zeroSet) has(e elem) bool { return z[e.tensor] != nil && z[e.tensor][e.index] }

// wantZeroed sorts weights by magnitude, ties by position (es is in scan
// order), and marks the first k: a brute-force reference for the streaming
// selection. n bounds the indices.
func wantZeroed(es []elem, k int64, n int, into zeroSet) zeroSet {
	sorted := append([]elem(nil), es...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].key < sorted[b].key })
	if into == nil {
		into = zeroSet{}
	}
	for _, e := range sorted[:k] {
		into.add(e, n)
	}
	return into
}

// checkPruned compares output tensor ti with its source: zeroed elements are
// exactly those in want; every other element keeps its exact bits.
func checkPruned(t *testing.T, src, out []elem, want zeroSet, name string) {
	t.Helper()
	for i, e := range src {
		o := out[i]
		if want.has(e) {
			if o.key != 0 {
				t.Fatalf("%s[%d] = bits %#x, should be zero", name, i, o.bits)
			}
		} else if o.bits != e.bits {
			t.Fatalf("%s[%d] changed from %#x to %#x", name, i, e.bits, o.bits)
		}
	}
}

func TestPerTensor(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F16, safetensors.F32} {
		t.Run(string(dt), func(t *testing.T) {
			src := tiny(t, tinyllama.Options{DType: dt, Shards: 2})
			dst := filepath.Join(t.TempDir(), "out")
			rep, err := prune.PruneCheckpoint(context.Background(), src, dst, prune.Options{Sparsity: 0.65})
			if err != nil {
				t.Fatal(err)
			}
			out := open(t, dst)
			if len(rep.Tensors) != 14 {
				t.Errorf("%d tensors pruned, want 14 (7 projections x 2 layers)", len(rep.Tensors))
			}
			for ti, tr := range src.Tensors() {
				a, b := elems(t, src, tr, ti), elems(t, out, tr, ti)
				if !strings.Contains(tr.Name, "_proj.") {
					// Embeddings, norms and the head are untouched by default.
					ra, _ := src.Bytes(tr.Name)
					rb, _ := out.Bytes(tr.Name)
					if !bytes.Equal(ra, rb) {
						t.Errorf("%s changed", tr.Name)
					}
					continue
				}
				k := prune.Count(0.65, int64(len(a)))
				checkPruned(t, a, b, wantZeroed(a, k, len(a), nil), tr.Name)
			}
			for _, tr := range rep.Tensors {
				if want := prune.Count(0.65, tr.Total); tr.Zeros != want || math.Abs(tr.Sparsity-0.65) > 1e-4 {
					t.Errorf("report for %s: %d of %d zeros (%v), want %d", tr.Name, tr.Zeros, tr.Total, tr.Sparsity, want)
				}
			}
			if rep.Selected.Total != 2*(256*256*2+128*256*2+512*256*3) || rep.Model.Total <= rep.Selected.Total {
				t.Errorf("report totals: selected %+v model %+v", rep.Selected, rep.Model)
			}
			var onDisk prune.Report
			b, err := os.ReadFile(filepath.Join(dst, prune.ReportFile))
			if err != nil || json.Unmarshal(b, &onDisk) != nil || onDisk.Selected != rep.Selected || onDisk.Method != "unstructured" {
				t.Errorf("prune_report.json: %v %s", err, b)
			}
		})
	}
}

func TestGlobalMatchesBruteForce(t *testing.T) {
	// One sort over every selected weight (the projections and the head,
	// in checkpoint order) is the reference for the two-pass selection.
	src := tiny(t, tinyllama.Options{DType: safetensors.BF16})
	opts := prune.Options{Sparsity: 0.5, Scope: prune.Global, Include: []string{"model.layers.*", "lm_head.weight"},
		Exclude: []string{"*layernorm*"}}
	dst := filepath.Join(t.TempDir(), "out")
	rep, err := prune.PruneCheckpoint(context.Background(), src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := open(t, dst)
	var all []elem
	var sel []int
	maxLen := 0
	for ti, tr := range src.Tensors() {
		maxLen = max(maxLen, int(tr.Shape[0]*tr.Shape[len(tr.Shape)-1]))
		if strings.HasPrefix(tr.Name, "model.layers.") && !strings.Contains(tr.Name, "layernorm") || tr.Name == "lm_head.weight" {
			all = append(all, elems(t, src, tr, ti)...)
			sel = append(sel, ti)
		}
	}
	k := prune.Count(0.5, int64(len(all)))
	want := wantZeroed(all, k, maxLen, nil)
	srcT, outT := src.Tensors(), out.Tensors()
	for _, ti := range sel {
		checkPruned(t, elems(t, src, srcT[ti], ti), elems(t, out, outT[ti], ti), want, srcT[ti].Name)
	}
	if rep.Selected.Zeros != k || rep.Threshold == nil || rep.Scope != prune.Global {
		t.Errorf("report: %+v threshold %v", rep.Selected, rep.Threshold)
	}
	// The threshold is the magnitude of the last weight pruned.
	sorted := append([]elem(nil), all...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].key < sorted[b].key })
	if got := float32(*rep.Threshold); math.Float32bits(got) != sorted[k-1].key {
		t.Errorf("threshold %v, want %v", got, math.Float32frombits(sorted[k-1].key))
	}
	// Per-tensor sparsities vary around the global target.
	lo, hi := 1.0, 0.0
	for _, tr := range rep.Tensors {
		lo, hi = min(lo, tr.Sparsity), max(hi, tr.Sparsity)
	}
	if rep.Tensors[0].Name != "model.layers.0.self_attn.q_proj.weight" || len(rep.Tensors) != 15 || lo == hi {
		t.Errorf("tensors %d, first %s, sparsity range [%v, %v]", len(rep.Tensors), rep.Tensors[0].Name, lo, hi)
	}
}

func TestTwoFour(t *testing.T) {
	src := tiny(t, tinyllama.Options{DType: safetensors.F16, Tokenizer: tinyllama.BPE})
	dst := filepath.Join(t.TempDir(), "out")
	rep, err := prune.PruneCheckpoint(context.Background(), src, dst, prune.Options{Pattern: "2:4"})
	if err != nil {
		t.Fatal(err)
	}
	out := open(t, dst)
	for ti, tr := range src.Tensors() {
		a, b := elems(t, src, tr, ti), elems(t, out, tr, ti)
		if !strings.Contains(tr.Name, "_proj.") {
			continue
		}
		want := zeroSet{}
		for g := 0; g < len(a); g += 4 {
			wantZeroed(a[g:g+4], 2, len(a), want)
		}
		checkPruned(t, a, b, want, tr.Name)
		for g := 0; g < len(b); g += 4 {
			zeros := 0
			for _, e := range b[g : g+4] {
				if e.key == 0 {
					zeros++
				}
			}
			if zeros < 2 {
				t.Fatalf("%s: group at %d has %d zeros", tr.Name, g, zeros)
			}
		}
	}
	if rep.Method != "2:4" || rep.TargetSparsity != 0.5 || math.Abs(rep.Selected.Sparsity-0.5) > 1e-3 {
		t.Errorf("report: %s %v %+v", rep.Method, rep.TargetSparsity, rep.Selected)
	}
}

func TestErrors(t *testing.T) {
	src := tiny(t, tinyllama.Options{})
	for _, tc := range []struct {
		opts prune.Options
		want string
	}{
		{prune.Options{Sparsity: 0.5, Pattern: "2:4"}, "not both"},
		{prune.Options{Pattern: "2:4", Scope: prune.Global}, "unstructured sparsity only"},
		{prune.Options{Pattern: "4:2"}, "want N:M with 0 < N < M"},
		{prune.Options{Sparsity: 1.5}, "between 0 and 1"},
		{prune.Options{Sparsity: 0.5, Scope: "layer"}, `scope "layer"`},
		{prune.Options{Sparsity: 0.5, Include: []string{"model.layer.*"}}, `include pattern "model.layer.*" selects no tensor`},
		{prune.Options{Sparsity: 0.5, Include: []string{"[x"}}, "bad name pattern"},
		{prune.Options{Sparsity: 0.5, Exclude: []string{"*"}}, "no tensor of"},
		{prune.Options{Pattern: "3:7"}, "rows of 256 weights, not a multiple of 7"},
	} {
		dst := filepath.Join(t.TempDir(), "out")
		_, err := prune.PruneCheckpoint(context.Background(), src, dst, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := prune.PruneCheckpoint(ctx, src, dst, prune.Options{Sparsity: 0.5}); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled: %v", err)
	}
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Errorf("a cancelled prune left %v", left)
	}
}

// TestMemoryIsBounded prunes a 21 MB F32 model and checks that the run
// allocates far less than the model: weights are streamed, never loaded.
func TestMemoryIsBounded(t *testing.T) {
	src := tiny(t, tinyllama.Options{DType: safetensors.F32, Hidden: 512, Intermediate: 1024, Heads: 8, KVHeads: 4})
	var size int64
	for _, tr := range src.Tensors() {
		b, _ := src.Bytes(tr.Name)
		size += int64(len(b))
	}
	for _, opts := range []prune.Options{{Sparsity: 0.65}, {Sparsity: 0.65, Scope: prune.Global}, {Pattern: "2:4"}} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := prune.PruneCheckpoint(context.Background(), src, filepath.Join(t.TempDir(), "out"), opts); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(size)/4 {
			t.Errorf("%+v: allocated %d bytes pruning a %d-byte model", opts, alloc, size)
		} else {
			t.Logf("%+v: allocated %.1f MiB for a %.1f MiB model", opts, float64(alloc)/(1<<20), float64(size)/(1<<20))
		}
	}
}

// TestArchitectures: prune zeroes weights of the projections only, so a
// Qwen2 checkpoint keeps its q/k/v biases and a Qwen3 checkpoint its q/k
// norms byte for byte (nothing is removed, so no bias or norm has to follow
// a pruned row), and the output is a checkpoint of the same architecture.
func TestArchitectures(t *testing.T) {
	for _, o := range []tinyllama.Options{
		{Arch: tinyllama.Qwen2, DType: safetensors.BF16},
		{Arch: tinyllama.Qwen3, DType: safetensors.BF16, HeadDim: 128, TieEmbeddings: true},
	} {
		t.Run(string(o.Arch), func(t *testing.T) {
			src := tiny(t, o)
			dst := filepath.Join(t.TempDir(), "out")
			rep, err := prune.PruneCheckpoint(context.Background(), src, dst, prune.Options{Sparsity: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Tensors) != 14 {
				t.Errorf("%d tensors pruned, want 14 (7 projections x 2 layers)", len(rep.Tensors))
			}
			out := open(t, dst)
			if got := out.Config().Arch.ModelType; got != string(o.Arch) {
				t.Errorf("output model_type %q", got)
			}
			kept := 0
			for _, tr := range src.Tensors() {
				if !strings.HasSuffix(tr.Name, ".bias") && !strings.Contains(tr.Name, "norm") {
					continue
				}
				ra, _ := src.Bytes(tr.Name)
				rb, err := out.Bytes(tr.Name)
				if err != nil || !bytes.Equal(ra, rb) {
					t.Errorf("%s changed: %v", tr.Name, err)
				}
				kept++
			}
			if want := map[tinyllama.Arch]int{tinyllama.Qwen2: 2*3 + 2*2 + 1, tinyllama.Qwen3: 2*2 + 2*2 + 1}[o.Arch]; kept != want {
				t.Errorf("%d biases and norms, want %d", kept, want)
			}
		})
	}
}
