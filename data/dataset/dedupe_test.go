package dataset

import (
	"strings"
	"testing"
)

func TestNormalizeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello, World!", "hello world"},
		{"  hello\t\n world  ", "hello world"},
		{"HELLO WORLD", "hello world"},
		{"well-known", "well known"},
		{"Ｈｅｌｌｏ", "hello"}, // full-width letters (NFKC)
		{"ﬁle", "file"},    // a ligature
		{"2+2=4", "2+2=4"}, // symbols stay
		{"...", ""},
		{"café", "café"},
	}
	for _, tt := range tests {
		if got := NormalizeText(tt.in); got != tt.want {
			t.Errorf("NormalizeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDeduper(t *testing.T) {
	rows := []map[string]any{
		{"text": "What is 2+2?", "domain": "math"},
		{"text": "what is 2+2", "domain": "math"},
		{"text": "What is 2+2?", "domain": "coding"},
		{"text": "What is 3+3?", "domain": "math"},
	}
	tests := []struct {
		mode   string
		fields []string
		want   string // kept (1) or not (0), per row
	}{
		{DedupeExact, nil, "1101"},
		{DedupeNormalized, nil, "1001"},
		{DedupeExact, []string{"text", "domain"}, "1111"},
		{DedupeNormalized, []string{"text", "domain"}, "1011"},
		{DedupeExact, []string{"domain"}, "1010"},
	}
	for _, tt := range tests {
		d := newDeduper(tt.mode, tt.fields)
		var got strings.Builder
		for _, r := range rows {
			ok, err := d.first(r)
			if err != nil {
				t.Fatal(err)
			}
			got.WriteByte("01"[map[bool]int{false: 0, true: 1}[ok]])
		}
		if got.String() != tt.want {
			t.Errorf("%s %v: kept %s, want %s", tt.mode, tt.fields, got.String(), tt.want)
		}
	}

	// Values of other types compare by canonical JSON, never equal to a string.
	d := newDeduper(DedupeExact, []string{"v"})
	for i, c := range []struct {
		v    any
		want bool
	}{{"1", true}, {1.0, true}, {map[string]any{"a": 1.0, "b": 2.0}, true}, {map[string]any{"b": 2.0, "a": 1.0}, false}} {
		if ok, _ := d.first(map[string]any{"v": c.v}); ok != c.want {
			t.Errorf("value %d (%v): first = %v, want %v", i, c.v, ok, c.want)
		}
	}

	_, err := newDeduper(DedupeExact, nil).first(map[string]any{"question": "x"})
	if err == nil || !strings.Contains(err.Error(), `the row has no "text" field`) {
		t.Errorf("row without text: error = %v", err)
	}
}
