package cache

import (
	"errors"
	"math/bits"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/cogumi/cogumi/cache/b3tree"
)

// mapMin is the size from which DigestFile maps a file instead of reading
// it: below it, the mapping's set-up costs more than the copy it saves.
const mapMin = 16 << 20

// errShrank is a mapped file that lost bytes while it was hashed.
var errShrank = errors.New("the file shrank while it was being hashed")

// mapWindow is how much of a file hashMapped maps at once: a multiple of
// segmentSize, small enough that the mapped pages (which count in the
// process's RSS, and so in a batch system's memory limit) stay few.
const mapWindow = 64 << 20

// hashMapped is hashSegments over mappings of f, mapWindow at a time: the
// workers hash the page cache's pages in place, where pread would first copy
// every byte (measured on 1 GiB in the page cache, 2 cores: system time
// 0.16-0.27 s with pread, 0.04-0.08 s for b3sum, which maps; see issue 21).
// A file truncated meanwhile faults (SIGBUS): the workers turn that into an
// error with debug.SetPanicOnFault. ok is false if the file could not be
// mapped (the caller reads it instead).
func hashMapped(f *os.File, size int64, workers int) (d Digest, ok bool, err error) {
	nseg := (size - 1) / segmentSize
	cvs := make([][8]uint32, nseg)
	errs := make([]error, workers+1)
	for start := int64(0); start < size; start += mapWindow {
		data, err := unix.Mmap(int(f.Fd()), start, int(min(mapWindow, size-start)), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			if start == 0 {
				return Digest{}, false, nil
			}
			return Digest{}, true, err
		}
		_ = unix.Madvise(data, unix.MADV_SEQUENTIAL) // advice only
		first, last := start/segmentSize, min(nseg, (start+mapWindow)/segmentSize)
		// Segments are taken in turn rather than striped: a worker whose
		// core another process holds does not leave the others idle.
		var next atomic.Int64
		next.Store(first)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				guarded(&errs[w], func() {
					for i := next.Add(1) - 1; i < last; i = next.Add(1) - 1 {
						off := i*segmentSize - start
						cvs[i] = b3tree.SubtreeCV(data[off:off+segmentSize], uint64(i)*segmentChunks)
					}
				})
			})
		}
		wg.Wait()
		if size <= start+mapWindow { // the last window: the tail, on the root's path
			var t b3tree.Stack
			for _, cv := range cvs {
				t.Push(cv, bits.TrailingZeros(segmentChunks))
			}
			guarded(&errs[workers], func() { d = Digest(t.Finish(data[nseg*segmentSize-start:])) })
		}
		_ = unix.Munmap(data)
		if err := errors.Join(errs...); err != nil {
			return Digest{}, true, err
		}
	}
	return d, true, nil
}

// guarded runs fn, turning a memory fault (a mapped file truncated under
// it) into errShrank.
func guarded(err *error, fn func()) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok && isFault(e) {
				*err = errShrank
				return
			}
			panic(r)
		}
	}()
	fn()
}

// isFault reports a runtime error from a memory fault.
func isFault(e error) bool {
	var addr interface{ Addr() uintptr }
	return errors.As(e, &addr)
}
