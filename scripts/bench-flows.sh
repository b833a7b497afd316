#!/usr/bin/env bash
# The flow benchmarks recorded in BENCHMARKS.md, on a release build. Each run starts an all-in-one
# node inside the bench process (embedded notary, SQLite, flows, RPC API on loopback) and runs the
# token sample's IssueTokens flow over HTTP; each line is one run.
# Usage: scripts/bench-flows.sh [RUNS]   (default 3 runs of each load)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
swift build -c release --product hawser --scratch-path .build-release >&2
hawser=.build-release/release/hawser

echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Closed loop: 64 clients, each starting its next flow when the last one ends (throughput).
for _ in $(seq "$runs"); do $hawser bench flows --clients 64 --flows 5000 --warmup 500 2>/dev/null; done
# Open loop: 1,000 flows/s offered, at most 64 in flight (latency at the target rate).
for _ in $(seq "$runs"); do $hawser bench flows --clients 64 --rate 1000 --flows 5000 --warmup 500 2>/dev/null; done
# One client: the latency of a flow on an idle node.
$hawser bench flows --clients 1 --flows 500 --warmup 50 2>/dev/null
