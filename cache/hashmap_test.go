package cache

import (
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
