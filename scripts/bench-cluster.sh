#!/usr/bin/env bash
# The cluster benchmark recorded in BENCHMARKS.md, on a release build: starts 3 nats-server + 3
# notary replicas on loopback (scripts/notary-cluster.sh), loads the replicas with pre-signed
# 1-input requests through the HTTP API (every answer verified) and prints the CPU time the replicas
# and the nats-servers spent per request, then runs the same load against an embedded notary for
# comparison, and stops everything. Prints one JSON line per run.
# Usage: scripts/bench-cluster.sh [extra `hawser bench notary` options, e.g. --clients 6 --batch-size 50]
# With --grpc among the options the load goes over the replicas' gRPC service instead of HTTP.
# Environment: NATS_PORT (default 24222), HTTP_PORT (default 28080), GRPC_PORT (default 29090),
# REQUESTS (default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product hawser --scratch-path .build-release >&2
dir=$(mktemp -d)
trap 'scripts/notary-cluster.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
# A private copy: the shared release build may be relinked while the benchmark runs.
cp .build-release/release/hawser "$dir/hawser"
hawser=$dir/hawser
nats_port=${NATS_PORT:-24222}
http_port=${HTTP_PORT:-28080}
grpc_port=${GRPC_PORT:-29090}
requests=${REQUESTS:-100000}
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--clients 4 --batch-size 50 --spread)

echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# options: --inputs-per-tx 1 --requests $requests --double-spend-ratio 0 ${args[*]}"
if [[ " ${args[*]} " == *" --grpc "* ]]; then
    HAWSER=$hawser scripts/notary-cluster.sh start "$dir" "$nats_port" "$http_port" "$grpc_port" >/dev/null
    urls=$(cat "$dir/grpc-urls")
else
    urls=$(HAWSER=$hawser scripts/notary-cluster.sh start "$dir" "$nats_port" "$http_port")
fi
url_args=()
for url in $urls; do url_args+=(--url "$url"); done
echo "# cluster (3 replicas, JetStream R3):"
"$hawser" bench notary "${url_args[@]}" --key "$dir/demo-party.key" --inputs-per-tx 1 --requests "$requests" \
    --double-spend-ratio 0 --warmup 2000 --json "${args[@]}" | tail -1
# CPU time per request of the 3 replicas and of the 3 nats-servers, warm-up and start-up included:
# what a change costs, read apart from the host's speed, which drifts while other work runs.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" -v n=$((requests + 2000)) '{t += $14 + $15} END {printf "%.4f", t * 1000 / hz / n}' "$@"; }
echo "# cpu_ms_per_request replicas=$(cpu_ms $(for i in 0 1 2; do echo "/proc/$(cat "$dir/r$i/hawser.pid")/stat"; done))" \
     "nats=$(cpu_ms $(for i in 1 2 3; do echo "/proc/$(cat "$dir/nats/n$i.pid")/stat"; done))"
scripts/notary-cluster.sh stop "$dir" >/dev/null
echo "# embedded (one process, same machine, same options):"
embedded_args=()
for a in "${args[@]}"; do [[ $a == --spread ]] || embedded_args+=("$a"); done
"$hawser" bench notary --embedded --inputs-per-tx 1 --requests "$requests" --double-spend-ratio 0 --warmup 2000 \
    --json "${embedded_args[@]}" | tail -1
