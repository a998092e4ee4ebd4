package cache

import (
	"strings"
	"testing"
)

// files builds a manifest of the given paths, each a one-byte file.
func files(paths ...string) Manifest {
	m := Manifest{}
	for _, p := range paths {
		m.Files = append(m.Files, FileEntry{Path: p, Digest: DigestBytes([]byte("x")), Size: 1})
	}
	return m
}

func TestManifestValidate(t *testing.T) {
	d := DigestBytes([]byte("x"))
	for _, tc := range []struct {
		name string
		m    Manifest
		err  string // "" for valid
	}{
		{"empty", Manifest{}, ""},
		{"simple", files("a", "b/c", "b/d/e", "c"), ""},
		{"unicode", files("données/été.jsonl", "模型.gguf"), ""},
		{"spaces and dots", files(".hidden", "a b", "a..b", "x/.y"), ""},
		{"byte order", files("a", "a-b", "a.b"), ""},
		{"dir sorted before its sibling", files("a-b", "a/b"), ""},
		{"empty path", files(""), "empty path"},
		{"absolute", files("/etc/passwd"), "absolute"},
		{"dotdot", files("../x"), `contains ".."`},
		{"dotdot inside", files("a/../../x"), `contains ".."`},
		{"dotdot alone", files(".."), `contains ".."`},
		{"dot", files("."), `contains "."`},
		{"dot component", files("a/./b"), `contains "."`},
		{"trailing slash", files("a/"), "empty component"},
		{"double slash", files("a//b"), "empty component"},
		{"backslash", files(`a\b`), "contains character"},
		{"windows dotdot", files(`..\x`), "contains character"},
		{"NUL", files("a\x00b"), "contains character"},
		{"newline", files("a\nb"), "contains character"},
		{"DEL", files("a\x7fb"), "contains character"},
		{"invalid UTF-8", files("a\xffb"), "not valid UTF-8"},
		{"long component", files(strings.Repeat("a", 256)), "component longer"},
		{"long path", files(strings.Repeat("a/", 2100) + "b"), "longer than"},
		{"unsorted", files("b", "a"), "not sorted"},
		{"duplicate", files("a", "a"), "listed twice"},
		{"file and dir", files("a", "a/b"), "both a file and a directory"},
		{"file and deep dir", files("a", "a-b", "a/b/c"), "both a file and a directory"},
		{"negative size", Manifest{Files: []FileEntry{{Path: "a", Digest: d, Size: -1}}}, "impossible size"},
		{"huge size", Manifest{Files: []FileEntry{{Path: "a", Digest: d, Size: 1 << 50}}}, "impossible size"},
		{"max size", Manifest{Files: []FileEntry{{Path: "a", Digest: d, Size: 1<<50 - 1}}}, ""},
		{"zero digest", Manifest{Files: []FileEntry{{Path: "a", Size: 1}}}, "zero digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.err != "" && err == nil:
				t.Errorf("Validate() = nil, want error containing %q", tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Errorf("Validate() = %v, want error containing %q", err, tc.err)
			}
		})
	}
}

func TestManifestTotalSizeAndLookup(t *testing.T) {
	m := files("a", "b/c", "d")
	m.Files[1].Size = 10
	if got := m.TotalSize(); got != 12 {
		t.Errorf("TotalSize = %d, want 12", got)
	}
	if f, ok := m.Lookup("b/c"); !ok || f.Size != 10 {
		t.Errorf("Lookup(b/c) = %v, %v", f, ok)
	}
	for _, p := range []string{"b", "", "e", "0"} {
		if _, ok := m.Lookup(p); ok {
			t.Errorf("Lookup(%q) found something", p)
		}
	}
}

func TestActionResultValidate(t *testing.T) {
	good := func() *ActionResult {
		return &ActionResult{Key: KeyFromRecords([]string{"x"}), Label: "//a:b", Outputs: files("out.txt"), Seconds: 1}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good result: %v", err)
	}
	var nilResult *ActionResult
	if err := nilResult.Validate(); err == nil {
		t.Error("nil result valid")
	}
	for name, spoil := range map[string]func(r *ActionResult){
		"zero key":         func(r *ActionResult) { r.Key = ActionKey{} },
		"bad output":       func(r *ActionResult) { r.Outputs = files("../x") },
		"negative seconds": func(r *ActionResult) { r.Seconds = -1 },
		"log size no log":  func(r *ActionResult) { r.LogSize = 5 },
		"negative log":     func(r *ActionResult) { r.Log, r.LogSize = DigestBytes(nil), -1 },
		"label not UTF-8":  func(r *ActionResult) { r.Label = "\xff" },
		"huge label":       func(r *ActionResult) { r.Label = strings.Repeat("a", maxLabelLen+1) },
		"record not UTF-8": func(r *ActionResult) { r.Records = []string{"ok", "\xfe"} },
	} {
		r := good()
		spoil(r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
	}
}
