#!/usr/bin/env bash
# Payments between two nodes (issue 18): starts a local network (scripts/network.sh, the notary
# as one process unless NOTARY=cluster), then measures with `hawser bench payments`
#   1. closed loop: PAYMENTS payments from CLIENTS clients of Alice's node to Bob's party;
#   2. open loop at half the rate reached in 1 (p50 at a sustainable load);
#   3. a backlog: Bob's node killed -9, BACKLOG payments started (two messages each wait in
#      Alice's outbox), Bob's node started again; how long the backlog takes to drain, and Bob's
#      peak resident memory (VmHWM) meanwhile, and the history checker's verdict on the payments;
# then stops the network. Prints each figure as one line; raw lines go to stdout.
#
#   scripts/bench-payments.sh <dir> [base-port]
#
# Environment: HAWSER (a release hawser; default: build it, as scripts/network.sh does), NOTARY,
# PAYMENTS (default 3000), CLIENTS (default 32), BACKLOG (default 5000), NOTARY_REQUESTS (default 20000).
set -euo pipefail
dir=${1:?usage: scripts/bench-payments.sh <dir> [base-port]}
base=${2:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
export NOTARY=${NOTARY:-single}
payments=${PAYMENTS:-3000}
clients=${CLIENTS:-32}
backlog=${BACKLOG:-5000}

"$root/scripts/network.sh" start "$dir" "$base" >/dev/null
dir=$(cd "$dir" && pwd)
hawser=${HAWSER:-$dir/hawser}
trap '"$root/scripts/network.sh" stop "$dir" >/dev/null' EXIT

closed=$("$hawser" bench payments --network "$dir" --payments "$payments" --clients "$clients")
echo "notary=$NOTARY closed-loop $closed"
rate=$(sed -n 's/.*payments_per_second=\([0-9]*\).*/\1/p' <<<"$closed")
half=$((rate / 2))
echo "notary=$NOTARY half-rate $("$hawser" bench payments --network "$dir" --payments "$payments" --clients 128 --rate "$half" --warmup 0)"

# The backlog: Bob's node down while the payments start, then back.
kill -9 "$(cat "$dir/bob/hawser.pid")"
out=$(mktemp)
"$hawser" bench payments --network "$dir" --backlog --payments "$backlog" --history "$dir/backlog-history.jsonl" >"$out" &
bench=$!
until grep -q '^started=' "$out"; do
    kill -0 "$bench" 2>/dev/null || { cat "$out" >&2; exit 1; }
    sleep 0.5
done
(cd "$dir/bob" && exec nohup "$hawser" node run --config node.json --log-level warning >stdout.log 2>hawser.log </dev/null) &
echo $! >"$dir/bob/hawser.pid"
bob=$(cat "$dir/bob/hawser.pid")
wait "$bench"
peak=$(awk '/VmHWM/ {print $2}' "/proc/$bob/status")
echo "notary=$NOTARY $(grep '^backlog_' "$out") payee_peak_rss_kib=$peak $(grep '^history ' "$out" | sed 's/^history [^:]*: /history: /')"
rm -f "$out"

# The notary on its own: every replica's gRPC address, callers spread over them.
if [[ "$NOTARY" == cluster ]]; then urls=(0 2 4); else urls=(0); fi
url_args=()
for offset in "${urls[@]}"; do url_args+=(--url "grpc://127.0.0.1:$((base + offset + 1))"); done
notary=$("$hawser" bench notary --grpc "${url_args[@]}" --spread --key "$dir/alice/party.key" --clients "$clients" \
    --requests "${NOTARY_REQUESTS:-20000}" --inputs-per-tx 1 --double-spend-ratio 0 --json 2>/dev/null | tail -1)
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$notary"; }
echo "notary=$NOTARY notary-only clients=$clients requests_per_second=$(field throughput) p50_ms=$(field p50Ms) p99_ms=$(field p99Ms)"
