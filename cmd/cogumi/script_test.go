package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cogumi/cogumi/internal/registrytest"
	"github.com/cogumi/cogumi/internal/s3test"
	"github.com/cogumi/cogumi/internal/tinyllama"
	"github.com/cogumi/cogumi/internal/tokref"
	"github.com/cogumi/cogumi/model/gguf"
	"github.com/cogumi/cogumi/model/safetensors"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"cogumi": main,
	})
}

// TestScripts runs the CLI scenarios in testdata/script: each gets a fresh
// workspace ($WORK) and a fresh cache ($WORK/.cache).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "..", "testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("COGUMI_CACHE_DIR", filepath.Join(env.WorkDir, ".cache"))
			env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".xdg"))
			repo, err := filepath.Abs(filepath.Join("..", ".."))
			if err != nil {
				return err
			}
			env.Setenv("COGUMI_REPO", repo)
			// A scenario that started a Slurm test cluster in $WORK/cluster
			// and failed before stopping it must not leave its daemons behind.
			cluster := filepath.Join(env.WorkDir, "cluster")
			env.Defer(func() {
				if _, err := os.Stat(filepath.Join(cluster, "slurm.conf")); err == nil {
					_ = exec.Command("bash", filepath.Join(repo, "scripts", "slurm-test-cluster.sh"), "stop", cluster).Run()
				}
			})
			// A scenario that mounted something under $WORK (full_disk.txt)
			// and failed before unmounting must not leave it mounted.
			env.Defer(func() { unmountUnder(env.WorkDir) })
			th := &teacherHolder{}
			env.Values["teacher"] = th
			env.Defer(th.close)
			h := &s3holder{}
			env.Values["s3"] = h
			env.Defer(func() {
				if h.s != nil {
					h.s.Stop()
				}
			})
			rh := &registryHolder{}
			env.Values["registry"] = rh
			env.Defer(func() {
				if rh.s != nil {
					rh.s.Stop()
				}
			})
			return nil
		},
		Condition: haveCondition,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"results":   cmdResults,
			"teacher":   cmdTeacher,
			"nooverlap": cmdNoOverlap,
			"sameinode": cmdSameInode,
			"tinyllama": cmdTinyLlama,
			"ggufdump":  cmdGGUFDump,
			"s3server":  cmdS3Server,
			"registry":  cmdRegistry,
		},
	})
}

// results EVENTS RESULT [LABEL...] checks that exactly the listed labels
// have the given result in an --events file.
func cmdResults(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: results EVENTS RESULT [LABEL...]")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct {
			Label, Result string
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ts.Fatalf("bad event line %q: %v", sc.Text(), err)
		}
		if ev.Result == args[1] {
			got = append(got, ev.Label)
		}
	}
	ts.Check(sc.Err())
	want := append([]string(nil), args[2:]...)
	sort.Strings(got)
	sort.Strings(want)
	same := strings.Join(got, " ") == strings.Join(want, " ")
	if same == neg {
		ts.Fatalf("targets with result %q: got [%s], want %s[%s]", args[1], strings.Join(got, " "),
			map[bool]string{true: "not ", false: ""}[neg], strings.Join(want, " "))
	}
}

// nooverlap TRACE [NAME] checks that no two intervals in a trace file
// overlap (with NAME, only those involving NAME). Each line is
// "start NAME SECONDS" or "end NAME SECONDS".
func cmdNoOverlap(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 && len(args) != 2 {
		ts.Fatalf("usage: nooverlap TRACE [NAME]")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	type span struct{ start, end float64 }
	spans := make(map[string]*span)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			ts.Fatalf("bad trace line %q", line)
		}
		v, err := strconv.ParseFloat(f[2], 64)
		ts.Check(err)
		if spans[f[1]] == nil {
			spans[f[1]] = &span{}
		}
		if f[0] == "start" {
			spans[f[1]].start = v
		} else {
			spans[f[1]].end = v
		}
	}
	var names []string
	for n := range spans {
		names = append(names, n)
	}
	sort.Strings(names)
	overlap := ""
	for i, a := range names {
		for _, b := range names[i+1:] {
			if len(args) == 2 && a != args[1] && b != args[1] {
				continue
			}
			sa, sb := spans[a], spans[b]
			if sa.start < sb.end && sb.start < sa.end {
				overlap = fmt.Sprintf("%s [%f, %f] overlaps %s [%f, %f]", a, sa.start, sa.end, b, sb.start, sb.end)
			}
		}
	}
	if (overlap != "") != neg {
		if neg {
			ts.Fatalf("expected overlapping actions, found none")
		}
		ts.Fatalf("%s", overlap)
	}
}

// sameinode A B checks that two paths are hard links of one file.
func cmdSameInode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sameinode A B")
	}
	a, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	b, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if os.SameFile(a, b) == neg {
		ts.Fatalf("%s and %s: same file = %v", args[0], args[1], !neg)
	}
}

// tinyllama DIR [spm|bpe|llama2|llama3_1|qwen3|qwen2|mistral] [F32|F16|BF16] [SHARDS] [seed=N]
// writes a tiny checkpoint made by the project's own generator; with
// llama2, llama3_1, qwen3, qwen2 or mistral it carries a real tokenizer
// (from testdata/tokenizers, see [have:tokenizers]) and a hidden size of
// 64. qwen3 is a Qwen3ForCausalLM shaped like Qwen3-0.6B in small (a head
// size of 32 for 4 heads: heads x head_dim is not the hidden size) with
// Qwen3's tokenizer and its embedding of 151,936 rows; qwen2 a
// Qwen2ForCausalLM (q, k and v biases, no grouped-query attention) with the
// same tokenizer and embedding; mistral a MistralForCausalLM with the
// llama2 package's tokenizer (Mistral 7B's). Its weights come from seed N
// (default 1).
func cmdTinyLlama(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: tinyllama DIR [spm|bpe|llama2|llama3_1|qwen3|qwen2|mistral] [F32|F16|BF16] [SHARDS] [seed=N]")
	}
	o := tinyllama.Options{Seed: 1}
	if n := len(args); n > 1 {
		if v, ok := strings.CutPrefix(args[n-1], "seed="); ok {
			seed, err := strconv.ParseUint(v, 10, 64)
			ts.Check(err)
			o.Seed, args = seed, args[:n-1]
		}
	}
	if len(args) > 1 {
		switch args[1] {
		case "llama2", "llama3_1", "qwen3", "qwen2", "mistral":
			dir, err := tokref.Dir(ts.Getenv("COGUMI_REPO"))
			ts.Check(err)
			pkg := args[1]
			switch pkg {
			case "qwen3":
				o.Arch, o.HeadDim, o.PadVocab = tinyllama.Qwen3, 32, qwen3Embedding-qwen3Tokens
			case "qwen2":
				// One key-value head per head, so that AWQ folds the o group
				// into v_proj's rows and its bias.
				pkg, o.Arch, o.PadVocab, o.KVHeads = "qwen3", tinyllama.Qwen2, qwen3Embedding-qwen3Tokens, 4
			case "mistral":
				pkg, o.Arch = "llama2", tinyllama.Mistral
			}
			o.TokenizerJSON, o.TokenizerConfig = tokref.Files(dir, pkg)
			o.Hidden, o.Intermediate, o.TieEmbeddings = 64, 128, true
		default:
			o.Tokenizer = tinyllama.Tokenizer(args[1])
		}
	}
	if len(args) > 2 {
		o.DType = safetensors.DType(args[2])
	}
	if len(args) > 3 {
		n, err := strconv.Atoi(args[3])
		ts.Check(err)
		o.Shards = n
	}
	ts.Check(tinyllama.Write(ts.MkAbs(args[0]), o))
}

// ggufdump FILE prints a GGUF file's metadata, one "key = value" line each
// (values as Go formats them: [a b] for an array of strings), then one
// "tensor NAME TYPE [SHAPE]" line per tensor.
func cmdGGUFDump(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ggufdump FILE")
	}
	f, err := gguf.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	for _, kv := range f.KVs {
		fmt.Fprintf(ts.Stdout(), "%s = %v\n", kv.Key, kv.Value.Any())
	}
	for _, ti := range f.Tensors {
		fmt.Fprintf(ts.Stdout(), "tensor %s %s %v\n", ti.Name, ti.Type, ti.Shape)
	}
}

// Qwen3's tokenizer has 151,669 tokens; its models' embeddings have 151,936
// rows.
const qwen3Tokens, qwen3Embedding = 151669, 151936

// haveCondition answers [root], [long] (COGUMI_LONG=1), [have:torch], [have:slurm], [have:tokenizers] (the
// real tokenizers of testdata/tokenizers) or [have:TOOL]. In CI
// (CI=true) a missing tool is an error rather than a reason to skip: CI
// installs everything.
func haveCondition(cond string) (bool, error) {
	switch cond {
	case "root":
		// Scenarios that mount (a small tmpfs) run as root, as CI does.
		return os.Geteuid() == 0, nil
	case "long":
		// Suites that take minutes run only when asked: COGUMI_LONG=1.
		return os.Getenv("COGUMI_LONG") == "1", nil
	}
	name, ok := strings.CutPrefix(cond, "have:")
	if !ok {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	var have bool
	switch name {
	case "torch":
		have = exec.Command("/usr/bin/python3", "-c", "import torch").Run() == nil
	case "tokenizers":
		repo, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			return false, err
		}
		_, err = tokref.Dir(repo)
		have = err == nil
	case "versitygw":
		_, err := s3test.Binary()
		have = err == nil
	case "docker-registry":
		_, err := registrytest.Binary()
		have = err == nil
	case "slurm":
		_, err := exec.LookPath("sbatch")
		have = err == nil && os.Geteuid() == 0
	default:
		_, err := exec.LookPath(name)
		have = err == nil
	}
	if !have && os.Getenv("CI") == "true" {
		return false, fmt.Errorf("%s is missing; scripts/test.sh installs it", name)
	}
	return have, nil
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
