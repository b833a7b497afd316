#!/usr/bin/env bash
# The notary benchmarks recorded in BENCHMARKS.md, on a release build. Each run starts an embedded
# notary inside the bench process (the load crosses the real HTTP API on loopback), pre-signs
# every request, verifies every answer, and prints one JSON line.
# Usage: scripts/bench-notary.sh [PRELOAD_DIR]   (PRELOAD_DIR keeps the 10M-state store between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product hawser --scratch-path .build-release >&2
hawser=.build-release/release/hawser
preload_dir=${1:-$(mktemp -d)}

echo "# $(date -u +%Y-%m-%d), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$hawser bench verify --seconds 3 --json | tail -1
run() { $hawser bench notary --embedded --inputs-per-tx 1 --json "$@" | tail -1; }
run --requests 100000 --clients 4 --batch-size 50 --double-spend-ratio 0
run --requests 100000 --clients 4 --batch-size 50 --double-spend-ratio 0.1 --references 1
run --requests 50000 --clients 64 --batch-size 1 --double-spend-ratio 0
run --requests 100000 --clients 4 --batch-size 50 --double-spend-ratio 0 --data-dir "$preload_dir" --preload 10000000
