package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderLen bounds the JSON header. The Python package refuses headers
// over 100 MB; a larger length prefix means a corrupt or foreign file, and
// reading it anyway could cost gigabytes of memory.
const MaxHeaderLen = 100 << 20

// metadataKey is the reserved header key for free-form string metadata.
const metadataKey = "__metadata__"

// FormatError is a problem with a safetensors file: which file, which tensor
// (empty for the header as a whole) and what is wrong.
type FormatError struct {
	Path   string
	Tensor string
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("safetensors %s: tensor %q: %s", e.Path, e.Tensor, e.Msg)
	}
	return fmt.Sprintf("safetensors %s: %s", e.Path, e.Msg)
}

// header is a parsed and validated header.
type header struct {
	infos []Info // sorted by Begin, then End, then Name
	meta  map[string]string
}

// parseHeader decodes and validates the JSON header of a file whose data
// section holds dataLen bytes. Every tensor is checked (dtype, shape, byte
// count, range inside the data, no overlap, no duplicate) before anything is
// returned, so that callers never see a tensor that would slice out of range.
func parseHeader(path string, js []byte, dataLen int64) (*header, error) {
	bad := func(tensor, format string, args ...any) error {
		return &FormatError{Path: path, Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
	}
	// encoding/json would silently replace invalid UTF-8; the Python package
	// refuses it, and so do we.
	if !utf8.Valid(js) {
		return nil, bad("", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("", "header is not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad("", "header is not a JSON object")
	}
	h := &header{}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("", "header is not valid JSON: %v", err)
		}
		name, _ := tok.(string) // object keys are always strings
		if seen[name] {
			if name == metadataKey {
				return nil, bad("", "header has %s twice", metadataKey)
			}
			return nil, bad(name, "the header names this tensor twice")
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, bad("", "header is not valid JSON (at key %q): %v", name, err)
		}
		if name == metadataKey {
			if err := json.Unmarshal(raw, &h.meta); err != nil {
				return nil, bad("", "%s must map strings to strings: %v", metadataKey, err)
			}
			continue
		}
		info, err := parseTensor(name, raw, dataLen)
		if err != nil {
			return nil, bad(name, "%v", err)
		}
		h.infos = append(h.infos, info)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bad("", "header is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("", "header has trailing data after its JSON object")
	}
	sort.Slice(h.infos, func(i, j int) bool {
		a, b := h.infos[i], h.infos[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return a.Name < b.Name
	})
	// Sorted by offset, two non-empty ranges overlap exactly when one starts
	// before the end of the furthest-reaching earlier one.
	var prev *Info
	for i := range h.infos {
		cur := &h.infos[i]
		if cur.Begin == cur.End {
			continue // an empty range holds no byte, so it cannot overlap
		}
		if prev != nil && cur.Begin < prev.End {
			return nil, bad(cur.Name, "data_offsets [%d, %d] overlap tensor %q at [%d, %d]",
				cur.Begin, cur.End, prev.Name, prev.Begin, prev.End)
		}
		if prev == nil || cur.End > prev.End {
			prev = cur
		}
	}
	return h, nil
}

// rawTensor is one tensor's entry as it appears in the header. Numbers stay
// json.Number so that floats, huge values and strings are reported, not
// silently converted.
type rawTensor struct {
	DType   *string       `json:"dtype"`
	Shape   []json.Number `json:"shape"`
	Offsets []json.Number `json:"data_offsets"`
}

func parseTensor(name string, raw json.RawMessage, dataLen int64) (Info, error) {
	var rt rawTensor
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rt); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return Info{}, fmt.Errorf("field %q has the wrong JSON type (%s)", ute.Field, ute.Value)
		}
		return Info{}, fmt.Errorf("entry is not an object with dtype, shape and data_offsets: %v", err)
	}
	switch {
	case rt.DType == nil:
		return Info{}, errors.New("entry has no dtype")
	case rt.Shape == nil:
		return Info{}, errors.New("entry has no shape")
	case rt.Offsets == nil:
		return Info{}, errors.New("entry has no data_offsets")
	case len(rt.Offsets) != 2:
		return Info{}, fmt.Errorf("data_offsets has %d numbers, want 2 (begin, end)", len(rt.Offsets))
	}
	info := Info{Name: name, DType: DType(*rt.DType), Shape: make([]int64, len(rt.Shape))}
	for i, n := range rt.Shape {
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || v < 0 {
			return Info{}, fmt.Errorf("shape dimension %d is %s; want an integer >= 0", i, n)
		}
		info.Shape[i] = v
	}
	var off [2]int64
	for i, n := range rt.Offsets {
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || v < 0 {
			return Info{}, fmt.Errorf("data_offsets[%d] is %s; want an integer >= 0", i, n)
		}
		off[i] = v
	}
	info.Begin, info.End = off[0], off[1]
	size, err := byteSize(info.DType, info.Shape)
	if err != nil {
		return Info{}, err
	}
	if info.End < info.Begin {
		return Info{}, fmt.Errorf("data_offsets [%d, %d] end before they begin", info.Begin, info.End)
	}
	if info.End-info.Begin != size {
		return Info{}, fmt.Errorf("shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d",
			info.Shape, info.DType, size, info.Begin, info.End, info.End-info.Begin)
	}
	if info.End > dataLen {
		return Info{}, fmt.Errorf("data_offsets [%d, %d] run past the end of the data section (%d bytes): the file is truncated or the header lies",
			info.Begin, info.End, dataLen)
	}
	return info, nil
}
