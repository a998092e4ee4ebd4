package label

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, pkg string
		want    Label
		str     string // canonical form; "" when it is in
	}{
		{in: "//models:final", want: Label{Pkg: "models", Name: "final"}},
		{in: ":final", pkg: "models", want: Label{Pkg: "models", Name: "final"}, str: "//models:final"},
		{in: ":x", want: Label{Name: "x"}, str: "//:x"}, // relative to the root package
		{in: "//:root", want: Label{Name: "root"}},
		{in: "//data:splits/val.jsonl", want: Label{Pkg: "data", Name: "splits", Sub: "val.jsonl"}},
		{in: ":splits/a/b.txt", pkg: "data/x", want: Label{Pkg: "data/x", Name: "splits", Sub: "a/b.txt"}, str: "//data/x:splits/a/b.txt"},
		{in: "//a/b", want: Label{Pkg: "a/b", Name: "b"}, str: "//a/b:b"},
		{in: "//models", want: Label{Pkg: "models", Name: "models"}, str: "//models:models"},
		{in: "//a/b/c:d", want: Label{Pkg: "a/b/c", Name: "d"}},
		{in: "//m-1/v_2.0:t.x-y_Z9", want: Label{Pkg: "m-1/v_2.0", Name: "t.x-y_Z9"}},
		{in: "//a:...", want: Label{Pkg: "a", Name: "..."}}, // a name, not a pattern
		{in: "//a:b/.hidden/x y", want: Label{Pkg: "a", Name: "b", Sub: ".hidden/x y"}},
		{in: "//models:final", pkg: "other", want: Label{Pkg: "models", Name: "final"}}, // pkg only for relative labels
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.pkg)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.in, tt.pkg, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q, %q) = %#v, want %#v", tt.in, tt.pkg, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("Parse(%q, %q).String() = %q, want %q", tt.in, tt.pkg, got.String(), str)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, pkg string
		msg     string // a part of the error message
	}{
		{"", "", "starts with // or :"},
		{"models:final", "", "starts with // or :"},
		{"final", "models", "starts with // or :"},
		{"/models:final", "", "starts with // or :"},
		{"//", "", "missing target name"},
		{"//models:", "", "empty target name"},
		{":", "models", "empty target name"},
		{"//mo dels:x", "", `character ' '`},
		{"//models:fi nal", "", `character ' '`},
		{"//a//b:c", "", `bad path element ""`},
		{"//a/../b:c", "", `bad path element ".."`},
		{"//./a:c", "", `bad path element "."`},
		{"//a/:c", "", `bad path element ""`},
		{"///a:c", "", `bad path element ""`},
		{"//a/...:c", "", `bad path element "..."`},
		{"//a/...", "", `bad path element "..."`},
		{"//a/", "", `bad path element ""`},
		{"//a:b/../c", "", `bad element ".."`},
		{"//a:b/./c", "", `bad element "."`},
		{"//a:b/", "", "empty path after target name"},
		{"//a:b//c", "", `bad element ""`},
		{"//a:b/c/", "", `bad element ""`},
		{`//a:b/c\d`, "", "bad character"},
		{"//a:b/c\x00", "", "bad character"},
		{"//a:.", "", "not allowed"},
		{"//a:..", "", "not allowed"},
		{"//a:b:c", "", `character ':'`},
		{"//a:*", "", `character '*'`},
		{"//a:é", "", `character 'é'`},
		{"//a\x00:b", "", "not allowed"},
		{":x", "a//b", `bad path element ""`},
		{":x", "a/../b", `bad path element ".."`},
		{":x", "/a", `bad path element ""`},
		{"//models:all", "", `"all" is reserved`},
		{":all", "models", `"all" is reserved`},
		{"//a/all", "", `"all" is reserved`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.pkg)
		if err == nil {
			t.Errorf("Parse(%q, %q) = %#v, want an error", tt.in, tt.pkg, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Parse(%q, %q): error %q, want it to contain %q", tt.in, tt.pkg, err, tt.msg)
		}
		if !strings.HasPrefix(err.Error(), "bad label ") {
			t.Errorf("Parse(%q, %q): error %q does not start with \"bad label\"", tt.in, tt.pkg, err)
		}
		if !got.IsZero() {
			t.Errorf("Parse(%q, %q) returned %#v with its error, want the zero Label", tt.in, tt.pkg, got)
		}
	}
}

func TestTarget(t *testing.T) {
	l := Label{Pkg: "data", Name: "splits", Sub: "val.jsonl"}
	if got, want := l.Target(), (Label{Pkg: "data", Name: "splits"}); got != want {
		t.Errorf("Target() = %v, want %v", got, want)
	}
	if l.IsZero() || !(Label{}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestIsLabel(t *testing.T) {
	for s, want := range map[string]bool{
		"//a:b": true, ":b": true, "//...": true,
		"a.txt": false, "data/a.txt": false, "": false, "/abs/path": false,
	} {
		if got := IsLabel(s); got != want {
			t.Errorf("IsLabel(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in, pkg string
		want    Pattern
		str     string
	}{
		{in: "//...", want: Pattern{Recursive: true}, str: "//..."},
		{in: "//models/...", want: Pattern{Pkg: "models", Recursive: true}, str: "//models/..."},
		{in: "//a/b/...", want: Pattern{Pkg: "a/b", Recursive: true}, str: "//a/b/..."},
		{in: "//models:all", want: Pattern{Pkg: "models", All: true}, str: "//models:all"},
		{in: "//models:*", want: Pattern{Pkg: "models", All: true}, str: "//models:all"},
		{in: "//:all", want: Pattern{All: true}, str: "//:all"},
		{in: ":all", pkg: "models", want: Pattern{Pkg: "models", All: true}, str: "//models:all"},
		{in: ":*", pkg: "a/b", want: Pattern{Pkg: "a/b", All: true}, str: "//a/b:all"},
		{in: "//models:final", want: Pattern{Pkg: "models", Name: "final"}, str: "//models:final"},
		{in: ":final", pkg: "models", want: Pattern{Pkg: "models", Name: "final"}, str: "//models:final"},
		{in: "//a/b", want: Pattern{Pkg: "a/b", Name: "b"}, str: "//a/b:b"},
		{in: "//:root", want: Pattern{Name: "root"}, str: "//:root"},
		{in: "//all:all", want: Pattern{Pkg: "all", All: true}, str: "//all:all"},
		{in: "//all/...", want: Pattern{Pkg: "all", Recursive: true}, str: "//all/..."},
	}
	for _, tt := range tests {
		got, err := ParsePattern(tt.in, tt.pkg)
		if err != nil {
			t.Errorf("ParsePattern(%q, %q): %v", tt.in, tt.pkg, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePattern(%q, %q) = %#v, want %#v", tt.in, tt.pkg, got, tt.want)
		}
		if got.String() != tt.str {
			t.Errorf("ParsePattern(%q, %q).String() = %q, want %q", tt.in, tt.pkg, got.String(), tt.str)
		}
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		in, pkg string
		msg     string
	}{
		{"", "", "starts with // or :"},
		{"...", "", "starts with // or :"},
		{"models/...", "", "starts with // or :"},
		{"models:all", "", "starts with // or :"},
		{"///...", "", "empty package path"},
		{"////...", "", `bad path element ""`},
		{"//a//...", "", `bad path element ""`},
		{"//a/../...", "", `bad path element ".."`},
		{"//.../...", "", `bad path element "..."`},
		{"//mo dels/...", "", `character ' '`},
		{"//a//b:all", "", `bad pattern "//a//b:all"`}, // the text as written, not rewritten
		{"//a/../b:*", "", `bad path element ".."`},
		{":all", "a//b", `bad path element ""`},
		{"//data:splits/val.jsonl", "", "not paths inside them"},
		{"//models:", "", "empty target name"},
		{"//a//b:c", "", `bad path element ""`},
		{"//all", "", `"all" is reserved`}, // would print as //all:all, every target
	}
	for _, tt := range tests {
		got, err := ParsePattern(tt.in, tt.pkg)
		if err == nil {
			t.Errorf("ParsePattern(%q, %q) = %#v, want an error", tt.in, tt.pkg, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParsePattern(%q, %q): error %q, want it to contain %q", tt.in, tt.pkg, err, tt.msg)
		}
	}
}

func TestPatternMatches(t *testing.T) {
	labels := []string{
		"//:root",
		"//models:final",
		"//models:base",
		"//models/sub:x",
		"//modelsx:y",
		"//data:splits/val.jsonl",
		"//data/raw:a",
	}
	tests := []struct {
		pattern string
		want    []string // the labels of the list above that it matches
	}{
		{"//...", labels},
		{"//models/...", []string{"//models:final", "//models:base", "//models/sub:x"}},
		{"//models/sub/...", []string{"//models/sub:x"}},
		{"//data/...", []string{"//data:splits/val.jsonl", "//data/raw:a"}},
		{"//models:all", []string{"//models:final", "//models:base"}},
		{"//models:*", []string{"//models:final", "//models:base"}},
		{"//:all", []string{"//:root"}},
		{"//models:final", []string{"//models:final"}},
		{"//data:splits", []string{"//data:splits/val.jsonl"}}, // a label with a Sub is still its target
		{"//nothing/...", nil},
		{"//model/...", nil}, // a prefix of a package name is not its parent
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern, "")
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
		}
		want := make(map[string]bool)
		for _, s := range tt.want {
			want[s] = true
		}
		for _, s := range labels {
			l, err := Parse(s, "")
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if got := p.Matches(l); got != want[s] {
				t.Errorf("%s.Matches(%s) = %v, want %v", tt.pattern, s, got, want[s])
			}
		}
	}
}

// FuzzRoundTrip checks that every label Parse accepts prints in a canonical
// form that parses back to the same label, with no package context needed,
// and that ParsePattern reads it as the same target.
func FuzzRoundTrip(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzRoundTrip.
	f.Fuzz(func(t *testing.T, s, pkg string) {
		l, err := Parse(s, pkg)
		if err != nil {
			return
		}
		back, err := Parse(l.String(), "")
		if err != nil {
			t.Fatalf("Parse(%q, %q) = %#v, but its String %q does not parse: %v", s, pkg, l, l.String(), err)
		}
		if back != l {
			t.Fatalf("Parse(%q, %q) = %#v, but Parse(%q) = %#v", s, pkg, l, l.String(), back)
		}
		if p, err := ParsePattern(s, pkg); err == nil && l.Sub == "" {
			if want := (Pattern{Pkg: l.Pkg, Name: l.Name}); p != want && !p.All {
				t.Fatalf("ParsePattern(%q, %q) = %#v, want %#v like Parse", s, pkg, p, want)
			}
		}
	})
}

// FuzzPatternRoundTrip does the same for patterns.
func FuzzPatternRoundTrip(f *testing.F) {
	for _, seed := range [][2]string{
		{"//...", ""},
		{"//models/...", ""},
		{"//models:all", ""},
		{"//models:*", ""},
		{":all", "a/b"},
		{"//models:final", ""},
		{"///...", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, s, pkg string) {
		p, err := ParsePattern(s, pkg)
		if err != nil {
			return
		}
		back, err := ParsePattern(p.String(), "")
		if err != nil {
			t.Fatalf("ParsePattern(%q, %q) = %#v, but its String %q does not parse: %v", s, pkg, p, p.String(), err)
		}
		if back != p {
			t.Fatalf("ParsePattern(%q, %q) = %#v, but ParsePattern(%q) = %#v", s, pkg, p, p.String(), back)
		}
	})
}
