package zpack

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// maxHeaderLen is the largest safetensors JSON header accepted, the limit
// the safetensors library itself enforces (100 MB).
const maxHeaderLen = 100_000_000

// segment is a byte range of the original file and how to code it.
type segment struct {
	off, n int64
	kind   frameKind
}

// planSegments splits a file of size bytes into segments that cover it
// exactly, in order. A safetensors file gets its BF16 and F16 tensor ranges
// as plane segments; anything else (the header, other dtypes, gaps, a file
// that is not safetensors or whose header does not hold together) is plain.
// It returns an error only when reading fails.
func planSegments(r io.ReaderAt, size int64) ([]segment, error) {
	plain := []segment{{0, size, kindPlain}}
	if size == 0 {
		return nil, nil
	}
	tensors, dataStart, ok, err := readSafetensorsRanges(r, size)
	if err != nil || !ok {
		return plain, err
	}
	var segs []segment
	add := func(off, end int64, k frameKind) {
		if end <= off {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].kind == k && segs[n-1].off+segs[n-1].n == off {
			segs[n-1].n += end - off
			return
		}
		segs = append(segs, segment{off, end - off, k})
	}
	cur := int64(0)
	for _, t := range tensors {
		begin, end := dataStart+t.begin, dataStart+t.end
		add(cur, begin, kindPlain)
		add(begin, end, t.kind)
		cur = end
	}
	add(cur, size, kindPlain)
	return segs, nil
}

type tensorRange struct {
	begin, end int64 // relative to the data section
	kind       frameKind
}

// readSafetensorsRanges parses the safetensors header at the start of r.
// ok is false when the file is not a well-formed safetensors file (then the
// caller codes it as plain bytes); only read errors are returned.
func readSafetensorsRanges(r io.ReaderAt, size int64) (ranges []tensorRange, dataStart int64, ok bool, err error) {
	if size < 8 {
		return nil, 0, false, nil
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, 0, false, fmt.Errorf("read safetensors header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen < 2 || hlen > maxHeaderLen || hlen > uint64(size-8) {
		return nil, 0, false, nil
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, 0, false, fmt.Errorf("read safetensors header: %w", err)
	}
	ranges, ok = parseSafetensorsHeader(hdr, size-8-int64(hlen))
	return ranges, 8 + int64(hlen), ok, nil
}

// parseSafetensorsHeader decodes the JSON header and returns the non-empty
// tensor ranges sorted by offset. ok is false unless every tensor's range
// lies within dataLen and no two overlap.
func parseSafetensorsHeader(hdr []byte, dataLen int64) ([]tensorRange, bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, false
	}
	var out []tensorRange
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype       string  `json:"dtype"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &t); err != nil || len(t.DataOffsets) != 2 {
			return nil, false
		}
		b, e := t.DataOffsets[0], t.DataOffsets[1]
		if b < 0 || e < b || e > dataLen {
			return nil, false
		}
		if b == e {
			continue
		}
		k := kindPlain
		if (e-b)%2 == 0 {
			switch t.Dtype {
			case "BF16":
				k = kindBF16
			case "F16":
				k = kindF16
			}
		}
		out = append(out, tensorRange{b, e, k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].begin < out[j].begin })
	for i := 1; i < len(out); i++ {
		if out[i].begin < out[i-1].end {
			return nil, false
		}
	}
	return out, true
}
