#!/usr/bin/env bash
# Interleaved A/B of two checkouts on the cluster benchmark (scripts/bench-cluster.sh: 3 replicas on
# 3 nats-servers, then the embedded notary, with the same options). Each checkout runs its own
# scripts and its own release build (`swift build -c release --scratch-path .build-release`
# inside it; bench-cluster.sh builds it if missing), so an older checkout runs with the
# configuration its version understands. Runs alternate A, B, A, B, ...; the summary gives each
# side's median cluster and embedded throughput, and the CPU time per request of the replicas and
# of the nats-servers, with the ratios B/A. This host's speed drifts, and with other work running
# the throughput swings by half: then only the CPU time per request says what a change costs.
# Usage: scripts/ab-cluster.sh A_CHECKOUT B_CHECKOUT [PAIRS] [bench options...]   (default 5 pairs)
# Environment: NATS_SERVER (both sides run the same server), REQUESTS (default 100000).
set -euo pipefail
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd) pairs=${3:-5}
shift $(( $# >= 3 ? 3 : $# ))
NATS_SERVER=$("$(dirname "$0")/nats-server-path.sh")
export NATS_SERVER
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# Prints "cluster embedded replica-cpu nats-cpu" of one bench-cluster.sh run in checkout $1:
# notarisations/s, then CPU ms per request ("-" from a checkout whose script does not print it).
run() {
    local out cpu
    out=$("$1/scripts/bench-cluster.sh" "${@:2}" 2>/dev/null)
    cpu=$(grep '^# cpu_ms_per_request' <<<"$out" | sed 's/.*replicas=\([0-9.]*\) nats=\([0-9.]*\).*/\1 \2/' || true)
    out=$(grep '^{' <<<"$out")
    echo "$(sed -n 1p <<<"$out" | sed 's/.*"throughput":\([0-9.]*\).*/\1/') $(sed -n 2p <<<"$out" | sed 's/.*"throughput":\([0-9.]*\).*/\1/') ${cpu:-- -}"
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nats-server $("$NATS_SERVER" --version)"
echo "# A $a ($(git -C "$a" rev-parse --short HEAD)), B $b ($(git -C "$b" rev-parse --short HEAD)), options: ${*:-default}"
for i in $(seq "$pairs"); do
    ra=$(run "$a" "$@") rb=$(run "$b" "$@")
    echo "pair $i: A cluster/embedded/replica-cpu/nats-cpu $ra, B $rb"
    echo "$ra $rb" >>"$results"
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }
# Median of column $1 for A and for B, and B/A.
compare() {
    local a b
    a=$(cut -d' ' -f"$1" "$results" | median) b=$(cut -d' ' -f"$(($1 + 4))" "$results" | median)
    echo "A $a, B $b, B/A $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')"
}
echo "median cluster notarisations/s: $(compare 1); embedded: $(compare 2)"
echo "median CPU ms per request, replicas: $(compare 3); nats-servers: $(compare 4)"
