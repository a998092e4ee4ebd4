//go:build linux

package ggufconv

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropPages tells the kernel that the whole pages inside b, a read-only
// slice of a memory-mapped checkpoint, are no longer needed by this
// process. The mapping is file-backed and never written, so the data stays
// in the page cache and a later read faults it back in: this only keeps
// the pages of a converted tensor from counting against the resident set,
// which would otherwise grow to the size of the checkpoint.
func dropPages(b []byte) {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + page - 1) &^ (page - 1)
	hi := (start + uintptr(len(b))) &^ (page - 1)
	if hi <= lo {
		return
	}
	// Advice only: an error changes nothing but memory accounting.
	_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_DONTNEED)
}
