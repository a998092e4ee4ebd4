// Package toolchain finds the versions of the external programs that rules
// run, for the action key: a different interpreter or torch can give
// different outputs, so its version is part of every key that uses it.
package toolchain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Version is what a python toolchain is.
type Version struct {
	Command    string `json:"command"`    // as configured: "python3"
	Path       string `json:"path"`       // where Command was found on PATH
	Executable string `json:"executable"` // the interpreter it runs (sys.executable, symlinks resolved)
	Python     string `json:"python"`     // "3.11.2"
	Torch      string `json:"torch"`      // torch.__version__, or "none"
	TorchCUDA  string `json:"torch_cuda"` // torch.version.cuda; "" for CPU-only builds and without torch
	// Transformers and Tokenizers are the versions of Hugging Face's
	// packages, "" where the interpreter cannot import them.
	Transformers string `json:"transformers,omitempty"`
	Tokenizers   string `json:"tokenizers,omitempty"`
	Cached       bool   `json:"-"` // remembered, not probed now
}

// The torch runtime's backends (toolchain "python" { backend = ... }): how
// calibrate, imatrix, eval and lora load a checkpoint.
const (
	BackendAuto         = "auto"         // transformers where it can be imported, else builtin
	BackendTransformers = "transformers" // AutoModelForCausalLM and AutoTokenizer
	BackendBuiltin      = "builtin"      // cogumi's own Llama-family forward and tokenizers
)

// Backends are the values backend may take, in the order --help lists them.
func Backends() []string { return []string{BackendAuto, BackendTransformers, BackendBuiltin} }

// Backend resolves the backend asked for against what this interpreter
// can import: auto picks transformers when it is there.
func (v Version) Backend(asked string) (string, error) {
	switch asked {
	case "", BackendAuto:
		if v.Transformers != "" {
			return BackendTransformers, nil
		}
		return BackendBuiltin, nil
	case BackendBuiltin:
		return BackendBuiltin, nil
	case BackendTransformers:
		if v.Transformers == "" {
			return "", fmt.Errorf("backend = %q, but %s cannot import transformers: install it there, or set backend = \"auto\" or \"builtin\"", asked, v.Executable)
		}
		return BackendTransformers, nil
	}
	return "", fmt.Errorf("backend %q: use one of %s", asked, strings.Join(Backends(), ", "))
}

// KeyRecord is the version as labelled lines for an action key, for the
// backend the actions will use (resolved by Backend). The paths are left
// out on purpose: the same versions installed elsewhere (another machine, a
// venv) give the same outputs. Hugging Face's versions join only where the
// interpreter has them, so that keys made without them stay as they were;
// where it does, every python action's key names them (a training script
// may import transformers whatever the backend).
func (v Version) KeyRecord(backend string) string {
	s := fmt.Sprintf("toolchain python %q\ntoolchain torch %q\ntoolchain torch_cuda %q\n", v.Python, v.Torch, v.TorchCUDA)
	if v.Transformers != "" || backend == BackendTransformers {
		s += fmt.Sprintf("toolchain backend %q\ntoolchain transformers %q\ntoolchain tokenizers %q\n", backend, v.Transformers, v.Tokenizers)
	}
	return s
}

// probeScript prints the interpreter's and torch's versions, and where
// they live so that a later call can tell, from stat alone, whether they
// may have changed.
const probeScript = `import json, os, platform, site, sys
r = {"python": platform.python_version(), "executable": os.path.realpath(sys.executable),
     "paths": [p for p in sys.path if p], "torch": "none", "torch_cuda": "", "torch_file": ""}
try:
    r["usersite"] = site.getusersitepackages()
except Exception:
    pass
try:
    import torch
except ModuleNotFoundError as e:
    if e.name != "torch":
        raise
else:
    r["torch"] = str(torch.__version__)
    r["torch_cuda"] = str(torch.version.cuda or "")
    r["torch_file"] = os.path.join(os.path.dirname(os.path.abspath(torch.__file__)), "version.py")
# Versions from package metadata: importing transformers takes seconds.
try:
    from importlib import metadata
    import importlib.util
    if importlib.util.find_spec("transformers") is not None:
        r["transformers"] = metadata.version("transformers")
        r["tokenizers"] = metadata.version("tokenizers")
except Exception:
    pass
print(json.dumps(r))
`

// probeTimeout bounds the probe: importing torch from a slow network file
// system takes seconds, a hung one forever.
const probeTimeout = 2 * time.Minute

// maxEntries keeps the cache file small; the oldest entries go first.
const maxEntries = 64

// PythonVersion returns the versions of the python toolchain command
// ("python3", or a path), running it at most once while nothing it
// depends on changes: the answer is remembered in cacheFile ("" to
// always probe) and re-used while the interpreter, the executable it
// runs, every directory of its sys.path and torch's version.py keep their
// stat (size, mtime, inode, ctime), and PYTHONPATH, PYTHONHOME and
// PYTHONNOUSERSITE keep their values. Installing or upgrading a package
// changes its site-packages directory, so that is seen too. Version
// managers' shims (pyenv, asdf, mise), which pick an interpreter by the
// current directory, are probed every time.
func PythonVersion(ctx context.Context, command, cacheFile string) (Version, error) {
	path, err := exec.LookPath(command)
	if err != nil {
		return Version{}, fmt.Errorf("python toolchain: %q not found: %w", command, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return Version{}, fmt.Errorf("python toolchain %q: %w", command, err)
	}
	key := cacheKey(path)
	cacheable := cacheFile != "" && !isShim(path)
	if cacheable {
		if e, ok := loadCache(cacheFile).Entries[key]; ok && e.fresh() {
			v := e.Version
			v.Command, v.Cached = command, true
			return v, nil
		}
	}
	e, err := probe(ctx, command, path)
	if err != nil {
		return Version{}, err
	}
	if cacheable {
		// A cache that cannot be written costs a probe next time, nothing
		// more; the version itself is right.
		_ = storeCache(cacheFile, key, e)
	}
	return e.Version, nil
}

// cacheKey names a configuration of the interpreter: the same python3
// with another PYTHONPATH can import another torch.
func cacheKey(path string) string {
	var b strings.Builder
	b.WriteString(path)
	for _, name := range []string{"PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE"} {
		v, ok := os.LookupEnv(name)
		fmt.Fprintf(&b, "\x00%s=%t:%s", name, ok, v)
	}
	return b.String()
}

// isShim reports whether path is a version manager's shim: a script that
// chooses the interpreter at each run, so its own stat says nothing.
func isShim(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := f.Read(head)
	head = head[:n]
	if !bytes.HasPrefix(head, []byte("#!")) {
		return false
	}
	for _, tool := range []string{"pyenv", "asdf", "mise"} {
		if bytes.Contains(head, []byte(tool)) {
			return true
		}
	}
	return false
}

// probeOutput is what probeScript prints.
type probeOutput struct {
	Python     string   `json:"python"`
	Executable string   `json:"executable"`
	Paths      []string `json:"paths"`
	UserSite   string   `json:"usersite"`
	Torch      string   `json:"torch"`
	TorchCUDA  string   `json:"torch_cuda"`
	TorchFile  string   `json:"torch_file"`
	// Transformers and Tokenizers: Hugging Face's versions, absent without them.
	Transformers string `json:"transformers"`
	Tokenizers   string `json:"tokenizers"`
}

func probe(ctx context.Context, command, path string) (entry, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-c", probeScript)
	// Not the caller's directory: python -c puts it first on sys.path, and a
	// torch/ directory there would answer for the real one.
	cmd.Dir = os.TempDir()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if lines := strings.Split(msg, "\n"); len(lines) > 5 {
			msg = strings.Join(lines[len(lines)-5:], "\n")
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return entry{}, fmt.Errorf("python toolchain %q (%s): probing its version: %w\n%s", command, path, err, msg)
	}
	var out probeOutput
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil || out.Python == "" {
		return entry{}, fmt.Errorf("python toolchain %q (%s): the version probe printed %q, not the expected JSON", command, path, firstLine(stdout.String()))
	}
	e := entry{
		Version: Version{
			Command: command, Path: path, Executable: out.Executable,
			Python: out.Python, Torch: out.Torch, TorchCUDA: out.TorchCUDA,
			Transformers: out.Transformers, Tokenizers: out.Tokenizers,
		},
		ProbedAt: time.Now().UnixNano(),
	}
	// Stat after the probe: a change made during it then shows as a
	// difference next time instead of being recorded as the probed state.
	watch := append([]string{path, out.Executable}, out.Paths...)
	if out.UserSite != "" {
		watch = append(watch, out.UserSite)
	}
	if out.TorchFile != "" {
		watch = append(watch, out.TorchFile)
	}
	seen := map[string]bool{}
	for _, p := range watch {
		if p == "" || seen[p] || !filepath.IsAbs(p) {
			continue
		}
		seen[p] = true
		e.Files = append(e.Files, watchFile(p)...)
	}
	return e, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
