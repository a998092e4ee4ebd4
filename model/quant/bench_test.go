//go:build unix

package quant_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/cogumi/cogumi/model/quant"
)

// benchRows and benchRowLen make a 16 MiB F32 input: a 1024x4096 matrix,
// the shape of a small model's projection.
const benchRows, benchRowLen, benchWorkers = 1024, 4096, 2

var benchTypes = []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K, quant.F16, quant.BF16}

// Both benchmarks report, besides wall-clock MB/s of F32 input, "MB/cpu-s":
// input bytes per second of CPU time used. On a machine shared with other
// work (a CI runner, a two-core VM) wall-clock figures swing by 2x between
// runs while CPU time stays steady, so MB/cpu-s is the fair comparison;
// with two idle cores the two-thread wall-clock rate approaches twice it.

// BenchmarkQuantizeRows measures QuantizeRows on two goroutines.
func BenchmarkQuantizeRows(b *testing.B) {
	src := irwinHall(9, benchRows*benchRowLen, 0.02)
	for _, typ := range benchTypes {
		b.Run(typ.String(), func(b *testing.B) {
			dst := make([]byte, quant.RowSize(typ, len(src)))
			b.SetBytes(int64(4 * len(src)))
			cpu0 := cpuTime(b)
			for b.Loop() {
				if err := quant.QuantizeRows(typ, dst, src, benchRowLen, benchWorkers); err != nil {
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
	ref := ggmlRef(b)
	src := irwinHall(9, benchRows*benchRowLen, 0.02)
	for _, typ := range benchTypes {
		b.Run(typ.String(), func(b *testing.B) {
			wall, cpu, err := ref.bench(typ, src, benchRowLen, benchWorkers, b.N, nil)
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

// The i-quants are one to two orders of magnitude slower than the k-quants
// (in libggml too), so they are measured on 64 rows of 4096 values, with
// importance weights (as they are used) on the same two workers.
const benchIQRows = 64

var benchIQTypes = []quant.Type{quant.IQ4_NL, quant.IQ4_XS, quant.IQ3_S, quant.IQ3_XXS, quant.IQ2_XS, quant.IQ2_XXS}

// BenchmarkQuantizeRowsIQ measures QuantizeRowsWeighted on the i-quants.
func BenchmarkQuantizeRowsIQ(b *testing.B) {
	src := irwinHall(9, benchIQRows*benchRowLen, 0.02)
	w := unitWeights(benchRowLen)
	for _, typ := range benchIQTypes {
		b.Run(typ.String(), func(b *testing.B) {
			dst := make([]byte, quant.RowSize(typ, len(src)))
			// The first call builds the type's grid tables; keep it out.
			if err := quant.QuantizeRowsWeighted(typ, dst[:quant.RowSize(typ, benchRowLen)], src[:benchRowLen], benchRowLen, w, 1); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(4 * len(src)))
			cpu0 := cpuTime(b)
			for b.Loop() {
				if err := quant.QuantizeRowsWeighted(typ, dst, src, benchRowLen, w, benchWorkers); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(4*len(src))*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
		})
	}
}

// BenchmarkLibggmlIQ measures ggml_quantize_chunk on the same i-quant
// input and weights (libggml builds its grid tables before its clock
// starts).
func BenchmarkLibggmlIQ(b *testing.B) {
	ref := ggmlRef(b)
	src := irwinHall(9, benchIQRows*benchRowLen, 0.02)
	w := unitWeights(benchRowLen)
	for _, typ := range benchIQTypes {
		b.Run(typ.String(), func(b *testing.B) {
			wall, cpu, err := ref.bench(typ, src, benchRowLen, benchWorkers, b.N, w)
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
