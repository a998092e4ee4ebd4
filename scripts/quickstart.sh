#!/usr/bin/env bash
# Builds cogumi and runs its main job on the embedded defaults (local cache,
# local executor): the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go build -o bin/cogumi ./cmd/cogumi
cd examples/quickstart
../../bin/cogumi build //report:final
echo
cat cogumi-out/report/final/report.txt
