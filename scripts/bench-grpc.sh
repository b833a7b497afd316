#!/usr/bin/env bash
# Issue 17's figures: one request per call, signed, one fresh input each, over the notary's gRPC
# stream (`--grpc`) and, for comparison in the same run, over HTTP; at 64, 256 and 1,024 callers;
# with the notary embedded in the bench process and in a process of its own (`--url`). Every line
# carries the 2-core Ed25519 verify ceiling measured in the same run (`verifyCeiling`) and the
# throughput as a share of it (`ceilingPercent`). Release build.
# Usage: scripts/bench-grpc.sh [REQUESTS]   (default 50000 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product hawser --scratch-path .build-release >&2
hawser=$PWD/.build-release/release/hawser
requests=${1:-50000}
common=(--inputs-per-tx 1 --double-spend-ratio 0 --requests "$requests" --warmup 2000 --json)

echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), commit $(git rev-parse --short HEAD)"
echo "# embedded notary, gRPC stream then HTTP"
for clients in 64 256 1024; do "$hawser" bench notary --embedded --grpc --clients "$clients" "${common[@]}" | tail -1; done
for clients in 64 256 1024; do "$hawser" bench notary --embedded --clients "$clients" "${common[@]}" | tail -1; done

echo "# the notary in a process of its own (hawser notary run), the load from this one (--url)"
dir=$(mktemp -d)
trap 'kill "$notary" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
"$hawser" party new --name "O=Bench Party" --out "$dir/party.key" > "$dir/party.txt"
key=$(sed -n 's/^publicKey: //p' "$dir/party.txt")
"$hawser" notary init --dir "$dir/notary" --port 0 --grpc-port 0 --authorise "O=Bench Party=$key" >&2
"$hawser" notary run --config "$dir/notary/hawser.json" --log-level warning > "$dir/notary.out" &
notary=$!
for _ in $(seq 100); do grep -q grpc_listening "$dir/notary.out" && break; sleep 0.2; done
http_port=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$dir/notary.out")
grpc_port=$(sed -n 's/.*"event":"grpc_listening".*"port":\([0-9]*\).*/\1/p' "$dir/notary.out")
for clients in 64 256 1024; do
    "$hawser" bench notary --url "grpc://127.0.0.1:$grpc_port" --grpc --key "$dir/party.key" --clients "$clients" "${common[@]}" | tail -1
done
for clients in 64 256 1024; do
    "$hawser" bench notary --url "http://127.0.0.1:$http_port" --key "$dir/party.key" --clients "$clients" "${common[@]}" | tail -1
done
