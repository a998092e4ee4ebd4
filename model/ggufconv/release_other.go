//go:build !linux

package ggufconv

// dropPages does nothing off Linux, where the semantics of
// MADV_DONTNEED on a shared file mapping differ.
func dropPages([]byte) {}
