package engine

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogumi/cogumi/cache"
	"github.com/cogumi/cogumi/hcl"
	"github.com/cogumi/cogumi/rules"
)

var updateKeys = flag.Bool("update-keys", false, "rewrite testdata/keyrecords.golden")

// keyPinBuild holds targets of every kind, each with most of its
// attributes written (those outside the key too), and a few with only the
// required ones. Their key records are pinned in testdata/keyrecords.golden:
// a change to how rules declare or decode attributes must not change any
// existing action key, or every artifact users built would be rebuilt.
const keyPinBuild = `
files "f" {
  srcs = ["a.txt", "b.txt"]
}
model "m" {
  path = "ckpt"
}
run "r" {
  srcs    = ["a.txt", ":f"]
  outs    = ["o.txt", "d/p.txt"]
  command = "cat $SRCS > $OUT/o.txt"
  env     = { B = "2", A = "1" }
  resources {
    cpus = 2
  }
}
run "r_min" {
  outs    = ["o"]
  command = "true"
}
train "t" {
  script  = "train.py"
  srcs    = ["a.txt"]
  base    = ":m"
  dataset = ":f"
  params  = { lr = 2e-5, epochs = 3, name = "x<y>" }
  env     = { K = "v" }
}
train "t_min" {
  script = "train.py"
}
prune "p" {
  model    = ":m"
  sparsity = 0.65
  scope    = "global"
  include  = ["*.weight"]
  exclude  = ["lm_head*"]
}
prune "p_pat" {
  model   = ":m"
  pattern = "2:4"
}
compress "c" {
  input   = ":m"
  level   = 19
  weights = true
}
compress "c_name" {
  input = ":m"
  level = "best"
}
compress "c_min" {
  input = ":m"
}
decompress "d" {
  input = ":c"
}
gguf "g" {
  model         = ":p"
  type          = "Q4_K_M"
  pure          = true
  name          = "tiny"
  tokenizer_pre = "llama-bpe"
}
gguf "g_min" {
  model = ":m"
  type  = "F16"
}
gguf "g_quant" {
  model                = ":m"
  type                 = "Q3_K_M"
  imatrix              = ":im"
  tensor_types         = [["ffn_down", "Q5_K"], ["attn_v", "Q8_0"]]
  token_embedding_type = "Q8_0"
  output_tensor_type   = "Q6_K"
}
gate "gt" {
  metrics          = ":r"
  baseline         = ":r_min"
  min              = { accuracy = 0.6 }
  max              = { perplexity = 14.0, "coding.perplexity" = 20 }
  max_increase_pct = { perplexity = 5 }
  max_bytes        = { ":g" = "890MB" }
}
router "rt" {
  model     = ":g"
  base_eval = ":r"
  modifiers = { coding = ":r", math = ":r_min" }
  threshold = 12.4
}
serving "sv" {
  model          = ":g"
  draft          = ":g"
  draft_max      = 8
  cache_type_k   = "q4_0"
  cache_type_v   = "q4_0"
  adapters       = { coding = ":r" }
  adapter_scales = { coding = 0.5 }
  router         = ":rt"
}
bench_serving "bs" {
  serving    = ":sv"
  model      = ":g"
  draft      = ":g"
  prompts    = ["Question: 2+2?\nAnswer:", "Once"]
  max_tokens = 32
  backend    = "cuda"
  resources {
    gpus = 1
  }
}
bench_serving "bs_min" {
  model = ":g"
  draft = ":g_min"
}
awq "q" {
  model         = ":m"
  calibration   = ":r"
  bits          = 4
  target        = "Q4_0"
  duo_scaling   = true
  grid          = 10
  search_stride = 2
}
awq "q_min" {
  model       = ":m"
  calibration = ":r"
}
merge_lora "ml" {
  base    = ":m"
  adapter = ":r"
}
generate "gen" {
  endpoint     = "https://api.example.com/v1"
  model        = "m1"
  api_key_env  = "KEY"
  prompt       = "Write about ${row.domain}"
  system       = "be brief"
  for_each     = { domain = ["coding", "math"], difficulty = ["easy", "hard"] }
  count        = { easy = 4, hard = 6 }
  params       = { temperature = 0.9, max_tokens = 512 }
  price        = { input_per_mtok = 0.27, output_per_mtok = 1.10 }
  max_cost     = 50
  concurrency  = 8
  rate_limit   = "600/min"
  max_attempts = 3
  field        = "answer"
}
judge "jd" {
  endpoint = "http://127.0.0.1:8080/v1"
  model    = "m2"
  prompt   = "Score: ${row.answer}"
  from     = ":gen"
  where    = row.domain == "coding"
}
dataset "ds" {
  from          = [":gen", "rows.jsonl"]
  text          = "${row.question}\n\n${row.answer}"
  where         = row.score >= 7
  where_metric  = { eval = ":r", perplexity_gt = 12.4 }
  dedupe        = "normalized_text"
  dedupe_fields = ["text"]
  sample        = { by = ["domain"], n = 10, seed = 7 }
  split         = { train = 0.9, val = 0.1 }
  episodes      = { by = "domain", support = 5, query = 15, seed = 7 }
  max_row_bytes = 1024
}
dataset "ds_min" {
  from = ["rows.jsonl"]
}
calibrate "cal" {
  model    = ":m"
  dataset  = ":f"
  samples  = 16
  seq_len  = 64
  max_rows = 32
  seed     = 1
}
calibrate "cal_im" {
  model   = ":m"
  dataset = ":f"
  imatrix = { chunk_size = 64, process_output = true }
}
imatrix "im" {
  model          = ":m"
  dataset        = ":f"
  chunk_size     = 64
  chunks         = 4
  process_output = true
}
eval "ev" {
  model        = ":g"
  dataset      = ":f"
  metrics      = ["perplexity"]
  by           = "domain"
  script       = "train.py"
  params       = { k = 1 }
  max_examples = 10
}
release "rel" {
  files       = { "m.gguf" = ":g", "router.json" = ":rt/router.json" }
  gates       = [":gt"]
  evals       = [":ev"]
  name        = "tiny"
  description = "d"
  license     = "apache-2.0"
  base_model  = "org/base"
  tags        = ["gguf"]
}
lora "lo" {
  base           = ":m"
  dataset        = ":f"
  rank           = 8
  alpha          = 16
  target_modules = ["q_proj", "v_proj"]
  params         = { steps = 3 }
}
`

func TestKeyRecordsPinned(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"cogumi.hcl": "", "p/BUILD.hcl": keyPinBuild, "p/a.txt": "a", "p/b.txt": "b",
		"p/train.py": "", "p/rows.jsonl": "{}\n", "p/ckpt/config.json": "{}",
	}
	for name, text := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := hcl.Load(root, hcl.Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	reg := rules.Default()
	kinds := make(map[string]bool)
	var b strings.Builder
	for _, tg := range ws.Targets {
		rule, _ := reg.Lookup(tg.Kind)
		kinds[tg.Kind] = true
		var ins []inputDigest
		for _, in := range tg.Inputs {
			// A fixed stand-in digest per input: the records under test are
			// the attributes' and the inputs' names.
			ins = append(ins, inputDigest{in: in, digest: cache.DigestBytes([]byte(inputName(0, in)))})
		}
		recs, err := keyRecords(tg, rule, rule.Schema(), ins)
		if err != nil {
			t.Fatalf("%s: %v", tg.Label, err)
		}
		// A rule's version changes on purpose, and some hold a digest of
		// code or the machine's kernel: it is not pinned here.
		recs[1] = record("rule-version", "(Version())")
		for i, r := range recs {
			if n, _ := splitRecord(r); strings.HasPrefix(n, "python-script ") {
				recs[i] = record(n, "(digest of the script)")
			}
		}
		b.WriteString("# " + tg.Label.String() + "\n" + strings.Join(recs, "\n") + "\n\n")
	}
	for _, k := range reg.Kinds() {
		if !kinds[k] {
			t.Errorf("keyPinBuild has no %s target: add one", k)
		}
	}
	golden := filepath.Join("testdata", "keyrecords.golden")
	if *updateKeys {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("action key records changed: existing artifacts would all be rebuilt.\n--- got\n%s\n--- want\n%s", got, want)
	}
}
