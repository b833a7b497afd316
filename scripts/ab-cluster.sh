#!/usr/bin/env bash
# Interleaved A/B of two checkouts on the cluster benchmark (scripts/bench-cluster.sh: 3 replicas on
# 3 nats-servers, then the embedded notary, with the same options). Each checkout runs its own
# scripts and its own release build (`swift build -c release --scratch-path .build-release`
# inside it; bench-cluster.sh builds it if missing), so an older checkout runs with the
# configuration its version understands. Runs alternate A, B, A, B, ...; the summary gives each
# side's median cluster and embedded throughput and the ratio B/A. This host's speed drifts: read
# only the paired figures.
# Usage: scripts/ab-cluster.sh A_CHECKOUT B_CHECKOUT [PAIRS] [bench options...]   (default 5 pairs)
# Environment: NATS_SERVER (both sides run the same server), REQUESTS (default 100000).
set -euo pipefail
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd) pairs=${3:-5}
shift $(( $# >= 3 ? 3 : $# ))
NATS_SERVER=$("$(dirname "$0")/nats-server-path.sh")
export NATS_SERVER
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# Prints "cluster embedded" notarisations/s of one bench-cluster.sh run in checkout $1.
run() {
    local out
    out=$("$1/scripts/bench-cluster.sh" "${@:2}" 2>/dev/null | grep '^{')
    echo "$(sed -n 1p <<<"$out" | sed 's/.*"throughput":\([0-9.]*\).*/\1/') $(sed -n 2p <<<"$out" | sed 's/.*"throughput":\([0-9.]*\).*/\1/')"
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nats-server $("$NATS_SERVER" --version)"
echo "# A $a ($(git -C "$a" rev-parse --short HEAD)), B $b ($(git -C "$b" rev-parse --short HEAD)), options: ${*:-default}"
for i in $(seq "$pairs"); do
    ra=$(run "$a" "$@") rb=$(run "$b" "$@")
    echo "pair $i: A cluster/embedded $ra, B $rb"
    echo "$ra $rb" >>"$results"
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }
ca=$(cut -d' ' -f1 "$results" | median) ea=$(cut -d' ' -f2 "$results" | median)
cb=$(cut -d' ' -f3 "$results" | median) eb=$(cut -d' ' -f4 "$results" | median)
echo "median cluster: A $ca/s, B $cb/s, B/A $(awk -v a="$ca" -v b="$cb" 'BEGIN {printf "%.3f", b / a}');" \
     "median embedded: A $ea/s, B $eb/s, B/A $(awk -v a="$ea" -v b="$eb" 'BEGIN {printf "%.3f", b / a}')"
