package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Dedupe modes.
const (
	DedupeExact      = "exact"
	DedupeNormalized = "normalized_text"
)

// NormalizeText is the form that normalized_text dedupe compares: Unicode
// NFKC (full-width letters, ligatures and other compatibility forms become
// their plain letters), lower case, punctuation read as white space, runs
// of white space as one space, trimmed. "Hello,  World!" and "hello world"
// are the same text; "2+2" and "22" are not (+ is a symbol, not punctuation).
func NormalizeText(s string) string { return string(appendNormalized(nil, s)) }

// appendNormalized appends NormalizeText(s) to dst.
func appendNormalized(dst []byte, s string) []byte {
	start := len(dst)
	space := false
	if isASCII(s) { // already NFKC: the common case, byte by byte
		for i := 0; i < len(s); i++ {
			c := s[i]
			if unicode.IsSpace(rune(c)) || unicode.IsPunct(rune(c)) {
				space = len(dst) > start
				continue
			}
			if space {
				dst = append(dst, ' ')
				space = false
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	for _, r := range norm.NFKC.String(s) {
		if unicode.IsSpace(r) || unicode.IsPunct(r) {
			space = len(dst) > start
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// deduper remembers the rows seen so far by a 128-bit digest of their
// dedupe key: memory per row is fixed whatever the text's length.
type deduper struct {
	mode   string
	fields []string
	seen   map[[16]byte]struct{}
	buf    []byte
}

func newDeduper(mode string, fields []string) *deduper {
	if len(fields) == 0 {
		fields = []string{"text"}
	}
	return &deduper{mode: mode, fields: fields, seen: make(map[[16]byte]struct{})}
}

// first reports whether row is the first with its key (it is then kept).
func (d *deduper) first(row map[string]any) (bool, error) {
	d.buf = d.buf[:0]
	for _, f := range d.fields {
		v, ok := row[f]
		if !ok {
			if f == "text" {
				return false, fmt.Errorf(`dedupe: the row has no "text" field (build it with text = "...", or name the fields to compare with dedupe_fields)`)
			}
			return false, fmt.Errorf("dedupe: the row has no field %q (dedupe_fields)", f)
		}
		// Each value length-prefixed, so that ("ab","c") and ("a","bc") differ.
		at := len(d.buf)
		d.buf = append(d.buf, 0, 0, 0, 0, 0, 0, 0, 0)
		var err error
		if d.buf, err = d.appendKey(d.buf, v); err != nil {
			return false, fmt.Errorf("dedupe: field %q: %v", f, err)
		}
		binary.BigEndian.PutUint64(d.buf[at:], uint64(len(d.buf)-at-8))
	}
	sum := sha256.Sum256(d.buf)
	var k [16]byte
	copy(k[:], sum[:])
	if _, dup := d.seen[k]; dup {
		return false, nil
	}
	d.seen[k] = struct{}{}
	return true, nil
}

func (d *deduper) appendKey(dst []byte, v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		dst = append(dst, 's')
		if d.mode == DedupeNormalized {
			return appendNormalized(dst, s), nil
		}
		return append(dst, s...), nil
	}
	// Other values compare by their canonical JSON (encoding/json sorts
	// object keys), typed apart from strings: "1" is not 1.
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(append(dst, 'j'), b...), nil
}
