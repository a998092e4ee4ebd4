//go:build !amd64

package awq

import "runtime"

// Kernel names the arithmetic that computes the search's errors here (see
// dot_amd64.go); Go may fuse multiply-adds on some architectures.
func Kernel() string { return runtime.GOARCH + "-go" }

func dot4x2(x0, x1, x2, x3, e0, e1 []float32) (a00, a01, a10, a11, a20, a21, a30, a31 float32) {
	return dot4x2Go(x0, x1, x2, x3, e0, e1)
}
