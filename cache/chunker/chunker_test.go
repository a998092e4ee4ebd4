package chunker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/quant"
)

// small makes tests fast: an average of 4 KiB.
var small = Params{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}

func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func lens(cs []Chunk) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.Len)
	}
	return out
}

// TestKnownAnswer pins the cut points of a fixed input: the gear table, the
// masks and the algorithm are part of the bucket format (a change would
// make every chunk new).
func TestKnownAnswer(t *testing.T) {
	if gear[0] != 0xe220a8397b1dcdaf || gear[255] == 0 {
		t.Fatalf("gear[0] = %#x: the table changed", gear[0])
	}
	cs, err := Chunks(random(1, 64<<10), small)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(lens(cs))
	const want = "[4629 5815 4109 4528 4109 4219 5135 4991 5924 8143 4273 4884 4777]"
	if got != want {
		t.Errorf("chunk lengths of random(1, 64 KiB):\ngot  %s\nwant %s", got, want)
	}
}

func TestBoundsAndCover(t *testing.T) {
	for _, n := range []int{0, 1, small.Min, small.Min + 1, small.Max, 3*small.Max + 7, 1 << 20} {
		data := random(uint64(n), n)
		cs, err := Chunks(data, small)
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		for i, c := range cs {
			if c.Off != off {
				t.Fatalf("n=%d: chunk %d at %d, want %d", n, i, c.Off, off)
			}
			if c.Len > int64(small.Max) || c.Len < int64(small.Min) && i != len(cs)-1 || c.Len == 0 {
				t.Fatalf("n=%d: chunk %d of %d bytes, outside [%d, %d]", n, i, c.Len, small.Min, small.Max)
			}
			off += c.Len
		}
		if off != int64(n) {
			t.Fatalf("n=%d: chunks cover %d bytes", n, off)
		}
		if n == 1<<20 {
			avg := n / len(cs)
			if avg < small.Avg/2 || avg > small.Avg*2 {
				t.Errorf("average chunk %d bytes, want about %d", avg, small.Avg)
			}
		}
	}
}

func TestDeterministicAndWindowIndependent(t *testing.T) {
	data := random(7, 1<<20)
	a, _ := Chunks(data, small)
	b, _ := Chunks(slices.Clone(data), small)
	if !slices.Equal(a, b) {
		t.Fatal("two runs over the same bytes disagree")
	}
	// The same bytes at the end of a larger input give the same cuts once
	// the chunker has resynchronised (a cut depends on 64 bytes at most).
	c, _ := Chunks(append(random(8, 100_000), data...), small)
	if shared := sharedBytes(data, a, append(random(8, 100_000), data...), c); shared < len(data)*9/10 {
		t.Errorf("only %d of %d bytes in shared chunks after a prefix", shared, len(data))
	}
}

// sharedBytes counts the bytes of a's chunks whose content is also a chunk of b.
func sharedBytes(da []byte, a []Chunk, db []byte, b []Chunk) int {
	set := map[string]bool{}
	for _, c := range b {
		set[string(db[c.Off:c.Off+c.Len])] = true
	}
	n := 0
	for _, c := range a {
		if set[string(da[c.Off:c.Off+c.Len])] {
			n += int(c.Len)
		}
	}
	return n
}

func TestInsertionResilient(t *testing.T) {
	data := random(3, 2<<20)
	a, _ := Chunks(data, small)
	for _, at := range []int{0, 1000, 1 << 20, 2<<20 - 5} {
		edited := slices.Concat(data[:at], []byte("some inserted bytes"), data[at:])
		b, _ := Chunks(edited, small)
		// Only the chunks around the edit may change: a few Max at most.
		if shared := sharedBytes(data, a, edited, b); shared < len(data)-3*small.Max {
			t.Errorf("insert at %d: %d of %d bytes still in shared chunks", at, shared, len(data))
		}
	}
}

// safetensors builds a safetensors file of the given tensors (raw bytes).
func safetensors(names []string, tensors [][]byte) []byte {
	js := "{"
	off := 0
	for i, n := range names {
		if i > 0 {
			js += ","
		}
		js += fmt.Sprintf("%q:{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[%d,%d]}", n, len(tensors[i]), off, off+len(tensors[i]))
		off += len(tensors[i])
	}
	js += "}"
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(js)))
	b.WriteString(js)
	for _, t := range tensors {
		b.Write(t)
	}
	return b.Bytes()
}

func TestSafetensorsCuts(t *testing.T) {
	ts := [][]byte{random(1, 50_000), random(2, 100), random(3, 70_000), random(4, 60_000)}
	f := safetensors([]string{"a", "b", "c", "d"}, ts)
	hdr := int64(len(f)) - 180_100
	cuts := StructureCuts(bytesReaderAt(f), int64(len(f)), small.Min)
	// b (100 bytes) is shorter than Min: no cut at c's start.
	want := []int64{hdr, hdr + 50_000, hdr + 120_100}
	if !slices.Equal(cuts, want) {
		t.Fatalf("cuts %v, want %v", cuts, want)
	}
	// Move tensor a to the end and change d: a's and c's chunks survive.
	ts2 := [][]byte{ts[1], ts[2], random(9, 60_000), ts[0]}
	g := safetensors([]string{"b", "c", "d", "a"}, ts2)
	ca, _ := Chunks(f, small)
	cb, _ := Chunks(g, small)
	shared := sharedBytes(f, ca, g, cb)
	if shared < 50_000+70_000-small.Max {
		t.Errorf("%d bytes shared, want a's and c's 120,000 at least (less a chunk)", shared)
	}
}

func TestGGUFCuts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	w, err := gguf.NewWriter(path, 32)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.SetKV("general.name", "x")
	_ = w.SetKV("tokenizer.ggml.tokens", []string{"a", "bb"})
	for i, n := range []uint64{8192, 4096} {
		if err := w.AddTensor(fmt.Sprint("t", i), quant.F32, []uint64{n}); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []int{8192, 4096} {
		if err := w.WriteTensorData(fmt.Sprint("t", i), random(uint64(i), 4*n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := int64(f.DataOffset())
	t1, _ := f.Tensor("t1")
	raw := readFile(t, path)
	cuts := StructureCuts(bytesReaderAt(raw), int64(len(raw)), small.Min)
	want := []int64{data, data + int64(t1.Offset)}
	if !slices.Equal(cuts, want) {
		t.Fatalf("cuts %v, want %v", cuts, want)
	}
}

func TestHostileHeaders(t *testing.T) {
	for _, b := range [][]byte{
		[]byte("GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"),
		append(binary.LittleEndian.AppendUint64(nil, 1<<62), "{}xxxxxxxx"...),
		append(binary.LittleEndian.AppendUint64(nil, 10), `{"a":1}xxxxxxxxxxx`...),
	} {
		if c := StructureCuts(bytesReaderAt(b), int64(len(b)), 1); c != nil {
			t.Errorf("%q: cuts %v, want none", b, c)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkSplit(b *testing.B) {
	data := random(1, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = Split(bytesReaderAt(data), int64(len(data)), Default, nil, func(Chunk, []byte) error { return nil })
	}
}

// TestParallelSameAsSplit: the parallel chunker gives Split's chunks, with
// and without structure cuts, for regions much smaller and larger than a
// chunk.
func TestParallelSameAsSplit(t *testing.T) {
	ts := [][]byte{random(11, 300_000), random(12, 100), random(13, 700_000), random(14, 5_000)}
	structured := safetensors([]string{"a", "b", "c", "d"}, ts)
	for _, data := range [][]byte{random(10, 3<<20), structured, random(9, 100), nil} {
		r := bytesReaderAt(data)
		size := int64(len(data))
		cuts := StructureCuts(r, size, small.Min)
		var want []Chunk
		_ = Split(r, size, small, cuts, func(c Chunk, _ []byte) error { want = append(want, c); return nil })
		for _, span := range []int64{3000, 50_000, 1 << 20, 1 << 30} {
			var mu sync.Mutex
			seen := map[Chunk]bool{}
			got, err := parallel(r, size, small, cuts, 3, span, func(c Chunk, b []byte, _ bool) {
				mu.Lock()
				seen[c] = bytes.Equal(b, data[c.Off:c.Off+c.Len])
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("size %d, span %d: %d chunks, want %d (%v vs %v)", size, span, len(got), len(want), head(got), head(want))
			}
			for _, c := range got {
				if !seen[c] {
					t.Fatalf("chunk %v not visited with its bytes", c)
				}
			}
		}
	}
}

func head(cs []Chunk) []Chunk { return cs[:min(len(cs), 5)] }

func BenchmarkParallel(b *testing.B) {
	data := random(1, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = parallel(bytesReaderAt(data), int64(len(data)), Default, nil, 2, 16<<20, func(Chunk, []byte, bool) {})
	}
}
