#!/usr/bin/env bash
# Runs the GPU proofs of examples/gpu/README.md on a GPU machine, from the
# repository root, with bin/cogumi built for it beforehand
# (GOOS=linux GOARCH=amd64 go build -o bin/cogumi ./cmd/cogumi). Prints what
# the README quotes; copies every metrics.json to $1 (default /tmp/gpu-proof).
set -uo pipefail
out=${1:-/tmp/gpu-proof}
mkdir -p "$out"
cd "$(dirname "$0")"
cogumi=../../bin/cogumi
export COGUMI_CACHE_DIR=${COGUMI_CACHE_DIR:-/tmp/gpu-proof-cache}
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader
echo '$ cogumi build --events ev1.jsonl //:gpu_a //:gpu_b //:gpu_c'
$cogumi build --events ev1.jsonl //:gpu_a //:gpu_b //:gpu_c 2>&1 | grep -v '| step '
echo '$ cogumi build //:gpu_pair'
$cogumi build //:gpu_pair 2>&1 | grep -v '| step '
echo '$ cogumi build --events ev3.jsonl //:calib_gpu //:lora_gpu'
$cogumi build --events ev3.jsonl //:calib_gpu //:lora_gpu 2>&1 | grep -v '| step '
echo '$ cogumi build //:gpu_a //:gpu_b //:gpu_c //:gpu_pair //:calib_gpu //:lora_gpu'
$cogumi build //:gpu_a //:gpu_b //:gpu_c //:gpu_pair //:calib_gpu //:lora_gpu 2>&1
for t in gpu_a gpu_b gpu_c gpu_pair lora_gpu; do
  cp cogumi-out/$t/metrics.json "$out/$t.metrics.json" 2>/dev/null
done
cp cogumi-out/calib_gpu/calibration.json "$out/calib_gpu.calibration.json" 2>/dev/null
cp ev1.jsonl ev3.jsonl "$out/" 2>/dev/null
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
# calibrate and lora report their device in the build's events, not in
# their artifacts (docs/artifacts.md).
stats = {}
if os.path.exists(os.path.join(out, "ev3.jsonl")):
    for line in open(os.path.join(out, "ev3.jsonl")):
        ev = json.loads(line)
        if ev.get("stats"):
            stats[ev["label"].lstrip("/:")] = ev["stats"]
print("| target | device_name | gpu_uuid | cuda_visible_devices | start | end |")
print("|---|---|---|---|---|---|")
for t in ["gpu_a", "gpu_b", "gpu_c", "gpu_pair", "lora_gpu"]:
    p = os.path.join(out, t + ".metrics.json")
    if not os.path.exists(p):
        print("|", t, "| (no metrics.json) | | | | |"); continue
    m = dict(json.load(open(p)), **stats.get(t, {}))
    print("| %s | %s | %s | %s | %s | %s |" % (t, m.get("device_name", m.get("device")), m.get("gpu_uuid", "") + ((" (all: " + ", ".join(m["visible_gpu_uuids"]) + ")") if len(m.get("visible_gpu_uuids", [])) > 1 else ""),
          m.get("cuda_visible_devices"), m.get("start", ""), m.get("end", "")))
p = os.path.join(out, "calib_gpu.calibration.json")
if os.path.exists(p):
    m = dict(json.load(open(p)), **stats.get("calib_gpu", {}))
    print("calib_gpu:", json.dumps({k: v for k, v in m.items() if k in ("device", "torch", "dtype", "samples", "tokens", "rows")}))
PY
