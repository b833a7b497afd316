#!/usr/bin/env bash
# Payments to a hot-hot node (issue 19, docs/node.md "In a network"), release build: Alice's node
# (one process, SQLite) pays Bob, whose node is two hot-hot processes on one private PostgreSQL 15
# (fsync on), 16 partitions, PostgreSQL leases; the notary is one process. For each case a fresh
# network (`hawser network init`), then `hawser bench payments` closed loop (CLIENTS clients,
# PAYMENTS payments). Cases (CASES, default "single polls bus"): `single` Bob as one process on the
# same PostgreSQL; `polls` the hot-hot pair telling each other nothing (they poll every
# sessions.pollIntervalMillis, 500 ms); `bus` the pair on a NATS bus (ha.bus); `split` the pair
# on the bus split by roles (docs/node.md "Roles"): A a flow worker with the rpc role, B a P2P
# worker, which takes every message of Alice's and delivers every one of Bob's. In the `polls` and
# `bus` cases A starts first and B once A serves, so A keeps partition 0 and the outbox's election
# and delivers Bob's outbox, and the network definition lists B's address first, so Alice delivers
# to B: every payment's answer crosses from B's flows to A's delivery, the case the bus is for.
# Rounds rotate the order of the cases. PostgreSQL runs as the `postgres` user (it refuses root):
# run this as root.
#
#   scripts/bench-payments-hot-hot.sh [ROUNDS]   (default 1)
#   Environment: HAWSER (a release hawser; default: build it), PAYMENTS (2000), CLIENTS (32), CASES.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
payments=${PAYMENTS:-2000}
clients=${CLIENTS:-32}
cases=${CASES:-single polls bus}
bin=/usr/lib/postgresql/15/bin
if [ -z "${HAWSER:-}" ]; then
    swift build -c release --product hawser --scratch-path .build-release >&2
    HAWSER=$PWD/.build-release/release/hawser
fi
nats_server=$(scripts/nats-server-path.sh)
work=$(mktemp -d /tmp/hawser-bench-pay-hh.XXXXXX)
cp "$HAWSER" "$work/hawser"
hawser=$work/hawser
chown postgres:postgres "$work"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    as_postgres "$bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# A base port whose network ports (base + 0...22) and the bus's (base + 30) are free now.
free_base() {
    python3 - <<'PY'
import random, socket
for _ in range(100):
    base = random.randint(20000, 59000)
    try:
        for offset in (0, 1, 10, 11, 20, 21, 30, 31, 32, 33, 34):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", base + offset)); s.close()
        print(base); break
    except OSError:
        pass
PY
}
wait_ready() {  # URL LOG-DIRECTORY
    local deadline=$((SECONDS + 90))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/health/ready") == 200 ]]; do
        ((SECONDS < deadline)) || { echo "$1 not ready after 90 s; the logs end:" >&2; tail -n 5 "$2"/*.log >&2; exit 1; }
        sleep 0.2
    done
}

pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres "$bin/initdb" -D "$work/pg" -U hawser -A trust -E UTF8 >/dev/null
as_postgres "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pgport -k $work -c listen_addresses=127.0.0.1" start >/dev/null

run_case() {  # single | polls | bus | split
    local case=$1 base net db url case_pids=()
    base=$(free_base)
    net="$work/net-$case-$round"
    db="bob_${case}_$round"
    url="postgres://hawser@127.0.0.1:$pgport/$db"
    as_postgres "$bin/psql" -h "$work" -p "$pgport" -U hawser -d postgres -qc "CREATE DATABASE $db"
    "$hawser" network init "$net" --nodes Alice,Bob --notary single --base-port "$base" >/dev/null
    local bus=null
    if [ "$case" = bus ] || [ "$case" = split ]; then
        "$nats_server" -a 127.0.0.1 -p "$((base + 30))" >"$net/nats.log" 2>&1 &
        pids+=("$!"); case_pids+=("$!")
        bus="{\"servers\": [\"nats://127.0.0.1:$((base + 30))\"]}"
    fi
    # Bob: PostgreSQL; in the hot-hot cases two processes, A (the node's ports) and B (base + 31, 32).
    local ids=(S)
    [ "$case" = single ] || ids=(A B)
    local bob_rpc=("$((base + 11))" "$((base + 31))") bob_p2p=("$((base + 21))" "$((base + 32))")
    if [ "$case" != single ]; then
        jq --arg a "grpc://127.0.0.1:${bob_p2p[0]}" --arg b "grpc://127.0.0.1:${bob_p2p[1]}" \
            '.nodes |= map(if (.name | startswith("O=Bob")) then .addresses = [$b, $a] else . end)' \
            "$net/network.json" >"$net/network.json.new" && mv "$net/network.json.new" "$net/network.json"
    fi
    for i in "${!ids[@]}"; do
        local roles=null
        [ "$case" = split ] && roles=$([ "${ids[$i]}" = A ] && echo '["flow", "rpc"]' || echo '["p2p"]')
        jq --arg id "${ids[$i]}" --argjson rpc "${bob_rpc[$i]}" --argjson p2p "${bob_p2p[$i]}" --arg db "$url" \
           --arg mode "$([ "$case" = single ] && echo single || echo hot-hot)" --argjson bus "$bus" --argjson roles "$roles" '
            .listen.port = $rpc | .network.listen.port = $p2p | .dataDirectory = "data-" + $id
            | .database = {kind: "postgres", url: $db}
            | if $mode == "single" then . else .ha = ({mode: $mode, id: $id, advertise: ["http://127.0.0.1:\($rpc)"],
                  election: {postgres: $db, election: "bob", holdDownMs: 1000}} + (if $bus == null then {} else {bus: $bus} end)
                  + (if $roles == null then {} else {roles: $roles} end)) end' \
            "$net/bob/node.json" >"$net/bob/${ids[$i]}.json"
    done
    # The payee's RPC address the benchmark reads is node.json's: Bob's first process.
    cp "$net/bob/${ids[0]}.json" "$net/bob/node.json"
    "$hawser" notary run --config "$net/notary/hawser.json" --log-level error >/dev/null 2>"$net/notary.log" &
    pids+=("$!"); case_pids+=("$!")
    "$hawser" node run --config "$net/alice/node.json" --log-level error >/dev/null 2>"$net/alice.log" &
    pids+=("$!"); case_pids+=("$!")
    for i in "${!ids[@]}"; do
        "$hawser" node run --config "$net/bob/${ids[$i]}.json" --log-level error >/dev/null 2>"$net/bob-${ids[$i]}.log" &
        pids+=("$!"); case_pids+=("$!")
        wait_ready "http://127.0.0.1:${bob_rpc[$i]}" "$net"
    done
    wait_ready "http://127.0.0.1:$((base + 10))" "$net"
    echo "case=$case $("$hawser" bench payments --network "$net" --payments "$payments" --clients "$clients")"
    for pid in "${case_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${case_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $payments payments, $clients clients; build $HAWSER"
read -r -a order <<< "$cases"
for round in $(seq "$rounds"); do
    first=$(( (round - 1) % ${#order[@]} ))
    rotated=("${order[@]:$first}" "${order[@]:0:$first}")
    for case in "${rotated[@]}"; do run_case "$case"; done
done
