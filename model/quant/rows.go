package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// Quantize converts src into dst in type t: a block quantisation for the
// quantised types, a plain conversion for F32, F16 and BF16. len(src) must be
// a multiple of t's block size and len(dst) exactly RowSize(t, len(src)).
func Quantize(t Type, dst []byte, src []float32) error {
	switch t {
	case F32:
		return ConvertF32(dst, src)
	case F16:
		return ConvertF16(dst, src)
	case BF16:
		return ConvertBF16(dst, src)
	case Q4_0:
		return QuantizeQ4_0(dst, src)
	case Q4_1:
		return QuantizeQ4_1(dst, src)
	case Q5_0:
		return QuantizeQ5_0(dst, src)
	case Q5_1:
		return QuantizeQ5_1(dst, src)
	case Q8_0:
		return QuantizeQ8_0(dst, src)
	case Q2_K:
		return QuantizeQ2_K(dst, src)
	case Q3_K:
		return QuantizeQ3_K(dst, src)
	case Q4_K:
		return QuantizeQ4_K(dst, src)
	case Q5_K:
		return QuantizeQ5_K(dst, src)
	case Q6_K:
		return QuantizeQ6_K(dst, src)
	}
	if k, ok := iqKernelFor(t); ok {
		return quantizeIQ(t, k, dst, src, nil)
	}
	return fmt.Errorf("quant: cannot quantise to unknown ggml type %d", uint32(t))
}

// Dequantize expands src, data of type t, into dst. len(dst) must be a
// multiple of t's block size and len(src) exactly RowSize(t, len(dst)).
func Dequantize(t Type, dst []float32, src []byte) error {
	switch t {
	case F32:
		if err := checkRow(F32, len(src), len(dst)); err != nil {
			return err
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	case F16:
		if err := checkRow(F16, len(src), len(dst)); err != nil {
			return err
		}
		for i := range dst {
			dst[i] = FP16ToFP32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	case BF16:
		if err := checkRow(BF16, len(src), len(dst)); err != nil {
			return err
		}
		for i := range dst {
			dst[i] = BF16ToFP32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	case Q4_0:
		return DequantizeQ4_0(dst, src)
	case Q4_1:
		return DequantizeQ4_1(dst, src)
	case Q5_0:
		return DequantizeQ5_0(dst, src)
	case Q5_1:
		return DequantizeQ5_1(dst, src)
	case Q8_0:
		return DequantizeQ8_0(dst, src)
	case Q2_K:
		return DequantizeQ2_K(dst, src)
	case Q3_K:
		return DequantizeQ3_K(dst, src)
	case Q4_K:
		return DequantizeQ4_K(dst, src)
	case Q5_K:
		return DequantizeQ5_K(dst, src)
	case Q6_K:
		return DequantizeQ6_K(dst, src)
	}
	if k, ok := iqKernelFor(t); ok {
		return dequantizeIQ(t, k, dst, src)
	}
	return fmt.Errorf("quant: cannot dequantise unknown ggml type %d", uint32(t))
}

// rowsPerTask bounds the work one goroutine claims at a time: small enough
// that the workers finish together, large enough that the atomic counter
// is not contended.
const rowsPerTask = 16

// QuantizeRows quantises the rows of src (each rowLen values) into dst
// (each RowSize(t, rowLen) bytes) with up to workers goroutines (at least
// one). The output is identical to quantising row by row: the references
// treat every block independently, so the split cannot change a byte.
func QuantizeRows(t Type, dst []byte, src []float32, rowLen int, workers int) error {
	return quantizeRows(t, dst, src, rowLen, nil, workers)
}

// quantizeRows checks the sizes of a QuantizeRows call and quantises whole
// rows, with the importance weights unless they are nil, on up to workers
// goroutines that claim rowsPerTask rows at a time.
func quantizeRows(t Type, dst []byte, src []float32, rowLen int, weights []float32, workers int) error {
	rowBytes := RowSize(t, rowLen)
	if rowBytes < 0 || rowLen == 0 {
		return fmt.Errorf("quant: %s: row length %d is not a positive multiple of the block size %d", t, rowLen, t.BlockSize())
	}
	if len(src)%rowLen != 0 {
		return fmt.Errorf("quant: %s: %d values is not a whole number of rows of %d", t, len(src), rowLen)
	}
	nrows := len(src) / rowLen
	if len(dst) != nrows*rowBytes {
		return fmt.Errorf("quant: %s: %d rows need %d bytes, got a buffer of %d", t, nrows, nrows*rowBytes, len(dst))
	}
	if weights == nil && RequiresImatrix(t) {
		return errNeedsImatrix(t)
	}
	workers = max(1, min(workers, (nrows+rowsPerTask-1)/rowsPerTask))
	if workers == 1 {
		return quantizeChunk(t, dst, src, weights)
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ntasks := int64((nrows + rowsPerTask - 1) / rowsPerTask)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				task := next.Add(1) - 1
				if task >= ntasks {
					return
				}
				r0 := int(task) * rowsPerTask
				r1 := min(nrows, r0+rowsPerTask)
				if err := quantizeChunk(t, dst[r0*rowBytes:r1*rowBytes], src[r0*rowLen:r1*rowLen], weights); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("quant: rows %d..%d: %w", r0, r1, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// quantizeChunk quantises whole rows, with the importance weights (one per
// column) unless they are nil.
func quantizeChunk(t Type, dst []byte, src, weights []float32) error {
	if weights == nil {
		return Quantize(t, dst, src)
	}
	if k, ok := iqKernelFor(t); ok {
		return quantizeRowsIQ(t, k, dst, src, weights)
	}
	quantizeWeighted(t, dst, src, weights)
	return nil
}
