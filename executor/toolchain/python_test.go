package toolchain

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakePython is a python3 that answers the probe from answer.json beside
// it and counts its runs in calls.
type fakePython struct {
	dir, bin, site, cache string
}

func newFakePython(t *testing.T, torch string) *fakePython {
	t.Helper()
	dir := t.TempDir()
	f := &fakePython{dir: dir, bin: filepath.Join(dir, "bin", "python3"), site: filepath.Join(dir, "site-packages"), cache: filepath.Join(dir, "cache", "toolchains.json")}
	must(t, os.MkdirAll(filepath.Join(f.site, "torch"), 0o755))
	must(t, os.MkdirAll(filepath.Dir(f.bin), 0o755))
	must(t, os.WriteFile(filepath.Join(f.site, "torch", "version.py"), []byte("__version__ = '"+torch+"'\n"), 0o644))
	f.setTorch(t, torch)
	script := "#!/bin/sh\n" +
		"[ \"$1\" = -c ] || { echo \"unexpected args: $*\" >&2; exit 2; }\n" +
		"here=$(dirname \"$0\")/..\n" +
		"echo run >> \"$here/calls\"\n" +
		"[ -e \"$here/fail\" ] && { echo 'Traceback: ImportError: libtorch_cpu.so: cannot open' >&2; exit 1; }\n" +
		"cat \"$here/answer.json\"\n"
	must(t, os.WriteFile(f.bin, []byte(script), 0o755))
	t.Setenv("PATH", filepath.Dir(f.bin)+":/usr/bin:/bin")
	t.Setenv("PYTHONPATH", "")
	return f
}

func (f *fakePython) setTorch(t *testing.T, torch string) {
	t.Helper()
	answer := `{"python": "3.11.7", "executable": "` + f.bin + `", "paths": ["` + f.site + `", "/nonexistent/lib.zip"], ` +
		`"usersite": "` + filepath.Join(f.dir, "usersite") + `", "torch": "` + torch + `", "torch_cuda": "12.4", ` +
		`"torch_file": "` + filepath.Join(f.site, "torch", "version.py") + `"}`
	must(t, os.WriteFile(filepath.Join(f.dir, "answer.json"), []byte(answer), 0o644))
}

func (f *fakePython) calls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "calls"))
	if os.IsNotExist(err) {
		return 0
	}
	must(t, err)
	return strings.Count(string(b), "run")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// check calls PythonVersion and wants torch, with probes calls so far.
func (f *fakePython) check(t *testing.T, command, torch string, probes int) Version {
	t.Helper()
	v, err := PythonVersion(context.Background(), command, f.cache)
	if err != nil {
		t.Fatal(err)
	}
	if v.Python != "3.11.7" || v.Torch != torch || v.TorchCUDA != "12.4" || v.Command != command {
		t.Errorf("PythonVersion = %+v, want python 3.11.7, torch %s", v, torch)
	}
	if got := f.calls(t); got != probes {
		t.Errorf("%d probes so far, want %d", got, probes)
	}
	return v
}

// touch changes a file's or directory's stat the way an install would.
func touch(t *testing.T, path string) {
	t.Helper()
	later := time.Now().Add(time.Hour)
	must(t, os.Chtimes(path, later, later))
}

func TestPythonVersionCached(t *testing.T) {
	f := newFakePython(t, "2.5.1")
	v := f.check(t, "python3", "2.5.1", 1)
	if v.Cached || v.Path != f.bin {
		t.Errorf("first call: %+v, want a probe of %s", v, f.bin)
	}
	if v = f.check(t, "python3", "2.5.1", 1); !v.Cached {
		t.Error("second call probed again")
	}
	if got, want := v.KeyRecord(BackendBuiltin), "toolchain python \"3.11.7\"\ntoolchain torch \"2.5.1\"\ntoolchain torch_cuda \"12.4\"\n"; got != want {
		t.Errorf("KeyRecord = %q, want %q", got, want)
	}
	// The answer changes without anything watched changing: still cached,
	// which shows the cache is what answers.
	f.setTorch(t, "9.9.9")
	f.check(t, "python3", "2.5.1", 1)
	// An absolute command is the same interpreter.
	f.check(t, f.bin, "2.5.1", 1)
}

func TestPythonVersionReprobes(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *fakePython)
	}{
		{"interpreter rewritten", func(t *testing.T, f *fakePython) { touch(t, f.bin) }},
		{"package installed", func(t *testing.T, f *fakePython) {
			must(t, os.Mkdir(filepath.Join(f.site, "torch-2.6.0.dist-info"), 0o755))
		}},
		{"torch version.py replaced", func(t *testing.T, f *fakePython) {
			p := filepath.Join(f.site, "torch", "version.py")
			must(t, os.Remove(p))
			must(t, os.WriteFile(p, []byte("__version__ = '2.6.0'\n"), 0o644))
		}},
		{"user site created", func(t *testing.T, f *fakePython) { must(t, os.Mkdir(filepath.Join(f.dir, "usersite"), 0o755)) }},
		{"PYTHONPATH set", func(t *testing.T, f *fakePython) { t.Setenv("PYTHONPATH", "/opt/other") }},
		{"cache corrupt", func(t *testing.T, f *fakePython) { must(t, os.WriteFile(f.cache, []byte("{not json"), 0o644)) }},
		{"cache of another version", func(t *testing.T, f *fakePython) {
			must(t, os.WriteFile(f.cache, []byte(`{"version": 99, "entries": {}}`), 0o644))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePython(t, "2.5.1")
			f.check(t, "python3", "2.5.1", 1)
			f.setTorch(t, "2.6.0")
			tt.change(t, f)
			if v := f.check(t, "python3", "2.6.0", 2); v.Cached {
				t.Error("answered from the cache after a change")
			}
			f.check(t, "python3", "2.6.0", 2) // and remembered again
		})
	}
}

func TestPythonVersionSymlinkRetargeted(t *testing.T) {
	f := newFakePython(t, "2.5.1")
	link := filepath.Join(f.dir, "link", "python3")
	must(t, os.MkdirAll(filepath.Dir(link), 0o755))
	must(t, os.Symlink(f.bin, link))
	f.check(t, link, "2.5.1", 1)
	f.check(t, link, "2.5.1", 1)
	other := filepath.Join(f.dir, "bin", "python3.12")
	b, err := os.ReadFile(f.bin)
	must(t, err)
	must(t, os.WriteFile(other, b, 0o755))
	must(t, os.Remove(link))
	must(t, os.Symlink(other, link))
	f.check(t, link, "2.5.1", 2)
}

func TestPythonVersionNoTorchAndNoCache(t *testing.T) {
	f := newFakePython(t, "none")
	f.check(t, "python3", "none", 1)
	// No cache file: every call probes.
	for i := 2; i <= 3; i++ {
		v, err := PythonVersion(context.Background(), "python3", "")
		if err != nil || v.Cached || f.calls(t) != i {
			t.Fatalf("uncached call %d: %+v, %v, %d probes", i, v, err, f.calls(t))
		}
	}
}

func TestPythonVersionShimNotCached(t *testing.T) {
	f := newFakePython(t, "2.5.1")
	b, err := os.ReadFile(f.bin)
	must(t, err)
	must(t, os.WriteFile(f.bin, append([]byte("#!/bin/sh\n# pyenv shim: exec pyenv exec python3\n"), b...), 0o755))
	f.check(t, "python3", "2.5.1", 1)
	f.check(t, "python3", "2.5.1", 2)
}

func TestPythonVersionErrors(t *testing.T) {
	f := newFakePython(t, "2.5.1")
	if _, err := PythonVersion(context.Background(), "python9", f.cache); err == nil || !strings.Contains(err.Error(), `"python9" not found`) {
		t.Errorf("missing command: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(f.dir, "fail"), nil, 0o644))
	_, err := PythonVersion(context.Background(), "python3", f.cache)
	if err == nil || !strings.Contains(err.Error(), "libtorch_cpu.so") || !strings.Contains(err.Error(), f.bin) {
		t.Errorf("failing probe: %v, want its stderr and path", err)
	}
	must(t, os.Remove(filepath.Join(f.dir, "fail")))
	must(t, os.WriteFile(filepath.Join(f.dir, "answer.json"), []byte("Python 3.11.7\n"), 0o644))
	if _, err := PythonVersion(context.Background(), "python3", f.cache); err == nil || !strings.Contains(err.Error(), `"Python 3.11.7"`) {
		t.Errorf("bad probe output: %v", err)
	}
	if _, err := os.Stat(f.cache); !os.IsNotExist(err) {
		t.Errorf("a failed probe wrote the cache: %v", err)
	}
}

// TestPythonVersionReal probes a real interpreter: Debian's python3 with
// python3-torch where installed.
func TestPythonVersionReal(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := exec.LookPath(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	cache := filepath.Join(t.TempDir(), "toolchains.json")
	v, err := PythonVersion(context.Background(), py, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: python %s, torch %s (cuda %q), executable %s", py, v.Python, v.Torch, v.TorchCUDA, v.Executable)
	if !strings.HasPrefix(v.Python, "3.") || v.Torch == "" {
		t.Errorf("PythonVersion(%s) = %+v", py, v)
	}
	start := time.Now()
	if v2, err := PythonVersion(context.Background(), py, cache); err != nil || !v2.Cached || v2.Torch != v.Torch {
		t.Errorf("second call: %+v, %v", v2, err)
	}
	t.Logf("cached answer in %v", time.Since(start))
}

func TestBackend(t *testing.T) {
	without := Version{Executable: "/usr/bin/python3.11", Python: "3.11.2", Torch: "1.13.1"}
	with := without
	with.Transformers, with.Tokenizers = "5.0.0", "0.22.1"
	tests := []struct {
		v           Version
		asked, want string
		wantErr     string
	}{
		{without, "", BackendBuiltin, ""},
		{without, "auto", BackendBuiltin, ""},
		{with, "auto", BackendTransformers, ""},
		{with, "builtin", BackendBuiltin, ""},
		{with, "transformers", BackendTransformers, ""},
		{without, "transformers", "", `backend = "transformers", but /usr/bin/python3.11 cannot import transformers: install it there, or set backend = "auto" or "builtin"`},
		{with, "jax", "", `backend "jax": use one of auto, transformers, builtin`},
	}
	for _, tt := range tests {
		got, err := tt.v.Backend(tt.asked)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Backend(%q) with transformers %q: error %v, want %q", tt.asked, tt.v.Transformers, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Backend(%q) with transformers %q = %q, %v; want %q", tt.asked, tt.v.Transformers, got, err, tt.want)
		}
	}
}

func TestKeyRecordHuggingFace(t *testing.T) {
	v := Version{Python: "3.11.2", Torch: "2.6.0", TorchCUDA: "12.4"}
	base := "toolchain python \"3.11.2\"\ntoolchain torch \"2.6.0\"\ntoolchain torch_cuda \"12.4\"\n"
	// Without transformers, keys stay what they were before backends.
	if got := v.KeyRecord(BackendBuiltin); got != base {
		t.Errorf("KeyRecord without transformers = %q, want %q", got, base)
	}
	v.Transformers, v.Tokenizers = "5.0.0", "0.22.1"
	hf := base + "toolchain backend \"transformers\"\ntoolchain transformers \"5.0.0\"\ntoolchain tokenizers \"0.22.1\"\n"
	if got := v.KeyRecord(BackendTransformers); got != hf {
		t.Errorf("KeyRecord(transformers) = %q, want %q", got, hf)
	}
	if got := v.KeyRecord(BackendBuiltin); got == base || !strings.Contains(got, `backend "builtin"`) {
		t.Errorf("KeyRecord(builtin) with transformers installed = %q: want the backend and versions named", got)
	}
}

// The probe reads Hugging Face's versions where the interpreter has them,
// and a cache entry remembers them.
func TestPythonVersionHuggingFace(t *testing.T) {
	f := newFakePython(t, "2.6.0")
	b, err := os.ReadFile(filepath.Join(f.dir, "answer.json"))
	must(t, err)
	answer := strings.Replace(string(b), `"torch": `, `"transformers": "5.17.0", "tokenizers": "0.23.2", "torch": `, 1)
	must(t, os.WriteFile(filepath.Join(f.dir, "answer.json"), []byte(answer), 0o644))
	for _, probes := range []int{1, 1} {
		v := f.check(t, "python3", "2.6.0", probes)
		if v.Transformers != "5.17.0" || v.Tokenizers != "0.23.2" {
			t.Errorf("PythonVersion = %+v, want transformers 5.17.0 and tokenizers 0.23.2", v)
		}
		if b, err := v.Backend(BackendAuto); err != nil || b != BackendTransformers {
			t.Errorf("auto = %q, %v; want transformers", b, err)
		}
	}
}
