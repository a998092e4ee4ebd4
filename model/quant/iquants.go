package quant

import "fmt"

// iqKernel is one i-quant type's quantiser and dequantiser. quantize takes
// nil or one importance weight per value of src (weights are positional:
// a row's imatrix entry, repeated for each row); it fails only on input
// for which ggml aborts (Inf, NaN or values whose squares overflow, which
// leave a lattice group with no nearest grid point).
type iqKernel struct {
	quantize     func(dst []byte, src, qw []float32) error
	dequantize   func(dst []float32, src []byte)
	needsWeights bool
}

// iqKernelFor returns t's kernel when t is an i-quant.
func iqKernelFor(t Type) (iqKernel, bool) {
	switch t {
	case IQ4_NL:
		return iqKernel{quantize: quantizeIQ4NL, dequantize: dequantizeIQ4NL}, true
	case IQ4_XS:
		return iqKernel{quantize: quantizeIQ4XS, dequantize: dequantizeIQ4XS}, true
	case IQ3_S:
		return iqKernel{quantize: quantizeIQ3S, dequantize: dequantizeIQ3S}, true
	case IQ3_XXS:
		return iqKernel{quantize: quantizeIQ3XXS, dequantize: dequantizeIQ3XXS}, true
	case IQ2_XXS:
		return iqKernel{quantize: quantizeIQ2XXS, dequantize: dequantizeIQ2XXS, needsWeights: true}, true
	case IQ2_XS:
		return iqKernel{quantize: quantizeIQ2XS, dequantize: dequantizeIQ2XS, needsWeights: true}, true
	case IQ2_S:
		return iqKernel{quantize: quantizeIQ2S, dequantize: dequantizeIQ2S}, true
	}
	return iqKernel{}, false
}

// RequiresImatrix reports whether t can only be quantised with importance
// weights, as ggml_quantize_requires_imatrix (IQ2_XXS and IQ2_XS here):
// Quantize and QuantizeRows refuse it, QuantizeRowsWeighted needs weights.
func RequiresImatrix(t Type) bool {
	k, ok := iqKernelFor(t)
	return ok && k.needsWeights
}

// quantizeIQ checks sizes and runs an i-quant kernel on whole blocks; qw is
// nil or as long as src.
func quantizeIQ(t Type, k iqKernel, dst []byte, src, qw []float32) error {
	if err := checkRow(t, len(dst), len(src)); err != nil {
		return err
	}
	if qw == nil && k.needsWeights {
		return errNeedsImatrix(t)
	}
	if qw != nil && len(qw) != len(src) {
		return fmt.Errorf("quant: %s: %d importance weights for %d values", t, len(qw), len(src))
	}
	if err := k.quantize(dst, src, qw); err != nil {
		return fmt.Errorf("quant: %s: %w", t, err)
	}
	return nil
}

// quantizeRowsIQ quantises whole rows of len(qw) values with the same
// importance weights.
func quantizeRowsIQ(t Type, k iqKernel, dst []byte, src, qw []float32) error {
	rowLen := len(qw)
	rowBytes := RowSize(t, rowLen)
	for r := range len(src) / rowLen {
		if err := quantizeIQ(t, k, dst[r*rowBytes:(r+1)*rowBytes], src[r*rowLen:(r+1)*rowLen], qw); err != nil {
			return err
		}
	}
	return nil
}

// dequantizeIQ checks sizes and runs an i-quant dequantiser.
func dequantizeIQ(t Type, k iqKernel, dst []float32, src []byte) error {
	if err := checkRow(t, len(src), len(dst)); err != nil {
		return err
	}
	k.dequantize(dst, src)
	return nil
}

// errNeedsImatrix is the refusal to quantise t without importance weights.
func errNeedsImatrix(t Type) error {
	return fmt.Errorf("quant: %s needs an importance matrix (imatrix): ggml refuses to quantise it without one", t)
}
