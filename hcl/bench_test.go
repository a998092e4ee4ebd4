package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genWorkspace writes a synthetic workspace of about n targets, perPkg to
// a package: in each package, ten source files, a files target over them,
// then a chain of run targets, every tenth also gathering (fan-in) targets
// of the previous package.
func genWorkspace(tb testing.TB, root string, n, perPkg int) {
	tb.Helper()
	write := func(rel, text string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write(SettingsFile, "workspace {\n  name = \"bench\"\n}\nvariable \"cmd\" {\n  default = \"cat\"\n}\n")
	pkgs := (n + perPkg - 1) / perPkg
	for p := range pkgs {
		pkg := fmt.Sprintf("group%02d/pkg%04d", p%10, p)
		var b strings.Builder
		b.WriteString("locals {\n  mem = \"1GiB\"\n}\n\nfiles \"src\" {\n  srcs = glob(\"*.txt\")\n}\n")
		for i := range 10 {
			write(fmt.Sprintf("%s/in%d.txt", pkg, i), "x")
		}
		for i := 1; i < perPkg; i++ {
			fmt.Fprintf(&b, "\nrun \"t%d\" {\n", i)
			deps := []string{fmt.Sprintf("%q", "in"+fmt.Sprint(i%10)+".txt"), `":src"`}
			if i > 1 {
				deps = append(deps, fmt.Sprintf(`":t%d"`, i-1))
			}
			if i%10 == 0 && p > 0 {
				prev := fmt.Sprintf("group%02d/pkg%04d", (p-1)%10, p-1)
				for j := 1; j <= 3; j++ {
					deps = append(deps, fmt.Sprintf(`"//%s:t%d"`, prev, i-j))
				}
			}
			fmt.Fprintf(&b, "  srcs    = [%s]\n", strings.Join(deps, ", "))
			fmt.Fprintf(&b, "  outs    = [\"out%d.txt\"]\n", i)
			fmt.Fprintf(&b, "  command = \"${var.cmd} $SRCS > $OUT/out%d.txt\"\n", i)
			b.WriteString("  env     = { LANG = \"C\" }\n")
			b.WriteString("  resources {\n    cpus   = 1\n    memory = local.mem\n  }\n}\n")
		}
		write(pkg+"/"+BuildFile, b.String())
	}
}

// benchLoad loads a workspace of n targets, without the load cache or
// (cached) from a cache filled before timing starts.
func benchLoad(b *testing.B, n int, cached bool) {
	root := b.TempDir()
	genWorkspace(b, root, n, 100)
	var opts Options
	if cached {
		opts.CacheFile = filepath.Join(b.TempDir(), "load-cache")
		if _, err := Load(root, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ws, err := Load(root, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(ws.Targets) != n || cached && ws.FromCache != n/100 {
			b.Fatalf("%d targets, %d packages from the cache", len(ws.Targets), ws.FromCache)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/target")
}

func BenchmarkLoad10K(b *testing.B)        { benchLoad(b, 10_000, false) }
func BenchmarkLoad10KCached(b *testing.B)  { benchLoad(b, 10_000, true) }
func BenchmarkLoad100K(b *testing.B)       { benchLoad(b, 100_000, false) }
func BenchmarkLoad100KCached(b *testing.B) { benchLoad(b, 100_000, true) }

func TestGeneratedWorkspace(t *testing.T) {
	root := t.TempDir()
	genWorkspace(t, root, 500, 100)
	ws := mustLoad(t, root, Options{})
	if len(ws.Targets) != 500 || len(ws.Order) != 500 {
		t.Fatalf("%d targets, order of %d", len(ws.Targets), len(ws.Order))
	}
}
