package gen

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/cogumi/cogumi/engine/label"
)

const n = 200

// parsed is a generated run target as read back from its BUILD.hcl.
type parsed struct {
	num     int // global number: package*100 + number in the name
	srcs    []string
	command string
	outs    []string
}

// readWorkspace parses every BUILD.hcl of dir and returns its targets by
// label.
func readWorkspace(t *testing.T, dir string) map[label.Label]parsed {
	t.Helper()
	builds, err := filepath.Glob(filepath.Join(dir, "p*", "BUILD.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	targets := make(map[label.Label]parsed)
	for _, file := range builds {
		pkg := filepath.Base(filepath.Dir(file))
		pnum, err := strconv.Atoi(strings.TrimPrefix(pkg, "p"))
		if err != nil {
			t.Fatalf("package %s: %v", pkg, err)
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", file, diags)
		}
		body := f.Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			t.Errorf("%s: top-level attributes", file)
		}
		for _, b := range body.Blocks {
			if b.Type != "run" || len(b.Labels) != 1 {
				t.Fatalf("%s: block %s %v, want run \"<name>\"", b.DefRange(), b.Type, b.Labels)
			}
			name := b.Labels[0]
			num, err := strconv.Atoi(strings.TrimPrefix(name, "t"))
			if err != nil || !strings.HasPrefix(name, "t") {
				t.Fatalf("%s: target name %q, want t<number>", b.DefRange(), name)
			}
			p := parsed{num: pnum*100 + num}
			for attr, a := range b.Body.Attributes {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("%s: %v", a.SrcRange, diags)
				}
				switch attr {
				case "srcs", "outs":
					var list []string
					for _, e := range v.AsValueSlice() {
						list = append(list, e.AsString())
					}
					if attr == "srcs" {
						p.srcs = list
					} else {
						p.outs = list
					}
				case "command":
					p.command = v.AsString()
				default:
					t.Errorf("%s: unexpected attribute %s", a.SrcRange, attr)
				}
			}
			l := label.Label{Pkg: pkg, Name: name}
			if _, dup := targets[l]; dup {
				t.Errorf("%s: %s defined twice", b.DefRange(), l)
			}
			targets[l] = p
		}
	}
	return targets
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, n, Options{}); err != nil {
		t.Fatal(err)
	}
	ws, err := os.ReadFile(filepath.Join(dir, "cogumi.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ws, []byte("workspace {\n  name = \"synthetic\"\n}")) {
		t.Errorf("cogumi.hcl = %q, want a workspace block named synthetic", ws)
	}

	targets := readWorkspace(t, dir)
	if len(targets) != n {
		t.Fatalf("%d targets, want %d", len(targets), n)
	}
	byNum := make([]label.Label, n)
	for l, p := range targets {
		if p.num < 0 || p.num >= n || !byNum[p.num].IsZero() {
			t.Fatalf("%s: number %d out of range or taken", l, p.num)
		}
		byNum[p.num] = l
	}

	hasSource := make([]bool, n) // a source file upstream
	chain := make([]int, n)      // length of the chain ending here
	longest, fanIns, crossPkg := 0, 0, 0
	for i, l := range byNum {
		p := targets[l]
		if want := []string{l.Name + ".txt"}; fmt.Sprint(p.outs) != fmt.Sprint(want) {
			t.Errorf("%s: outs %q, want %q", l, p.outs, want)
		}
		if want := "cat $SRCS | cksum > $OUT/" + l.Name + ".txt"; p.command != want {
			t.Errorf("%s: command %q, want %q", l, p.command, want)
		}
		if len(p.srcs) == 0 {
			t.Errorf("%s: no srcs", l)
		}
		deps := 0
		seen := make(map[string]bool)
		for _, s := range p.srcs {
			if seen[s] {
				t.Errorf("%s: %q listed twice", l, s)
			}
			seen[s] = true
			if !label.IsLabel(s) {
				if _, err := os.Stat(filepath.Join(dir, l.Pkg, s)); err != nil {
					t.Errorf("%s: source %s: %v", l, s, err)
				}
				hasSource[i] = true
				continue
			}
			d, err := label.Parse(s, l.Pkg)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			dp, ok := targets[d]
			if !ok {
				t.Fatalf("%s: dependency %s is not a target", l, d)
			}
			if dp.num >= i {
				t.Fatalf("%s (%d) depends on %s (%d): not a lower-numbered target", l, i, d, dp.num)
			}
			if d.Pkg != l.Pkg {
				crossPkg++
				if strings.HasPrefix(s, ":") {
					t.Errorf("%s: %s from another package written as %s", l, d, s)
				}
			}
			deps++
			hasSource[i] = hasSource[i] || hasSource[dp.num]
			if dp.num == i-1 {
				chain[i] = chain[i-1] + 1
			}
		}
		if !hasSource[i] {
			t.Errorf("%s: no source file upstream", l)
		}
		longest = max(longest, chain[i]+1)
		if deps >= 5 {
			fanIns++
		}
	}
	t.Logf("%d targets: longest chain %d, %d fan-ins, %d cross-package edges", n, longest, fanIns, crossPkg)
	if longest < 10 || longest > 50 {
		t.Errorf("longest chain %d, want 10 to 50", longest)
	}
	if fanIns == 0 {
		t.Error("no fan-in of 5 or more dependencies")
	}
	if crossPkg == 0 {
		t.Error("no dependency across packages")
	}

	checkNinjaAndMake(t, dir, targets, byNum)
}

// checkNinjaAndMake checks that build.ninja and the Makefile describe the
// same graph as the BUILD.hcl files: one edge per target with the same
// inputs in the same order.
func checkNinjaAndMake(t *testing.T, dir string, targets map[label.Label]parsed, byNum []label.Label) {
	t.Helper()
	// want[out] is each target's inputs, as paths from the workspace root
	// with outputs under "OUT".
	want := make(map[string]string)
	for _, l := range byNum {
		var in []string
		for _, s := range targets[l].srcs {
			if !label.IsLabel(s) {
				in = append(in, l.Pkg+"/"+s)
				continue
			}
			d, _ := label.Parse(s, l.Pkg)
			in = append(in, "OUT/"+d.Pkg+"/"+d.Name+".txt")
		}
		want["OUT/"+l.Pkg+"/"+l.Name+".txt"] = strings.Join(in, " ")
	}
	for _, tc := range []struct {
		file, out string
		re        *regexp.Regexp // submatches: output, inputs
	}{
		{"build.ninja", "ninja-out", regexp.MustCompile(`(?m)^build (\S+): run (.*)$`)},
		{"Makefile", "make-out", regexp.MustCompile(`(?m)^(make-out/\S+\.txt): (.*) \| make-out/p\d+\n\tcat \$\^ \| cksum > \$@$`)},
	} {
		text, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got := make(map[string]string)
		for _, m := range tc.re.FindAllStringSubmatch(string(text), -1) {
			out := strings.Replace(m[1], tc.out, "OUT", 1)
			if _, dup := got[out]; dup {
				t.Errorf("%s: %s built twice", tc.file, m[1])
			}
			got[out] = strings.ReplaceAll(m[2], tc.out+"/", "OUT/")
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d edges, want %d", tc.file, len(got), len(want))
		}
		for out, in := range want {
			if got[out] != in {
				t.Errorf("%s: %s from %q, want %q", tc.file, out, got[out], in)
			}
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, w := range []struct {
		dir  string
		seed uint64
	}{{a, 7}, {b, 7}, {c, 8}} {
		if err := Write(w.dir, n, Options{Seed: w.seed}); err != nil {
			t.Fatal(err)
		}
	}
	if ta, tb := tree(t, a), tree(t, b); ta != tb {
		t.Error("two workspaces of the same seed differ")
	}
	if ta, tc := tree(t, a), tree(t, c); ta == tc {
		t.Error("workspaces of seeds 7 and 8 are the same")
	}
}

// tree returns every file of dir with its content, in one string.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "== %s\n%s", rel, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, 10, Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Write into a non-empty directory: %v, want a \"not empty\" error", err)
	}
	if err := Write(t.TempDir(), 0, Options{}); err == nil {
		t.Error("Write of 0 targets succeeded")
	}
}

func TestPkgWidth(t *testing.T) {
	for npkg, want := range map[int]int{1: 4, 2: 4, 10_000: 4, 10_001: 5, 100_001: 6} {
		if got := pkgWidth(npkg); got != want {
			t.Errorf("pkgWidth(%d) = %d, want %d", npkg, got, want)
		}
	}
}

// TestNinjaAndMake builds the generated graph with ninja and make where they
// are installed: both build everything, agree byte for byte, and have no
// work to do the second time.
func TestNinjaAndMake(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, n, Options{}); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ran := 0
	if _, err := exec.LookPath("ninja"); err != nil {
		t.Log("ninja not on PATH: not building with it")
	} else {
		ran++
		run("ninja", "-C", dir)
		if out := run("ninja", "-C", dir); !strings.Contains(out, "no work to do") {
			t.Errorf("second ninja run did work:\n%s", out)
		}
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Log("make not on PATH: not building with it")
	} else {
		ran++
		run("make", "-C", dir, "-j4")
		if out := run("make", "-C", dir); !strings.Contains(out, "Nothing to be done") {
			t.Errorf("second make run did work:\n%s", out)
		}
	}
	if ran == 0 {
		t.Skip("neither ninja nor make on PATH")
	}
	for _, out := range []string{"ninja-out", "make-out"} {
		files, _ := filepath.Glob(filepath.Join(dir, out, "p*", "t*.txt"))
		if len(files) != 0 && len(files) != n {
			t.Errorf("%s holds %d outputs, want %d", out, len(files), n)
		}
	}
	if ran == 2 {
		if a, b := tree(t, filepath.Join(dir, "ninja-out")), tree(t, filepath.Join(dir, "make-out")); a != b {
			t.Error("ninja and make outputs differ")
		}
	}
}
