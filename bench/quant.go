package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/internal/units"
)

// quantTypes are the compared GGUF types: the gguf rule's name and
// llama.cpp's llama_ftype. The K-quant mixes each stand for their _S, _M
// and _L siblings, which use the same quantisers.
var quantTypes = []struct {
	typ   string
	ftype int
}{{"Q8_0", 7}, {"Q4_0", 2}, {"Q6_K", 18}, {"Q5_K_M", 17}, {"Q4_K_M", 15}, {"Q3_K_M", 12}, {"Q2_K", 10}}

// ftypeOf returns llama_ftype for the benchmarked types.
func ftypeOf(typ string) (int, error) {
	ftypes := map[string]int{"Q8_0": 7, "Q4_0": 2, "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13,
		"Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18}
	if f, ok := ftypes[typ]; ok {
		return f, nil
	}
	return 0, fmt.Errorf("no llama_ftype for %q here", typ)
}

// llamaQuant compiles model/ggufconv/testdata/llamaquant.cpp into dir
// against node-llama-cpp's libllama under repo.
func llamaQuant(repo, dir string) (bin string, err error) {
	bins, err := filepath.Abs(filepath.Join(repo, "testdata", "llama", "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64"))
	if err != nil {
		return "", err
	}
	libs, _ := filepath.Glob(filepath.Join(bins, "libllama.*so"))
	if len(libs) != 1 {
		return "", fmt.Errorf("libllama not found (run `npm ci` in testdata/llama): %v", libs)
	}
	bin = filepath.Join(dir, "llamaquant")
	out, err := exec.Command("g++", "-std=c++17", "-O1", "-o", bin, filepath.Join(repo, "model", "ggufconv", "testdata", "llamaquant.cpp"),
		filepath.Join(bins, "libllama-common.so"), libs[0], filepath.Join(bins, "libggml-base.so"), "-Wl,-rpath,"+bins).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building llamaquant.cpp: %v\n%s", err, out)
	}
	return bin, nil
}

// ggufRows quantises an F16 checkpoint with the gguf rule (a rebuild of the
// target: safetensors -> type) and with llama.cpp's llama_model_quantize
// (an F16 GGUF of the same checkpoint, written by the gguf rule beforehand
// as convert_hf_to_gguf.py would, -> type), both on every core, and
// compares the files byte for byte.
func (e *env) ggufRows(ctx context.Context) ([]row, error) {
	quantizer, err := llamaQuant(e.repo, filepath.Join(e.tmp, "bin"))
	if err != nil {
		return nil, err
	}
	src := filepath.Join(e.tmp, "ckpt-f16")
	defer os.RemoveAll(src)
	fmt.Fprintf(os.Stderr, "writing an F16 checkpoint of about %s\n", units.FormatBytes(e.checkpoint))
	if err := e.makeCheckpoint(ctx, src, "f16", e.checkpoint, 2); err != nil {
		return nil, err
	}
	ws := filepath.Join(e.tmp, "ws-gguf")
	defer os.RemoveAll(ws)
	if err := copyTree(src, filepath.Join(ws, "m", "ckpt"), true); err != nil {
		return nil, err
	}
	build := "model \"base\" {\n  path = \"ckpt\"\n}\n\ngguf \"f16\" {\n  model = \":base\"\n  type  = \"F16\"\n  name  = \"bench\"\n}\n"
	for _, q := range quantTypes {
		build += fmt.Sprintf("\ngguf %q {\n  model = \":base\"\n  type  = %q\n  name  = \"bench\"\n}\n", strings.ToLower(q.typ), q.typ)
	}
	if err := writeFiles(ws, map[string]string{
		"cogumi.hcl":  "workspace {\n  name = \"gguf\"\n}\n",
		"m/BUILD.hcl": build,
	}); err != nil {
		return nil, err
	}
	size, _, err := safetensorsBytes(filepath.Join(ws, "m", "ckpt"))
	if err != nil {
		return nil, err
	}
	cacheDir := filepath.Join(e.tmp, "cache-gguf")
	defer os.RemoveAll(cacheDir)
	cacheEnv := []string{"COGUMI_CACHE_DIR=" + cacheDir}
	fmt.Fprintln(os.Stderr, "first build of the GGUF targets")
	if _, err := measure(ctx, ws, cacheEnv, e.bin, "build", "//..."); err != nil {
		return nil, err
	}
	f16, err := oneFile(filepath.Join(ws, "cogumi-out", "m", "f16", "*.gguf"))
	if err != nil {
		return nil, err
	}
	if err := warm(filepath.Join(ws, "m", "ckpt", "model.safetensors"), f16); err != nil {
		return nil, err
	}
	var rows []row
	threads := strconv.Itoa(numCPU())
	bench := func(typ string) string {
		return fmt.Sprintf("gguf %s of a %s F16 checkpoint", typ, units.FormatBytes(size))
	}
	for _, q := range quantTypes {
		target := "//m:" + strings.ToLower(q.typ)
		outTheirs := filepath.Join(e.tmp, "llama-"+q.typ+".gguf")
		var ours, theirs string
		ss, err := compare(ctx, e.reps, []tool{
			{name: "cogumi gguf", dir: ws, env: cacheEnv, argv: []string{e.bin, "build", "--rebuild", target, target},
				check: func(int) error {
					f, err := oneFile(filepath.Join(ws, "cogumi-out", "m", strings.ToLower(q.typ), "*.gguf"))
					if err == nil {
						ours, err = sha256File(f)
					}
					return err
				}},
			{name: "llama.cpp", dir: e.tmp, argv: []string{quantizer, f16, outTheirs, strconv.Itoa(q.ftype), threads},
				check: func(int) (err error) {
					theirs, err = sha256File(outTheirs)
					return err
				}},
		})
		os.Remove(outTheirs)
		if err != nil {
			rows = append(rows, row{Benchmark: bench(q.typ), Tool: "-", Note: "not measured: " + oneLine(err.Error())})
			continue
		}
		same := fmt.Sprintf("identical bytes: yes (sha256 %s)", ours[:12])
		if ours != theirs {
			same = fmt.Sprintf("identical bytes: NO (cogumi %s, llama.cpp %s)", ours[:12], theirs[:12])
		}
		rows = append(rows,
			summarize(bench(q.typ), "cogumi gguf (safetensors -> "+q.typ+")", ss[0],
				fmt.Sprintf("%.0f MB/s of F16 at best, a rebuild of the target; %s", mbps(size, best(ss[0])), same)),
			summarize(bench(q.typ), "llama.cpp llama_model_quantize (F16 GGUF -> "+q.typ+")", ss[1],
				fmt.Sprintf("%.0f MB/s of F16 at best, %s threads, node-llama-cpp's libllama; %s", mbps(size, best(ss[1])), threads, same)))
	}
	return rows, nil
}
