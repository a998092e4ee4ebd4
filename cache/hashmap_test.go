package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
)

func TestHashMappedMatchesReference(t *testing.T) {
	// One window; two windows whose second holds only the tail; a segment
	// across no window boundary but a tail past it.
	for _, size := range []int{mapMin + 3*segmentSize + 12345, mapWindow + 1000, mapWindow + segmentSize} {
		path := filepath.Join(t.TempDir(), "f")
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>13)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, n, err := DigestFile(path)
		if err != nil || n != int64(len(data)) || d != Digest(blake3.Sum256(data)) {
			t.Fatalf("size %d: DigestFile = %s, %d, %v; want the reference digest", size, d.Short(), n, err)
		}
	}
}

// TestGuardedFault: reading a mapped page past the end of a truncated file
// faults; guarded turns that into errShrank instead of a crash.
func TestGuardedFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 3*4096), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := unix.Mmap(int(f.Fd()), 0, 3*4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Skip("mmap:", err)
	}
	defer unix.Munmap(data)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var got error
	var sink byte
	guarded(&got, func() { sink = data[2*4096] })
	if got != errShrank {
		t.Fatalf("guarded read of a truncated mapping = %v (%d), want errShrank", got, sink)
	}
}

// TestHashWindows: with small windows, the workers cross many windows with
// no barrier between them, however many workers share how few mapped
// windows; the tail may share the last window with segments or be alone in
// it, and the file may end anywhere in a page.
func TestHashWindows(t *testing.T) {
	const win = 2 * segmentSize
	path := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 7*win+3*segmentSize/2)
	for i := range data {
		data[i] = byte(i*11 + i>>12)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sizes := []int{2*segmentSize + 1, win - 1, win, win + 1, win + segmentSize, 3*win + 999, 7*win + segmentSize - 4095, len(data)}
	for _, size := range sizes {
		want := Digest(blake3.Sum256(data[:size]))
		for _, c := range []struct{ workers, maxWins int }{{1, 1}, {2, 1}, {2, 2}, {3, 2}, {8, 3}} {
			d, ok, err := hashWindows(f, int64(size), c.workers, win, c.maxWins)
			if !ok || err != nil || d != want {
				t.Errorf("%d bytes, %d workers, %d windows mapped: %s, %v, %v; want %s", size, c.workers, c.maxWins, d.Short(), ok, err, want.Short())
			}
		}
	}
}

// TestHashWindowsShrunk: a file shorter than the size being hashed faults
// past its end in some window; every worker stops (none waits forever for
// a window) and the error says the file shrank.
func TestHashWindowsShrunk(t *testing.T) {
	const win = 2 * segmentSize
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 3*win), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, workers := range []int{1, 2, 4} {
		_, ok, err := hashWindows(f, 9*win+1000, workers, win, 2)
		if !ok || !errors.Is(err, errShrank) {
			t.Errorf("%d workers: ok %v, err %v; want errShrank", workers, ok, err)
		}
	}
}
