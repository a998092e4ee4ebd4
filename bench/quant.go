package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/internal/units"
	"github.com/cogumi/cogumi/model/checkpoint"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/ggufconv"
	"github.com/cogumi/cogumi/model/imatrix"
)

// quantTypes are the compared GGUF types: the gguf rule's name and
// llama.cpp's llama_ftype. The K-quant mixes each stand for their _S, _M
// and _L siblings, which use the same quantisers; IQ3_S stands for IQ3_M
// and IQ3_XS, the IQ2 types for IQ2_S and IQ2_M.
// imatrix: with an importance matrix (a synthetic one of the model's
// shape), as llama-quantize --imatrix.
var quantTypes = []struct {
	typ     string
	ftype   int
	imatrix bool
}{{"Q8_0", 7, false}, {"Q4_0", 2, false}, {"Q6_K", 18, false}, {"Q5_K_M", 17, false}, {"Q4_K_M", 15, false},
	{"Q3_K_M", 12, false}, {"Q2_K", 10, false}, {"Q4_K_M", 15, true}, {"Q2_K_S", 21, true},
	{"IQ4_NL", 25, false}, {"IQ4_XS", 30, false}, {"IQ4_XS", 30, true}, {"IQ3_S", 26, false}, {"IQ3_XXS", 23, true},
	{"IQ2_XS", 20, true}, {"IQ2_XXS", 19, true}}

// ftypeOf returns llama_ftype for the benchmarked types.
func ftypeOf(typ string) (int, error) {
	ftypes := map[string]int{"Q8_0": 7, "Q4_0": 2, "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13,
		"Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
		"IQ4_NL": 25, "IQ4_XS": 30, "IQ3_M": 27, "IQ3_S": 26}
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
	if err := writeBenchImatrix(filepath.Join(ws, "m", "ckpt"), filepath.Join(ws, "m", "imatrix.gguf")); err != nil {
		return nil, err
	}
	build := "model \"base\" {\n  path = \"ckpt\"\n}\n\nfiles \"im\" {\n  srcs = [\"imatrix.gguf\"]\n}\n\ngguf \"f16\" {\n  model = \":base\"\n  type  = \"F16\"\n  name  = \"bench\"\n}\n"
	for _, q := range quantTypes {
		im := ""
		if q.imatrix {
			im = "  imatrix = \":im\"\n"
		}
		build += fmt.Sprintf("\ngguf %q {\n  model = \":base\"\n  type  = %q\n  name  = \"bench\"\n%s}\n", targetName(q.typ, q.imatrix), q.typ, im)
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
	// llama.cpp is given the imatrix by the path cogumi records (its path
	// in its input), from the directory that makes it the file.
	imRel, imDir, err := imatrixPath(ws, "q4_k_m_imatrix", filepath.Join(ws, "m", "imatrix.gguf"))
	if err != nil {
		return nil, err
	}
	var rows []row
	threads := strconv.Itoa(numCPU())
	for _, q := range quantTypes {
		name := targetName(q.typ, q.imatrix)
		target := "//m:" + name
		outTheirs := filepath.Join(e.tmp, "llama-"+name+".gguf")
		argv := []string{quantizer, f16, outTheirs, strconv.Itoa(q.ftype), threads}
		label := q.typ
		if q.imatrix {
			argv = append([]string{quantizer, "--imatrix", imRel}, argv[1:]...)
			label += " with an imatrix"
		}
		bench := fmt.Sprintf("gguf %s of a %s F16 checkpoint", label, units.FormatBytes(size))
		var ours, theirs string
		ss, err := compare(ctx, e.reps, []tool{
			{name: "cogumi gguf", dir: ws, env: cacheEnv, argv: []string{e.bin, "build", "--rebuild", target, target},
				check: func(int) error {
					f, err := oneFile(filepath.Join(ws, "cogumi-out", "m", name, "*.gguf"))
					if err == nil {
						ours, err = sha256File(f)
					}
					return err
				}},
			{name: "llama.cpp", dir: imDir, argv: argv,
				check: func(int) (err error) {
					theirs, err = sha256File(outTheirs)
					return err
				}},
		})
		os.Remove(outTheirs)
		if err != nil {
			rows = append(rows, row{Benchmark: bench, Tool: "-", Note: "not measured: " + oneLine(err.Error())})
			continue
		}
		same := fmt.Sprintf("identical bytes: yes (sha256 %s)", ours[:12])
		if ours != theirs {
			same = fmt.Sprintf("identical bytes: NO (cogumi %s, llama.cpp %s)", ours[:12], theirs[:12])
		}
		rows = append(rows,
			summarize(bench, "cogumi gguf (safetensors -> "+label+")", ss[0],
				fmt.Sprintf("%.0f MB/s of F16 at best, a rebuild of the target; %s", mbps(size, best(ss[0])), same)),
			summarize(bench, "llama.cpp llama_model_quantize (F16 GGUF -> "+label+")", ss[1],
				fmt.Sprintf("%.0f MB/s of F16 at best, %s threads, node-llama-cpp's libllama; %s", mbps(size, best(ss[1])), threads, same)))
	}
	return rows, nil
}

// targetName is the gguf target of a benchmarked type ("q4_k_m_imatrix").
func targetName(typ string, imatrix bool) string {
	if imatrix {
		return strings.ToLower(typ) + "_imatrix"
	}
	return strings.ToLower(typ)
}

// writeBenchImatrix writes an importance matrix for the checkpoint in dir:
// an entry per linear weight of every layer, seeded random sums of squares
// over 5120 tokens, as llama-imatrix's files look.
func writeBenchImatrix(dir, path string) error {
	m, err := checkpoint.Open(dir)
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	mat := imatrix.Matrix{Datasets: []string{"bench"}, ChunkCount: 10, ChunkSize: 512, Entries: tinyllama.ImatrixEntries(&cfg, 1, 2, 5120)}
	return imatrix.Write(path, mat)
}

// imatrixPath returns the quantize.imatrix.file that the gguf target name of
// workspace ws recorded, and the directory from which that path names file.
func imatrixPath(ws, name, file string) (rel, dir string, err error) {
	out, err := oneFile(filepath.Join(ws, "cogumi-out", "m", name, "*.gguf"))
	if err != nil {
		return "", "", err
	}
	f, err := gguf.Open(out)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	rel, err = f.String(ggufconv.KeyImatrixFile)
	if err != nil {
		return "", "", err
	}
	dir, ok := strings.CutSuffix(file, string(filepath.Separator)+filepath.FromSlash(rel))
	if !ok {
		return "", "", fmt.Errorf("%s records the imatrix as %q, which is not the end of %s", out, rel, file)
	}
	return rel, dir, nil
}
