//go:build unix

package quant_test

import (
	"flag"
	"syscall"
	"testing"
	"time"

	"github.com/cogumi/cogumi/model/quant"
)

// benchRows and benchRowLen make a 16 MiB F32 input by default: a
// 1024x4096 matrix, the shape of a small model's projection. -quant.rows and
// -quant.rowlen measure another shape, such as TinyLlama's FFN (5632x2048,
// 2048x5632); -quant.workers sets the goroutines (and libggml's threads).
var (
	benchRowsFlag    = flag.Int("quant.rows", 1024, "rows of the benchmark matrix")
	benchRowLenFlag  = flag.Int("quant.rowlen", 4096, "values per row of the benchmark matrix (a multiple of 256)")
	benchWorkersFlag = flag.Int("quant.workers", 2, "goroutines (and libggml threads) of the benchmarks")
)

var benchTypes = []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q6_K, quant.F16, quant.BF16}

// weightedBenchTypes are the types whose quantisation an importance matrix
// changes.
var weightedBenchTypes = []quant.Type{quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K,
	quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1}

// benchWeights is an importance matrix for rows of n: squares of Gaussian
// values, as llama-imatrix's mean squared activations look.
func benchWeights(n int) []float32 {
	w := irwinHall(11, n, 1)
	for i, v := range w {
		w[i] = v * v
	}
	return w
}

// Both benchmarks report, besides wall-clock MB/s of F32 input, "MB/cpu-s":
// input bytes per second of CPU time used. On a machine shared with other
// work (a CI runner, a two-core VM) wall-clock figures swing by 2x between
// runs while CPU time stays steady, so MB/cpu-s is the fair comparison;
// with two idle cores the two-thread wall-clock rate approaches twice it.

// BenchmarkQuantizeRows measures QuantizeRows on two goroutines.
func BenchmarkQuantizeRows(b *testing.B) {
	benchGo(b, benchTypes, false)
}

// BenchmarkQuantizeRowsWeighted measures QuantizeRowsWeighted with an
// importance matrix on two goroutines.
func BenchmarkQuantizeRowsWeighted(b *testing.B) {
	benchGo(b, weightedBenchTypes, true)
}

func benchGo(b *testing.B, types []quant.Type, weighted bool) {
	benchRows, benchRowLen, benchWorkers := *benchRowsFlag, *benchRowLenFlag, *benchWorkersFlag
	src := irwinHall(9, benchRows*benchRowLen, 0.02)
	var weights []float32
	if weighted {
		weights = benchWeights(benchRowLen)
	}
	for _, typ := range types {
		b.Run(typ.String(), func(b *testing.B) {
			dst := make([]byte, quant.RowSize(typ, len(src)))
			// One row first: the i-quants build their grid tables on first
			// use (libggml's bench builds its own before its clock starts).
			if err := quant.QuantizeRowsWeighted(typ, dst[:quant.RowSize(typ, benchRowLen)], src[:benchRowLen], benchRowLen, weights, 1); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(4 * len(src)))
			cpu0 := cpuTime(b)
			for b.Loop() {
				if err := quant.QuantizeRowsWeighted(typ, dst, src, benchRowLen, weights, benchWorkers); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(4*len(src))*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
		})
	}
}

// BenchmarkLibggml measures ggml_quantize_chunk from node-llama-cpp's
// libggml-base.so on the same input, two threads each taking half the rows
// (as llama-quantize splits a tensor). ns/op, MB/s and MB/cpu-s are the C
// side's own timing, without process start-up or the transfer of the input.
func BenchmarkLibggml(b *testing.B) {
	benchLibggml(b, benchTypes, false)
}

// BenchmarkLibggmlWeighted is BenchmarkLibggml with the importance matrix
// of BenchmarkQuantizeRowsWeighted.
func BenchmarkLibggmlWeighted(b *testing.B) {
	benchLibggml(b, weightedBenchTypes, true)
}

func benchLibggml(b *testing.B, types []quant.Type, weighted bool) {
	ref := ggmlRef(b)
	benchRows, benchRowLen, benchWorkers := *benchRowsFlag, *benchRowLenFlag, *benchWorkersFlag
	src := irwinHall(9, benchRows*benchRowLen, 0.02)
	var weights []float32
	if weighted {
		weights = benchWeights(benchRowLen)
	}
	for _, typ := range types {
		b.Run(typ.String(), func(b *testing.B) {
			wall, cpu, err := ref.bench(typ, src, benchRowLen, weights, benchWorkers, b.N)
			if err != nil {
				b.Fatal(err)
			}
			perOp := float64(wall) / float64(b.N)
			b.ReportMetric(perOp, "ns/op")
			b.ReportMetric(float64(4*len(src))/perOp*1e3, "MB/s")
			b.ReportMetric(float64(4*len(src))*float64(b.N)/(float64(cpu)/1e9)/1e6, "MB/cpu-s")
		})
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// iqBenchTypes are the i-quants, measured with an importance matrix (as
// they are used; IQ2_XXS and IQ2_XS need one). They are one to two orders
// of magnitude slower than the k-quants, in libggml too: -quant.rows=64
// gives a quicker run. Both build their grid tables before the clock
// starts.
var iqBenchTypes = []quant.Type{quant.IQ4_NL, quant.IQ4_XS, quant.IQ3_S, quant.IQ3_XXS, quant.IQ2_S, quant.IQ2_XS, quant.IQ2_XXS}

// BenchmarkQuantizeRowsIQ measures QuantizeRowsWeighted on the i-quants.
func BenchmarkQuantizeRowsIQ(b *testing.B) {
	benchGo(b, iqBenchTypes, true)
}

// BenchmarkLibggmlIQ measures ggml_quantize_chunk on the same i-quant
// input and importance matrix.
func BenchmarkLibggmlIQ(b *testing.B) {
	benchLibggml(b, iqBenchTypes, true)
}
