package hcl

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBadConfigs loads each workspace under testdata/bad. Its expect file
// lists every diagnostic Load must report, in order, one a line:
// "file:line:col: text the message contains".
func TestBadConfigs(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "bad", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	line := regexp.MustCompile(`^(\S+:\d+:\d+|-): (.+)$`)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "expect"))
			if err != nil {
				t.Fatal(err)
			}
			var want [][]string
			for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				m := line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("bad expect line %q", l)
				}
				want = append(want, m[1:])
			}
			ws, err := Load(dir, Options{})
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("Load = %v, %v; want Diagnostics", ws, err)
			}
			if ws != nil {
				t.Errorf("Load returned a workspace with errors")
			}
			for i := 0; i < max(len(ds), len(want)); i++ {
				switch {
				case i >= len(ds):
					t.Errorf("missing diagnostic %s: %s", want[i][0], want[i][1])
				case i >= len(want):
					t.Errorf("extra diagnostic %s: %s", ds[i].Pos, ds[i].Msg)
				default:
					pos := ds[i].Pos.String()
					if ds[i].Pos.File == "" {
						pos = "-"
					}
					if pos != want[i][0] || !strings.Contains(ds[i].Msg, want[i][1]) {
						t.Errorf("diagnostic %d:\n got %s: %s\nwant %s: %s", i, pos, ds[i].Msg, want[i][0], want[i][1])
					}
				}
			}
			if t.Failed() {
				t.Logf("all diagnostics:\n%v", err)
			}
		})
	}
}

func TestDiagnosticsError(t *testing.T) {
	ds := Diagnostics{
		{Pos: posAt("b/BUILD.hcl", 2, 11), Msg: "second", Source: "\tsrcs = [\"x\"]", Detail: "more"},
		{Pos: posAt("a/BUILD.hcl", 7, 1), Msg: "first", Source: "run \"x\" {"},
		{Msg: "--var z: no variable"},
	}
	want := strings.Join([]string{
		"--var z: no variable",
		"a/BUILD.hcl:7:1: first",
		"    run \"x\" {",
		"    ^",
		"b/BUILD.hcl:2:11: second",
		"    \tsrcs = [\"x\"]",
		"    \t         ^",
		"    more",
	}, "\n")
	if got := ds.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}
