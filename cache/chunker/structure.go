package chunker

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
)

// maxHeader bounds the header StructureCuts reads: a safetensors or GGUF
// header larger than this gets no structure cuts (plain FastCDC still
// dedups it).
const maxHeader = 64 << 20

// StructureCuts returns where a safetensors or GGUF file's structure
// begins: the end of the header and the start of every tensor's data,
// sorted, each within (0, size). A tensor shorter than minLen gets no cut
// of its own (it joins the next one), so that files of many tiny tensors do
// not become many tiny chunks. Anything else, or a header that does not
// parse, gets no cuts: they are a hint for deduplication, never needed for
// correctness.
func StructureCuts(r io.ReaderAt, size int64, minLen int) []int64 {
	var head [8]byte
	if size < 16 {
		return nil
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil
	}
	var cuts []int64
	if string(head[:4]) == "GGUF" {
		cuts = ggufCuts(r, size)
	} else {
		cuts = safetensorsCuts(r, size, binary.LittleEndian.Uint64(head[:]))
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	// The header's end is always a cut; a tensor start only if the run
	// since the last cut is at least minLen.
	var out []int64
	for _, c := range cuts {
		if c <= 0 || c >= size || len(out) > 0 && c-out[len(out)-1] < int64(minLen) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// safetensorsCuts parses the header: a little-endian uint64 length n, n
// bytes of JSON whose tensors give data_offsets relative to 8+n.
func safetensorsCuts(r io.ReaderAt, size int64, n uint64) []int64 {
	if n < 2 || n > maxHeader || int64(n) > size-8 {
		return nil
	}
	js := make([]byte, n)
	if _, err := r.ReadAt(js, 8); err != nil || js[0] != '{' {
		return nil
	}
	var hdr map[string]json.RawMessage
	if json.Unmarshal(js, &hdr) != nil {
		return nil
	}
	base := 8 + int64(n)
	cuts := []int64{base}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Offsets []int64 `json:"data_offsets"`
		}
		if json.Unmarshal(raw, &t) != nil || len(t.Offsets) != 2 {
			return nil
		}
		cuts = append(cuts, base+t.Offsets[0])
	}
	return cuts
}

// ggufCuts parses a GGUF v2/v3 header (see REFERENCE.md): the key-value
// pairs are skipped (general.alignment read), then each tensor info's
// offset, relative to the aligned start of the data section.
func ggufCuts(r io.ReaderAt, size int64) []int64 {
	d := &reader{r: r, size: min(size, maxHeader), off: 4}
	if v := d.u32(); v != 2 && v != 3 {
		return nil
	}
	nt, nkv := d.u64(), d.u64()
	if nt > 1<<20 || nkv > 1<<20 {
		return nil
	}
	align := uint64(32)
	for range nkv {
		key := d.str()
		typ := d.u32()
		if key == "general.alignment" && typ == 4 {
			align = uint64(d.u32())
			continue
		}
		d.skipValue(typ, 0)
	}
	offs := make([]int64, 0, nt)
	for range nt {
		d.str()
		dims := d.u32()
		if dims > 8 {
			return nil
		}
		d.off += 8 * int64(dims)
		d.u32() // type
		offs = append(offs, int64(d.u64()))
	}
	if d.bad || align == 0 || align > 1<<20 {
		return nil
	}
	data := (d.off + int64(align) - 1) / int64(align) * int64(align)
	cuts := []int64{data}
	for _, o := range offs {
		if o < 0 || o > size {
			return nil
		}
		cuts = append(cuts, data+o)
	}
	return cuts
}

// reader decodes little-endian values from a ReaderAt; any failure sets
// bad and makes every later value zero.
type reader struct {
	r         io.ReaderAt
	size, off int64
	bad       bool
}

func (d *reader) bytes(n int64) []byte {
	if d.bad || n < 0 || n > d.size-d.off {
		d.bad = true
		return nil
	}
	b := make([]byte, n)
	if _, err := d.r.ReadAt(b, d.off); err != nil {
		d.bad = true
		return nil
	}
	d.off += n
	return b
}

func (d *reader) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *reader) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *reader) str() string {
	n := d.u64()
	if n > uint64(d.size) {
		d.bad = true
		return ""
	}
	return string(d.bytes(int64(n)))
}

// skipValue skips a value of GGUF type typ.
func (d *reader) skipValue(typ uint32, depth int) {
	sizes := map[uint32]int64{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
	switch {
	case d.bad:
	case sizes[typ] > 0:
		d.off += sizes[typ]
	case typ == 8:
		n := d.u64()
		if n > uint64(d.size) {
			d.bad = true
			return
		}
		d.off += int64(n)
	case typ == 9 && depth == 0:
		et, n := d.u32(), d.u64()
		if n > uint64(d.size) {
			d.bad = true
			return
		}
		if s := sizes[et]; s > 0 {
			d.off += s * int64(n)
			return
		}
		for range n {
			if d.skipValue(et, depth+1); d.bad {
				return
			}
		}
	default:
		d.bad = true
	}
	if d.off > d.size {
		d.bad = true
	}
}
