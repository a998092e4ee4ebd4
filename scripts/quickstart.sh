#!/usr/bin/env bash
# The README's first command: installs what the main job needs, builds
# cogumi, and runs its main job on the embedded defaults (local cache, local
# executor): the tiny pipeline of examples/tiny-pipeline, `cogumi build
# //models:final //models:table`, against the local teacher API (cogumi-teacher), which this
# script starts on 127.0.0.1 and stops at the end.
#
# Installs (each only when missing): Debian's python3-torch, python3-numpy
# and libopenblas0-pthread (the python toolchain on the CPU), python3-regex
# and python3-sentencepiece (the torch runtime's tokenizers); node-llama-cpp
# 3.21.1 from npm into examples/tiny-pipeline/tools (llama.cpp, which scores
# the GGUF files).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

apt_pkgs=()
/usr/bin/python3 -c 'import torch' 2>/dev/null || apt_pkgs+=(python3-torch python3-numpy libopenblas0-pthread)
/usr/bin/python3 -c 'import regex' 2>/dev/null || apt_pkgs+=(python3-regex)
/usr/bin/python3 -c 'import sentencepiece' 2>/dev/null || apt_pkgs+=(python3-sentencepiece)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi
if [ ! -d examples/tiny-pipeline/tools/node_modules/node-llama-cpp ]; then
  (cd examples/tiny-pipeline/tools && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
fi
go build -o bin/cogumi ./cmd/cogumi
go build -o bin/cogumi-teacher ./cmd/cogumi-teacher

# The local teacher stands in for the paid APIs (OpenAI-compatible,
# deterministic). The key is checked by the teacher and never stored.
export TEACHER_API_KEY=local-teacher-key
url_file=$(mktemp)
# A fixed port: the endpoint is part of every request's cache key, so a
# second run on the same address reuses every answer.
bin/cogumi-teacher --addr 127.0.0.1:18181 --api-key "$TEACHER_API_KEY" --url-file "$url_file" >/dev/null &
teacher=$!
trap 'kill $teacher 2>/dev/null; rm -f "$url_file"' EXIT
for _ in $(seq 50); do [ -s "$url_file" ] && break; sleep 0.1; done
[ -s "$url_file" ] || { echo "quickstart: cogumi-teacher did not start on 127.0.0.1:18181 (is the port taken?)" >&2; exit 1; }

cd examples/tiny-pipeline
../../bin/cogumi build //models:final //models:table
echo
../../bin/cogumi metrics //models:all
echo
# The size-quality table: each type's file size, perplexity and KL
# divergence from the F16 file, side by side.
../../bin/cogumi metrics --wide //models:table
