package quant_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/quant"
)

// libPathInRepo is where `npm ci` in testdata/llama puts node-llama-cpp's
// prebuilt CPU library, relative to the module root.
const libPathInRepo = "testdata/llama/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"

// ggmlRef builds testdata/ggmlref.c and returns a handle on it and the
// library. Without the library or gcc the test is skipped, except under
// CI=true, where COGUMI_LIBGGML names the library and its absence fails.
func ggmlRef(tb testing.TB) *refTool {
	tb.Helper()
	ci := os.Getenv("CI") == "true"
	unavailable := func(format string, args ...any) {
		tb.Helper()
		msg := fmt.Sprintf(format, args...)
		if ci {
			tb.Fatalf("%s (CI=true: install it with `npm ci` in testdata/llama and set COGUMI_LIBGGML)", msg)
		}
		tb.Skipf("%s; skipping the comparison with llama.cpp (run `npm ci` in testdata/llama or set COGUMI_LIBGGML)", msg)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		unavailable("the reference library is node-llama-cpp's linux-x64 build, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	lib := os.Getenv("COGUMI_LIBGGML")
	if lib == "" {
		root, err := moduleRoot()
		if err != nil {
			unavailable("%v", err)
		}
		lib = filepath.Join(root, libPathInRepo)
		if _, err := os.Stat(lib); err != nil {
			unavailable("libggml-base.so not found at %s", lib)
		}
	} else if _, err := os.Stat(lib); err != nil {
		tb.Fatalf("COGUMI_LIBGGML=%s: %v", lib, err)
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		unavailable("gcc not found")
	}
	bin := filepath.Join(tb.TempDir(), "ggmlref")
	out, err := exec.Command(gcc, "-O2", "-o", bin, filepath.Join("testdata", "ggmlref.c"), "-ldl", "-lpthread").CombinedOutput()
	if err != nil {
		tb.Fatalf("building testdata/ggmlref.c: %v\n%s", err, out)
	}
	return &refTool{bin: bin, lib: lib}
}

type refTool struct{ bin, lib string }

// noBacktrace is the environment for ggmlref: without GGML_NO_BACKTRACE a
// libggml abort attaches gdb, which takes seconds and writes to stdout.
func noBacktrace() []string {
	return append(os.Environ(), "GGML_NO_BACKTRACE=1")
}

// run runs the tool in mode with the type and shape arguments and stdin.
func (r *refTool) run(mode string, t quant.Type, nrows, rowLen int, stdin []byte, extra ...string) ([]byte, error) {
	args := append([]string{r.lib, mode, strconv.Itoa(int(t)), strconv.Itoa(nrows), strconv.Itoa(rowLen)}, extra...)
	cmd := exec.Command(r.bin, args...)
	cmd.Env = noBacktrace()
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ggmlref %s %s: %v: %s", mode, t, err, stderr.String())
	}
	return out, nil
}

// quantize runs ggml_quantize_chunk on rows of rowLen values.
func (r *refTool) quantize(t quant.Type, src []float32, rowLen int) ([]byte, error) {
	return r.run("quantize", t, len(src)/rowLen, rowLen, f32Bytes(src))
}

// quantizeWeighted runs ggml_quantize_chunk on rows of len(weights) values
// with weights as the importance matrix.
func (r *refTool) quantizeWeighted(t quant.Type, src, weights []float32) ([]byte, error) {
	return r.run("quantizew", t, len(src)/len(weights), len(weights), f32Bytes(append(slices.Clip(src), weights...)))
}

// dequantize runs the type's to_float over quantised rows of rowLen values.
func (r *refTool) dequantize(t quant.Type, q []byte, rowLen int) ([]float32, error) {
	out, err := r.run("dequantize", t, len(q)/quant.RowSize(t, rowLen), rowLen, q)
	if err != nil {
		return nil, err
	}
	f := make([]float32, len(out)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return f, nil
}

// refJob is one quantisation in a batch: rows of rowLen values, nil or
// rowLen importance weights, and whether to expand the result again with
// libggml's to_float.
type refJob struct {
	src        []float32
	rowLen     int
	weights    []float32
	dequantize bool
}

// refResult is a refJob's output.
type refResult struct {
	q []byte
	f []float32 // nil unless the job asked for it
}

// batch runs jobs in one process (ggmlref's batch mode), which pays for
// libggml's grid tables once. When the process fails (libggml aborts on
// some job), it returns the results of the jobs before that one with the
// error.
func (r *refTool) batch(t quant.Type, jobs []refJob) ([]refResult, error) {
	var in bytes.Buffer
	for _, j := range jobs {
		flags := int64(0)
		if j.weights != nil {
			flags |= 1
		}
		if j.dequantize {
			flags |= 2
		}
		for _, v := range []int64{int64(len(j.src) / j.rowLen), int64(j.rowLen), flags} {
			_ = binary.Write(&in, binary.LittleEndian, v)
		}
		in.Write(f32Bytes(j.src))
		if j.weights != nil {
			in.Write(f32Bytes(j.weights))
		}
	}
	cmd := exec.Command(r.bin, r.lib, "batch", strconv.Itoa(int(t)), "0", "0")
	cmd.Env = noBacktrace()
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res []refResult
	for _, j := range jobs {
		n := quant.RowSize(t, len(j.src))
		if j.dequantize {
			n += 4 * len(j.src)
		}
		if len(out) < 8+n || binary.LittleEndian.Uint64(out) != uint64(n) {
			break
		}
		out = out[8:]
		r := refResult{q: out[:quant.RowSize(t, len(j.src))]}
		if j.dequantize {
			f := out[len(r.q):n]
			r.f = make([]float32, len(j.src))
			for k := range r.f {
				r.f[k] = math.Float32frombits(binary.LittleEndian.Uint32(f[4*k:]))
			}
		}
		res, out = append(res, r), out[n:]
	}
	switch {
	case runErr != nil:
		return res, fmt.Errorf("ggmlref batch %s: job %d of %d: %v: %s", t, len(res), len(jobs), runErr, stderr.String())
	case len(res) < len(jobs) || len(out) != 0:
		return res, fmt.Errorf("ggmlref batch %s: output does not match the %d jobs", t, len(jobs))
	}
	return res, nil
}

// bench returns the wall-clock and CPU nanoseconds libggml takes for iters
// quantisations of src split over threads threads, with weights as the
// importance matrix unless they are nil.
func (r *refTool) bench(t quant.Type, src []float32, rowLen int, weights []float32, threads, iters int) (wall, cpu int64, err error) {
	mode, in := "bench", f32Bytes(src)
	if weights != nil {
		mode, in = "benchw", f32Bytes(append(slices.Clip(src), weights...))
	}
	out, err := r.run(mode, t, len(src)/rowLen, rowLen, in, strconv.Itoa(threads), strconv.Itoa(iters))
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &wall, &cpu); err != nil {
		return 0, 0, fmt.Errorf("ggmlref bench %s printed %q: %v", t, out, err)
	}
	return wall, cpu, nil
}

func f32Bytes(src []float32) []byte {
	b := make([]byte, 4*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// refTypes are the types compared with libggml: every quantised type and
// the float conversions.
var refTypes = []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K,
	quant.Q4_1, quant.Q5_0, quant.Q5_1, quant.Q5_K, quant.Q2_K, quant.Q3_K, quant.F16, quant.BF16}

// TestMatchesLibggml compares every row family of testRows, for every type,
// with ggml_quantize_chunk byte for byte (through QuantizeRows on two
// workers, so the parallel path is what is checked).
func TestMatchesLibggml(t *testing.T) {
	ref := ggmlRef(t)
	for _, fam := range testRows() {
		for _, typ := range refTypes {
			t.Run(fam.name+"/"+typ.String(), func(t *testing.T) {
				want, err := ref.quantize(typ, fam.data, fam.rowLen)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, quant.RowSize(typ, len(fam.data)))
				if err := quant.QuantizeRows(typ, got, fam.data, fam.rowLen, 2); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					reportDiff(t, typ, fam, got, want)
				}
			})
		}
	}
}

// reportDiff names the first differing block and shows its input.
func reportDiff(t *testing.T, typ quant.Type, fam rowFamily, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, libggml gave %d", typ, len(got), len(want))
	}
	bs := typ.TypeSize()
	diffBlocks := 0
	first := -1
	for b := 0; b < len(got)/bs; b++ {
		if !bytes.Equal(got[b*bs:(b+1)*bs], want[b*bs:(b+1)*bs]) {
			diffBlocks++
			if first < 0 {
				first = b
			}
		}
	}
	n := typ.BlockSize()
	t.Fatalf("%s: %d of %d blocks differ; first is block %d\n got  %x\n want %x\n input %v",
		typ, diffBlocks, len(got)/bs, first,
		got[first*bs:(first+1)*bs], want[first*bs:(first+1)*bs], fam.data[first*n:(first+1)*n])
}

// TestMatchesLibggmlSpecialValues checks rows holding Inf and NaN. They
// follow the x86-64 semantics of the compiled C (see truncInt32), so the
// comparison is only meaningful on amd64, where ggmlRef runs.
func TestMatchesLibggmlSpecialValues(t *testing.T) {
	ref := ggmlRef(t)
	for _, fam := range []rowFamily{specialRows(), nanRows()} {
		for _, typ := range refTypes {
			testSpecialValues(t, ref, fam, typ)
		}
	}
}

func testSpecialValues(t *testing.T, ref *refTool, fam rowFamily, typ quant.Type) {
	{
		t.Run(fam.name+"/"+typ.String(), func(t *testing.T) {
			want, err := ref.quantize(typ, fam.data, fam.rowLen)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, quant.RowSize(typ, len(fam.data)))
			if err := quant.Quantize(typ, got, fam.data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				reportDiff(t, typ, fam, got, want)
			}
		})
	}
}

// TestDequantizeMatchesLibggml checks every dequantiser against ggml's
// to_float, bit for bit, on the quantised rows of every row family
// (libggml's own bytes, so a quantiser bug cannot hide a dequantiser bug).
func TestDequantizeMatchesLibggml(t *testing.T) {
	ref := ggmlRef(t)
	fams := append(testRows(), specialRows())
	for _, typ := range refTypes {
		t.Run(typ.String(), func(t *testing.T) {
			for _, fam := range fams {
				q, err := ref.quantize(typ, fam.data, fam.rowLen)
				if err != nil {
					t.Fatal(err)
				}
				want, err := ref.dequantize(typ, q, fam.rowLen)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]float32, len(fam.data))
				if err := quant.Dequantize(typ, got, q); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: value %d: %g (%#08x), ggml's to_float gives %g (%#08x)", fam.name, i,
							got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
				}
			}
		})
	}
}

// weightSets returns importance weights for rows of n values: an imatrix
// as llama-imatrix makes them (means of squared activations, spread over
// orders of magnitude), one with zeros (single columns and whole 32-column
// groups, as for inputs that never fire), one with huge, tiny and zero
// weights side by side, and all zeros.
func weightSets(n int) []struct {
	name string
	w    []float32
} {
	rng := rand.New(rand.NewPCG(uint64(n), 17))
	gen := func(f func(i int) float32) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = f(i)
		}
		return w
	}
	lognormal := func() float32 { return float32(math.Exp(rng.NormFloat64() * 2)) }
	return []struct {
		name string
		w    []float32
	}{
		{"imatrix", gen(func(int) float32 { return lognormal() })},
		{"zeros", gen(func(i int) float32 {
			if (i/32)%5 == 3 || rng.IntN(4) == 0 {
				return 0
			}
			return lognormal()
		})},
		{"extreme", gen(func(i int) float32 {
			switch rng.IntN(4) {
			case 0:
				return 0
			case 1:
				return float32(1e30 * rng.Float64())
			case 2:
				return float32(1e-30 * rng.Float64())
			}
			return lognormal()
		})},
		{"allzero", make([]float32, n)},
	}
}

// TestWeightedMatchesLibggml compares QuantizeRowsWeighted with
// ggml_quantize_chunk given an importance matrix, byte for byte, for every
// type, row family and set of weights.
func TestWeightedMatchesLibggml(t *testing.T) {
	ref := ggmlRef(t)
	fams := append(testRows(), specialRows(), nanRows())
	for _, fam := range fams {
		sets := weightSets(fam.rowLen)
		if fam.name == "golden" {
			sets = append(sets, struct {
				name string
				w    []float32
			}{"golden", goldenWeights()})
		}
		for k, ws := range sets {
			for _, typ := range refTypes {
				if k > 0 && (typ == quant.F16 || typ == quant.BF16 || typ == quant.Q8_0) {
					continue // ggml ignores their weights: one set shows it
				}
				t.Run(fam.name+"/"+ws.name+"/"+typ.String(), func(t *testing.T) {
					want, err := ref.quantizeWeighted(typ, fam.data, ws.w)
					if err != nil {
						t.Fatal(err)
					}
					got := make([]byte, quant.RowSize(typ, len(fam.data)))
					if err := quant.QuantizeRowsWeighted(typ, got, fam.data, fam.rowLen, ws.w, 2); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						reportDiff(t, typ, fam, got, want)
					}
				})
			}
		}
	}
}
