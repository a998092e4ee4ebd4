package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxRowBytes bounds one JSONL line, so that a file that is not JSONL
// at all (a binary, one giant line) fails fast instead of filling memory.
const DefaultMaxRowBytes = 16 << 20

// RowError is a problem with one row, named by its file and line.
type RowError struct {
	File string // as the user knows it: "data/raw.jsonl" or "//data:answers/a.jsonl"
	Line int    // 1-based
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// lineReader reads the lines of a JSONL file, bounded in length.
type lineReader struct {
	r    *bufio.Reader
	max  int
	line int // number of the line last returned
	buf  []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxRowBytes
	}
	return &lineReader{r: bufio.NewReaderSize(r, 256<<10), max: max}
}

// next returns the next line without its "\n" or "\r\n", valid until the
// next call, and io.EOF after the last line.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if err == nil && len(lr.buf) == 0 {
			// The common case: the whole line is in the reader's buffer.
			lr.line++
			return lr.bound(trimEOL(chunk))
		}
		lr.buf = append(lr.buf, chunk...)
		if len(lr.buf) > lr.max+2 {
			return nil, &RowError{Line: lr.line + 1, Err: fmt.Errorf("line is longer than %s; is this a JSONL file?", byteSize(lr.max))}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(lr.buf) == 0 {
				return nil, io.EOF
			}
			lr.line++
			return lr.bound(trimEOL(lr.buf))
		case err != nil:
			return nil, err
		}
		lr.line++
		return lr.bound(trimEOL(lr.buf))
	}
}

func (lr *lineReader) bound(b []byte) ([]byte, error) {
	if len(b) > lr.max {
		return nil, &RowError{Line: lr.line, Err: fmt.Errorf("line is longer than %s; is this a JSONL file?", byteSize(lr.max))}
	}
	return b, nil
}

// trimEOL removes a trailing "\n" or "\r\n": the bytes left are what
// row_sha256 (contracts.md) hashes.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// field is one top-level member of a row: its key and where its value lies
// in the line, so that a field can be replaced without re-encoding the rest.
type field struct {
	key        []byte // unescaped; valid until the next parse
	start, end int
}

// parser validates rows; its buffers are reused from row to row.
type parser struct {
	keys   [][]byte // keys of the open objects, innermost last (unescaped)
	frames []frame
	fields []field
}

type frame struct {
	obj      bool
	wantKey  bool
	keyStart int // index into parser.keys of this object's first key
}

// errBlank marks a line holding only white space: JSONL readers skip them.
var errBlank = errors.New("blank line")

// parsed is one validated row.
type parsed struct {
	obj    []byte         // the line without surrounding white space
	fields []field        // positions in obj; valid until the next parse
	row    map[string]any // decoded by encoding/json
}

// parse validates one line and decodes it. The line must be valid UTF-8
// holding one JSON object without duplicate keys (at any depth: a
// duplicate key is data that two readers read differently).
func (p *parser) parse(line []byte) (parsed, error) {
	if !utf8.Valid(line) {
		return parsed{}, fmt.Errorf("invalid UTF-8 at byte %d", invalidAt(line)+1)
	}
	b := bytes.TrimSpace(line)
	if len(b) == 0 {
		return parsed{}, errBlank
	}
	if b[0] != '{' {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return parsed{}, fmt.Errorf("not JSON: %v", err)
		}
		return parsed{}, fmt.Errorf("not a JSON object (a JSON %s)", jsonKind(v))
	}
	if !json.Valid(b) {
		var m map[string]any
		err := json.Unmarshal(b, &m) // for its message
		return parsed{}, fmt.Errorf("not JSON: %v", err)
	}
	if err := p.scan(b); err != nil {
		return parsed{}, err
	}
	// The top level is decoded here from the scan, which is cheaper than
	// encoding/json's reflection; the values are what it would give.
	m := make(map[string]any, len(p.fields))
	for _, f := range p.fields {
		v, err := decodeValue(b[f.start:f.end])
		if err != nil {
			return parsed{}, fmt.Errorf("not JSON: field %q: %v", f.key, err)
		}
		m[string(f.key)] = v
	}
	return parsed{obj: b, fields: p.fields, row: m}, nil
}

// decodeValue decodes one valid JSON value as encoding/json does into an
// any: strings, float64, bool, nil, []any, map[string]any.
func decodeValue(v []byte) (any, error) {
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return string(v[1 : len(v)-1]), nil
		}
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	case '{', '[':
		var x any
		err := json.Unmarshal(v, &x)
		return x, err
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return nil, fmt.Errorf("number %s does not fit a float64", v)
	}
	return f, nil
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// scan walks b, already known to be one valid JSON object, and records the
// top-level fields; it fails on a duplicate key at any depth.
func (p *parser) scan(b []byte) error {
	p.keys, p.frames, p.fields = p.keys[:0], p.frames[:0], p.fields[:0]
	valueStart := -1 // at depth 1, where the current value began
	for i := 0; i < len(b); {
		c := b[i]
		switch c {
		case '{', '[':
			p.frames = append(p.frames, frame{obj: c == '{', wantKey: c == '{', keyStart: len(p.keys)})
			i++
		case '}', ']':
			if len(p.frames) == 1 && valueStart >= 0 {
				p.fields[len(p.fields)-1].end = trimRight(b, valueStart, i)
				valueStart = -1
			}
			f := p.frames[len(p.frames)-1]
			p.keys = p.keys[:f.keyStart]
			p.frames = p.frames[:len(p.frames)-1]
			i++
		case ',':
			f := &p.frames[len(p.frames)-1]
			if f.obj {
				f.wantKey = true
			}
			if len(p.frames) == 1 && valueStart >= 0 {
				p.fields[len(p.fields)-1].end = trimRight(b, valueStart, i)
				valueStart = -1
			}
			i++
		case ':':
			i++
			if len(p.frames) == 1 {
				for i < len(b) && isSpace(b[i]) {
					i++
				}
				valueStart = i
				p.fields[len(p.fields)-1].start = i
			}
		case '"':
			j := endOfString(b, i)
			f := &p.frames[len(p.frames)-1]
			if f.obj && f.wantKey {
				f.wantKey = false
				key, err := unquote(b[i:j])
				if err != nil {
					return fmt.Errorf("not JSON: %v", err)
				}
				for _, k := range p.keys[f.keyStart:] {
					if bytes.Equal(k, key) {
						return fmt.Errorf("duplicate key %q", key)
					}
				}
				p.keys = append(p.keys, key)
				if len(p.frames) == 1 {
					p.fields = append(p.fields, field{key: key})
				}
			}
			i = j
		default:
			i++
		}
	}
	return nil
}

// endOfString returns the index just after the string starting at b[i].
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// unquote returns a JSON string's content: a slice of q unless it holds
// escapes.
func unquote(q []byte) ([]byte, error) {
	if bytes.IndexByte(q, '\\') < 0 {
		return q[1 : len(q)-1], nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return []byte(s), err
}

func trimRight(b []byte, start, end int) int {
	for end > start && isSpace(b[end-1]) {
		end--
	}
	return end
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// withField returns obj (one JSON object) with its top-level field key set
// to the JSON value val: replaced in place when present, else appended, so
// that every other byte of the row stays as it was.
func withField(dst, obj []byte, fields []field, key string, val []byte) []byte {
	dst = dst[:0]
	for _, f := range fields {
		if string(f.key) == key {
			dst = append(dst, obj[:f.start]...)
			dst = append(dst, val...)
			return append(dst, obj[f.end:]...)
		}
	}
	body := obj[:trimRight(obj, 0, len(obj)-1)] // without the closing brace
	dst = append(dst, body...)
	if len(fields) > 0 {
		dst = append(dst, ',')
	}
	dst = appendJSONString(dst, key)
	dst = append(dst, ':')
	dst = append(dst, val...)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does without its HTML escaping (rows are data, not web pages).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // JSON allows them; JavaScript does not
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
