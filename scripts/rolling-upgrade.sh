#!/usr/bin/env bash
# A rolling upgrade of a hot-hot node under flow load (issue 19, docs/node.md "Rolling upgrades"):
# three workers A, B and C of one node on a private PostgreSQL 15 (fsync on; the node database and
# the partitions' leases, PARTITIONS partitions, hold-down 1 s) and a standalone notary, all
# started with the OLD build (without a bus: builds before session 41 take one only in a network). `hawser bench flows` (the NEW build) drives IssueTokens
# flows at RATE per second over the three, recording every start and end (docs/history.md); while
# it runs each worker in turn is stopped (SIGTERM) and started again with the NEW build, so that for
# a while old and new processes share the partitions and the database; the new ones are on a NATS
# bus (`ha.bus`). Last, an RPC worker
# of the NEW build (`ha.roles ["rpc"]`) joins and takes a share of the starts. At the end the
# history is checked (every acknowledged flow ended, once), every flow in the database completed,
# and what each worker said of the other builds' bus events is counted. Exits non-zero on any
# violation. PostgreSQL runs as the `postgres` user (it refuses root): run this as root.
#
#   scripts/rolling-upgrade.sh OLD-HAWSER NEW-HAWSER [FLOWS] [RATE]   (default 6000 flows at 100/s)
#   PARTITIONS (default 8). The logs stay in the printed directory when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
flows=${3:-6000}
rate=${4:-100}
partitions=${PARTITIONS:-8}
bin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/hawser-rolling-upgrade.XXXXXX)
cp "$1" "$work/old"
cp "$2" "$work/new"
chown postgres:postgres "$work"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
failed=1
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    as_postgres "$bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    if ((failed)); then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
wait_ready() {  # URL LOG
    local deadline=$((SECONDS + 90))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/health/ready") == 200 ]]; do
        ((SECONDS < deadline)) && kill -0 "${3:-$$}" 2>/dev/null || { echo "$1 not ready (gone, or after 90 s); its log ends:" >&2; tail -n 5 "$2" >&2; exit 1; }
        sleep 0.2
    done
}

pgport=$(free_port)
as_postgres "$bin/initdb" -D "$work/pg" -U hawser -A trust -E UTF8 >/dev/null
as_postgres "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pgport -k $work -c listen_addresses=127.0.0.1" start >/dev/null
as_postgres "$bin/psql" -h "$work" -p "$pgport" -U hawser -d postgres -qc "CREATE DATABASE node"
db="postgres://hawser@127.0.0.1:$pgport/node"
natsport=$(free_port)
"$(scripts/nats-server-path.sh)" -a 127.0.0.1 -p "$natsport" >"$work/nats.log" 2>&1 &
pids+=("$!")

notary_port=$(free_port)
key=$("$work/old" notary init --dir "$work/notary" --port "$notary_port" --accept-any-party | sed -n 's/.*(public key \(.*\))$/\1/p')
"$work/old" notary run --config "$work/notary/hawser.json" --log-level error >/dev/null 2>"$work/notary.log" &
pids+=("$!")
wait_ready "http://127.0.0.1:$notary_port" "$work/notary.log"
"$work/old" node init --dir "$work/node" --port 0 --user bench --password bench \
    --notary-url "http://127.0.0.1:$notary_port" --notary-key "$key" >/dev/null

declare -A port pid
configure() {  # ID BUILD [ROLES-JSON]: the old build's file has no bus
    [[ -n ${port[$1]:-} ]] || port[$1]=$(free_port)
    jq --arg id "$1" --argjson port "${port[$1]}" --arg db "$db" --argjson partitions "$partitions" \
        --arg bus "$([[ $2 == new ]] && echo "nats://127.0.0.1:$natsport")" --argjson roles "${3:-null}" '
        .listen.port = $port | .dataDirectory = "data-" + $id | .database = {kind: "postgres", url: $db}
        | .ha = {mode: "hot-hot", id: $id, advertise: ["http://127.0.0.1:\($port)"], partitions: $partitions,
                 election: {postgres: $db, election: "upgrade", holdDownMs: 1000}}
        | if $bus == "" then . else .ha.bus = {servers: [$bus]} end
        | if $roles == null then . else .ha.roles = $roles end' "$work/node/node.json" >"$work/node/$1.json"
}
start() {  # ID BUILD
    configure "$1" "$2" "${3:-}"
    "$work/$2" node run --config "$work/node/$1.json" --log-level notice >>"$work/$1.out" 2>>"$work/$1.log" &
    pid[$1]=$!
    pids+=("$!")
    echo "$(date -u +%T) $1 runs the $2 build"
    wait_ready "http://127.0.0.1:${port[$1]}" "$work/$1.log" "${pid[$1]}"
}
for id in A B C R; do port[$id]=$(free_port); done
for id in A B C; do start "$id" old; done

urls=(--node "http://127.0.0.1:${port[A]}" --node "http://127.0.0.1:${port[B]}" --node "http://127.0.0.1:${port[C]}"
      --node "http://127.0.0.1:${port[R]}")
HAWSER_PASSWORD=bench "$work/new" bench flows "${urls[@]}" --user bench --flows "$flows" --warmup 0 --clients 32 \
    --rate "$rate" --history "$work/history.jsonl" >"$work/bench.out" 2>"$work/bench.err" &
bench=$!
sleep 5
for id in A B C; do
    kill -TERM "${pid[$id]}"
    wait "${pid[$id]}" || true
    echo "$(date -u +%T) $id stopped"
    start "$id" new
    sleep 5
done
start R new '["rpc"]'
wait "$bench" || { echo "the benchmark or its history check failed:" >&2; cat "$work/bench.out" "$work/bench.err" >&2; exit 1; }
cat "$work/bench.out"
counts=$(as_postgres "$bin/psql" -h "$work" -p "$pgport" -U hawser -d node -Atc "SELECT status || ' ' || count(*) FROM flows GROUP BY status")
echo "flows in the node database: $counts"
[[ $counts == "completed $flows" ]] || { echo "every flow must have completed, once" >&2; exit 1; }
for id in A B C R; do
    echo "$id: $(grep -c 'refused an event on the bus' "$work/$id.log" || true) kinds of bus event refused: $(grep -o 'refused an event on the bus: [^;]*' "$work/$id.log" | sort -u | tr '\n' '|')"
done
failed=0
