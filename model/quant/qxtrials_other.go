//go:build !amd64 || purego

package quant

const haveQxTrialsAsm = false

func qxTrialsAsm(x, w, wx []float32, is *[4]float32, lo, hi float32, out *[8]float32) {
	panic("quant: qxTrialsAsm without assembly")
}
