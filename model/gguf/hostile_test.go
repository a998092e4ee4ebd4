package gguf_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/model/gguf"
)

// raw builds GGUF bytes field by field, so that a test can write exactly
// the lie it wants a reader to meet.
type raw []byte

func (r raw) u32(v uint32) raw    { return binary.LittleEndian.AppendUint32(r, v) }
func (r raw) u64(v uint64) raw    { return binary.LittleEndian.AppendUint64(r, v) }
func (r raw) str(s string) raw    { return append(r.u64(uint64(len(s))), s...) }
func (r raw) bytes(b ...byte) raw { return append(r, b...) }

func header(version uint32, nTensors, nKVs uint64) raw {
	return raw("GGUF").u32(version).u64(nTensors).u64(nKVs)
}

// tensor appends a tensor info.
func (r raw) tensor(name string, typ uint32, off uint64, dims ...uint64) raw {
	r = r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r = r.u64(d)
	}
	return r.u32(typ).u64(off)
}

// padTo pads with zeros to a multiple of a, then appends n data bytes.
func (r raw) padTo(a int, n int) raw {
	for len(r)%a != 0 {
		r = append(r, 0)
	}
	return append(r, make([]byte, n)...)
}

func TestHostileInput(t *testing.T) {
	kv := func(key string, typ uint32) raw { return header(3, 0, 1).str(key).u32(typ) }
	tensorFile := func(name string, typ uint32, off uint64, dims ...uint64) raw {
		return header(3, 1, 0).tensor(name, typ, off, dims...).padTo(32, 64)
	}
	cases := []struct {
		name string
		data raw
		want string
	}{
		{"empty", nil, "too short"},
		{"short", raw("GGUF").u32(3), "too short"},
		{"bad magic", raw("GGML").u32(3).u64(0).u64(0), "bad magic"},
		{"version 1", header(1, 0, 0), "version 1 is not supported"},
		{"version 4", header(4, 0, 0), "version 4 is not supported"},
		{"too many kvs", header(3, 0, 1<<40), "more than"},
		{"too many tensors", header(3, 1<<60, 0), "more than"},
		{"counts overflow", header(3, math.MaxUint64, math.MaxUint64), "more than"},
		{"key past end", header(3, 0, 1).u64(1 << 62).bytes(make([]byte, 20)...), "runs past the end"},
		{"empty key", header(3, 0, 1).str("").u32(4).u32(1).bytes(0), "key of 0 bytes"},
		{"string past end", kv("k", 8).u64(1000).bytes('a', 'b'), "string of 1000 bytes"},
		{"unknown value type", kv("k", 13).u32(0), "unknown value type 13"},
		{"huge value type", kv("k", 0xFFFFFFFF).u32(0), "unknown value type 4294967295"},
		{"nested array", kv("k", 9).u32(9).u64(1).u32(4).u64(1).u32(7), "nested arrays"},
		{"array of unknown", kv("k", 9).u32(77).u64(1).u32(0), "array of unknown value type 77"},
		{"array too long", kv("k", 9).u32(4).u64(1 << 61).u32(0), "cannot fit"},
		{"string array too long", kv("k", 9).u32(8).u64(5).str("a"), "cannot fit"},
		{"string in array past end", kv("k", 9).u32(8).u64(2).str("a").u64(99).bytes(make([]byte, 9)...), "string 1 of 2"},
		{"bad bool", kv("k", 7).bytes(2), "neither 0 nor 1"},
		{"bad bool in array", kv("k", 9).u32(7).u64(2).bytes(1, 3), "neither 0 nor 1"},
		{"truncated u64", kv("k", 10).bytes(1, 2, 3), "uint64 of 8 bytes"},
		{"duplicate key", header(3, 0, 2).str("k").u32(0).bytes(1).str("k").u32(0).bytes(2), `"k" appears twice`},
		{"alignment zero", kv("general.alignment", 4).u32(0), "general.alignment"},
		{"alignment three", kv("general.alignment", 4).u32(3), "general.alignment"},
		{"alignment as u64", kv("general.alignment", 10).u64(32), "general.alignment is uint64"},
		{"zero dims", tensorFile("t", 0, 0), "0 dimensions"},
		{"five dims", tensorFile("t", 0, 0, 1, 1, 1, 1, 1), "5 dimensions"},
		{"dims overflow", tensorFile("t", 0, 0, 1<<32, 1<<32), "overflows int64"},
		{"bytes overflow", tensorFile("t", 0, 0, 1<<40, 1<<21), "byte size overflows"},
		{"removed ggml type", tensorFile("t", 4, 0, 32), "unsupported ggml type 4"},
		{"unknown ggml type", tensorFile("t", 1000, 0, 32), "unsupported ggml type 1000"},
		{"partial block", tensorFile("t", 12, 0, 128), "not a multiple of Q4_K's block size 256"},
		{"misaligned offset", tensorFile("t", 0, 4, 2), "not a multiple of the alignment 32"},
		{"outside the file", tensorFile("t", 0, 32, 16), "outside the file"},
		{"far outside", tensorFile("t", 0, 1<<62, 1), "outside the file"},
		{"offset wraps", tensorFile("t", 0, math.MaxUint64-31, 16), "outside the file"},
		{"long name", tensorFile(strings.Repeat("x", 64), 0, 0, 1), "want 1..63"},
		{"empty name", tensorFile("", 0, 0, 1), "want 1..63"},
		{"name past end", header(3, 1, 0).u64(1 << 40).bytes(make([]byte, 40)...), "runs past the end"},
		{"truncated dims", header(3, 1, 0).str("t").u32(4).u64(1).bytes(make([]byte, 20)...), "tensor info 0"},
		{"duplicate tensor", header(3, 2, 0).tensor("t", 0, 0, 4).tensor("t", 0, 32, 4).padTo(32, 64), `"t" appears twice`},
		{"overlap", header(3, 2, 0).tensor("a", 0, 0, 16).tensor("b", 0, 32, 8).padTo(32, 96), `"a" (bytes 0..64) and "b" (from 32) overlap`},
		{"same offset", header(3, 2, 0).tensor("a", 0, 0, 8).tensor("b", 0, 0, 8).padTo(32, 64), "overlap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := gguf.OpenBytes(c.data)
			if err == nil {
				t.Fatalf("accepted: %+v", f.Tensors)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestHostileValid checks files a careless reader might reject: tensor
// infos listed in another order than their data, zero-size tensors that
// share an offset, and a file with no data section at all.
func TestHostileValid(t *testing.T) {
	for name, data := range map[string]raw{
		"reordered":   header(3, 2, 0).tensor("b", 0, 32, 8).tensor("a", 0, 0, 8).padTo(32, 64),
		"zero size":   header(3, 2, 0).tensor("a", 0, 0, 0).tensor("b", 0, 0, 8).padTo(32, 32),
		"header only": header(3, 0, 1).str("general.architecture").u32(8).str("llama"),
		"version 2":   header(2, 0, 0),
	} {
		if _, err := gguf.OpenBytes(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTruncated opens every prefix of a valid file: none may panic, and
// every prefix that cuts into tensor data must fail.
func TestTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	writeSample(t, path, 0, false)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.OpenBytes(full)
	if err != nil {
		t.Fatal(err)
	}
	var dataEnd uint64
	for _, ti := range f.Tensors {
		dataEnd = max(dataEnd, f.DataOffset()+ti.Offset+ti.Size)
	}
	for n := range len(full) {
		_, err := gguf.OpenBytes(full[:n])
		if err == nil && uint64(n) < dataEnd {
			t.Fatalf("prefix of %d bytes (data ends at %d) accepted", n, dataEnd)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := gguf.Open(filepath.Join(dir, "missing.gguf")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := gguf.Open(empty); err == nil || !strings.Contains(err.Error(), "empty.gguf") {
		t.Errorf("empty file: %v, want an error naming the file", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
