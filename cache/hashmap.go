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

// mapWindow is how much of a file hashMapped maps at once, and mapWindows
// how many windows may be mapped at a time: mapWindow is a multiple of
// segmentSize, and the mapped pages (which count in the process's RSS, and
// so in a batch system's memory limit) stay within mapWindows*mapWindow.
// 16 MiB to 128 MiB windows cost the same CPU time (issue 21, 1 GiB).
const (
	mapWindow  = 32 << 20
	mapWindows = 2
)

// hashMapped is hashSegments over mappings of f, mapWindow at a time: the
// workers hash the page cache's pages in place, where pread would first copy
// every byte (measured on 1 GiB in the page cache, one core: 0.36-0.45 s of
// CPU time with pread into a reused buffer, 0.26 s mapped). A file
// truncated meanwhile faults (SIGBUS): the workers turn that into an error
// with debug.SetPanicOnFault. ok is false if the file could not be mapped
// (the caller reads it instead).
//
// The workers take segments in turn across windows, with no barrier between
// windows: the worker that hashes a window's last segment unmaps it (1.2 ms
// for 64 MiB) while the others go on, and a worker that reaches a window
// maps it, waiting only while mapWindows others are still mapped. (Waiting
// for every window to finish, then unmapping it on one goroutine, left the
// other cores idle for 20 ms per GiB.)
func hashMapped(f *os.File, size int64, workers int) (d Digest, ok bool, err error) {
	return hashWindows(f, size, workers, mapWindow, mapWindows)
}

// hashWindows is hashMapped with windows of winSize bytes (a multiple of
// segmentSize), at most maxWins mapped at a time.
func hashWindows(f *os.File, size int64, workers int, winSize int64, maxWins int) (d Digest, ok bool, err error) {
	nseg := (size - 1) / segmentSize
	m := &mapper{fd: int(f.Fd()), size: size, winSize: winSize, wins: make([]window, (size+winSize-1)/winSize),
		tokens: make(chan struct{}, maxWins), stop: make(chan struct{})}
	// Segments before the tail per window; the last window also holds the
	// tail, for Finish, and is unmapped at the end.
	perWin := winSize / segmentSize
	for i := range m.wins {
		m.wins[i].left.Store(min(nseg, int64(i+1)*perWin) - min(nseg, int64(i)*perWin))
	}
	defer m.unmapAll()
	if _, err := m.window(0); err != nil {
		return Digest{}, false, nil
	}
	cvs := make([][8]uint32, nseg)
	errs := make([]error, workers+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < nseg && !m.failed(); i = next.Add(1) - 1 {
				win := i / perWin
				data, err := m.window(win)
				if err == nil {
					guarded(&err, func() {
						off := (i - win*perWin) * segmentSize
						cvs[i] = b3tree.SubtreeCV(data[off:off+segmentSize], uint64(i)*segmentChunks)
					})
				}
				if err != nil {
					if err != errStopped { // another worker's error is the cause
						errs[w] = err
					}
					m.fail()
					return
				}
				if m.wins[win].left.Add(-1) == 0 && win < int64(len(m.wins))-1 {
					m.unmap(win)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Digest{}, true, err
	}
	last := int64(len(m.wins)) - 1
	data, err := m.window(last)
	if err != nil {
		return Digest{}, true, err
	}
	var t b3tree.Stack
	for _, cv := range cvs {
		t.Push(cv, bits.TrailingZeros(segmentChunks))
	}
	guarded(&errs[workers], func() { d = Digest(t.Finish(data[nseg*segmentSize-last*winSize:])) })
	if errs[workers] != nil {
		return Digest{}, true, errs[workers]
	}
	return d, true, nil
}

// mapper maps the windows of a file for hashMapped's workers, each once,
// at most maxWins at a time.
type mapper struct {
	fd      int
	size    int64
	winSize int64
	wins    []window
	tokens  chan struct{} // one per mapped window
	stop    chan struct{} // closed when a worker fails: others stop waiting
	once    sync.Once     // closes stop
}

// window is one mapping of winSize bytes (fewer at the end of the file).
type window struct {
	once   sync.Once
	data   []byte
	err    error
	left   atomic.Int64 // segments before the tail not yet hashed
	mu     sync.Mutex   // guards unmapped against unmapAll
	mapped bool         // data is mapped and not yet unmapped
}

// errStopped is a window not mapped because another worker failed.
var errStopped = errors.New("hashing stopped")

// window returns window i's mapping, mapping it on first use.
func (m *mapper) window(i int64) ([]byte, error) {
	w := &m.wins[i]
	w.once.Do(func() {
		select {
		case m.tokens <- struct{}{}:
		case <-m.stop:
			w.err = errStopped
			return
		}
		start := i * m.winSize
		w.data, w.err = unix.Mmap(m.fd, start, int(min(m.winSize, m.size-start)), unix.PROT_READ, unix.MAP_SHARED)
		if w.err != nil {
			<-m.tokens
			return
		}
		_ = unix.Madvise(w.data, unix.MADV_SEQUENTIAL) // advice only
		w.mu.Lock()
		w.mapped = true
		w.mu.Unlock()
	})
	return w.data, w.err
}

// unmap unmaps window i, once all its segments are hashed.
func (m *mapper) unmap(i int64) {
	w := &m.wins[i]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mapped {
		_ = unix.Munmap(w.data)
		w.mapped = false
		<-m.tokens
	}
}

// unmapAll unmaps what is still mapped (the last window, and any a failed
// worker left), after the workers have returned.
func (m *mapper) unmapAll() {
	for i := range m.wins {
		m.unmap(int64(i))
	}
}

// fail makes the workers stop, those waiting for a window too.
func (m *mapper) fail() { m.once.Do(func() { close(m.stop) }) }

// failed reports whether a worker has failed.
func (m *mapper) failed() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
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
