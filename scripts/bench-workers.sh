#!/usr/bin/env bash
# Hot-hot scaling on this machine (issue 19), release build: the same flow benchmark on one node
# whose flows run on 1, 2 and 3 hot-hot workers, beside the single-process node (ha.mode single),
# all on one private PostgreSQL 15 (every setting at its default: fsync and synchronous_commit on),
# with a standalone notary (open to any party). Each case gets a database of its own; the workers
# stand in PostgreSQL leases in it (PARTITIONS partitions, hold-down 1 s) and the callers are
# spread over them (`hawser bench flows --node URL ...`). For each case it prints the benchmark's
# line, then the CPU the node's processes, the notary and PostgreSQL (the postmaster, its live
# backends and those it reaped) used, per flow (utime + stime from /proc, over the whole run:
# warm-up and timed flows). Rounds rotate the order of the cases. Case rN is the split by roles
# (docs/node.md "Roles"): one RPC worker, which alone the callers reach, and N flow workers; with
# BUS=1 (and a nats-server: $NATS_SERVER or scripts/nats-server-path.sh) the hot-hot processes
# are on a bus (ha.bus), so a queued start is run at once rather than at the next read of the queue.
# PostgreSQL runs as the `postgres` user (it refuses root), so run this as root.
#
#   scripts/bench-workers.sh [FLOWS] [CLIENTS] [ROUNDS] [PARTITIONS]   (default: 3000 64 2 16)
#   CASES="single 1 2 3" (the default; also r1, r2 ...) chooses the cases. PERF=DIR records the node processes'
#   CPU (`perf record --call-graph dwarf`) during each case's benchmark, into DIR/CASE-rN.data.
#   IDLE=SECONDS first measures each case with no flow running, for that long.
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-3000}
clients=${2:-64}
rounds=${3:-2}
partitions=${4:-16}
warmup=500
cases=${CASES:-single 1 2 3}
bin=/usr/lib/postgresql/15/bin
if [ -z "${HAWSER:-}" ]; then
    swift build -c release --product hawser --scratch-path .build-release >&2
    HAWSER=$PWD/.build-release/release/hawser
fi
work=$(mktemp -d /tmp/hawser-bench-workers.XXXXXX)
cp "$HAWSER" "$work/hawser"
hawser=$work/hawser
chown postgres:postgres "$work"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    as_postgres "$bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

pgport=$(free_port)
as_postgres "$bin/initdb" -D "$work/pg" -U hawser -A trust -E UTF8 >/dev/null
as_postgres "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pgport -k $work -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null

nats_url=
if [ -n "${BUS:-}" ]; then
    nats_port=$(free_port)
    "${NATS_SERVER:-$(scripts/nats-server-path.sh)}" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
    pids+=("$!")
    nats_url="nats://127.0.0.1:$nats_port"
    until (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null; do sleep 0.1; done
fi

notary_port=$(free_port)
key=$("$hawser" notary init --dir "$work/notary" --port "$notary_port" --accept-any-party | sed -n 's/.*(public key \(.*\))$/\1/p')
"$hawser" notary run --config "$work/notary/hawser.json" --log-level error >/dev/null 2>"$work/notary.log" &
notary_pid=$!
pids+=("$notary_pid")
until curl -sf -o /dev/null "http://127.0.0.1:$notary_port/health/ready"; do sleep 0.2; done
"$hawser" node init --dir "$work/node" --port 0 --user bench --password bench \
    --notary-url "http://127.0.0.1:$notary_port" --notary-key "$key" >/dev/null

cpu_ticks() {  # utime + stime of the given pids, in clock ticks
    local total=0 pid
    for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$total"
}

postgres_ticks() {  # PostgreSQL's CPU so far: the postmaster, its live children and the children it reaped
    local postmaster total
    postmaster=$(head -1 "$work/pg/postmaster.pid")
    total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
    for pid in $(ps --ppid "$postmaster" -o pid=); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

db_stat() {  # transactions committed and rows read (returned by scans, fetched by index) in database $1
    as_postgres "$bin/psql" -h "$work" -p "$pgport" -U hawser -d postgres -Atc \
        "SELECT xact_commit || ' ' || (tup_returned + tup_fetched) FROM pg_stat_database WHERE datname = '$1'"
}

run_case() {  # single | number of workers | rN: an RPC worker and N flow workers
    local case=$1 db="c${1}_$(date +%s%N)" ids=() urls=() worker_pids=() id port flow_workers=${1#r}
    as_postgres "$bin/psql" -h "$work" -p "$pgport" -U hawser -d postgres -qc "CREATE DATABASE $db"
    local url="postgres://hawser@127.0.0.1:$pgport/$db"
    if [ "$case" = single ]; then ids=(S); else for i in $(seq "$flow_workers"); do ids+=("W$i"); done; fi
    if [[ $case == r* ]]; then ids+=(R); fi
    for id in "${ids[@]}"; do
        port=$(free_port)
        urls+=("http://127.0.0.1:$port")
        jq --arg id "$id" --argjson port "$port" --arg db "$url" --arg mode "$([ "$case" = single ] && echo single || echo hot-hot)" \
            --argjson partitions "$partitions" --arg split "$([[ $case == r* ]] && echo 1 || echo 0)" --arg bus "${nats_url:-}" '
            .listen.port = $port | .dataDirectory = "data-" + $id | .database = {kind: "postgres", url: $db}
            | .ha = (if $mode == "single" then {mode: "single"}
                     else {mode: $mode, id: $id, advertise: ["http://127.0.0.1:\($port)"], partitions: $partitions,
                           election: {postgres: $db, election: "bench", holdDownMs: 1000}}
                          + (if $split == "1" then {roles: (if $id == "R" then ["rpc"] else ["flow"] end)} else {} end)
                          + (if $bus != "" then {bus: {servers: [$bus]}} else {} end) end)' \
            "$work/node/node.json" >"$work/node/$id.json"
        "$hawser" node run --config "$work/node/$id.json" --log-level error >"$work/$id.out" 2>"$work/$id.log" &
        worker_pids+=("$!")
        pids+=("$!")
    done
    # Every worker serves its share of the partitions (or the single node is ready).
    for i in "${!ids[@]}"; do
        until [[ "$(curl -s --max-time 2 "${urls[$i]}/health/ready")" == *'"status":"ready"'* ]]; do sleep 0.2; done
    done
    if [ "$case" != single ]; then
        local want=$((partitions / flow_workers))
        for id in "${ids[@]}"; do
            [ "$id" = R ] && continue
            until (( $(jq -r 'select(.event == "serving" or .event == "released") | "\(.partition) \(.event)"' "$work/$id.out" \
                       | awk '{last[$1] = $2} END {n = 0; for (p in last) if (last[p] == "serving") n++; print n}') >= want )); do sleep 0.2; done
        done
    fi
    local nodes=() before notary_before pg_before line after notary_after pg_after stat_before stat_after
    if [[ $case == r* ]]; then nodes=(--node "${urls[-1]}"); else for u in "${urls[@]}"; do nodes+=(--node "$u"); done; fi
    if [ -n "${IDLE:-}" ]; then  # what the case costs with no flow running, over IDLE seconds
        local idle_cpu idle_pg idle_stat
        sleep 1  # the readiness polls' statistics settle
        idle_cpu=$(cpu_ticks "${worker_pids[@]}"); idle_pg=$(postgres_ticks); idle_stat=$(db_stat "$db")
        sleep "$IDLE"
        printf 'case=%s idle_seconds=%s node_cpu_ms_per_second=%s postgres_cpu_ms_per_second=%s postgres_commits_and_rows_read_per_second=%s\n' \
            "$case" "$IDLE" "$(echo "scale=1; ($(cpu_ticks "${worker_pids[@]}") - $idle_cpu) * 1000 / $(getconf CLK_TCK) / $IDLE" | bc)" \
            "$(echo "scale=1; ($(postgres_ticks) - $idle_pg) * 1000 / $(getconf CLK_TCK) / $IDLE" | bc)" \
            "$(sleep 0.6; paste -d' ' <(db_stat "$db") <(echo "$idle_stat") | awk -v s="$IDLE" '{printf "%.1f/%.1f", ($1 - $3) / s, ($2 - $4) / s}')"
    fi
    before=$(cpu_ticks "${worker_pids[@]}")
    notary_before=$(cpu_ticks "$notary_pid")
    pg_before=$(postgres_ticks)
    stat_before=$(db_stat "$db")
    local perf_pid=
    if [ -n "${PERF:-}" ]; then
        mkdir -p "$PERF"
        perf record -q -F 299 --call-graph dwarf,16384 -o "$PERF/$case-r$round.data" -p "$(IFS=,; echo "${worker_pids[*]}")" 2>/dev/null &
        perf_pid=$!
    fi
    line=$(HAWSER_PASSWORD=bench "$hawser" bench flows "${nodes[@]}" --user bench --flows "$flows" --clients "$clients" --warmup "$warmup")
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    after=$(cpu_ticks "${worker_pids[@]}")
    notary_after=$(cpu_ticks "$notary_pid")
    pg_after=$(postgres_ticks)
    sleep 0.6  # PostgreSQL's statistics reach pg_stat_database up to 500 ms after a transaction
    stat_after=$(db_stat "$db")
    local hz total=$((flows + warmup)) xacts rows
    hz=$(getconf CLK_TCK)
    read -r xacts rows <<< "$(paste -d' ' <(echo "$stat_after") <(echo "$stat_before") | awk '{print $1 - $3, $2 - $4}')"
    printf 'case=%s %s node_cpu_ms_per_flow=%s notary_cpu_ms_per_flow=%s postgres_cpu_ms_per_flow=%s postgres_commits_per_flow=%s postgres_rows_read_per_flow=%s\n' \
        "$case" "$line" \
        "$(echo "scale=3; ($after - $before) * 1000 / $hz / $total" | bc)" \
        "$(echo "scale=3; ($notary_after - $notary_before) * 1000 / $hz / $total" | bc)" \
        "$(echo "scale=3; ($pg_after - $pg_before) * 1000 / $hz / $total" | bc)" \
        "$(echo "scale=3; $xacts / $total" | bc)" "$(echo "scale=1; $rows / $total" | bc)"
    for pid in "${worker_pids[@]}"; do kill -TERM "$pid"; done
    for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $partitions partitions, $flows flows + $warmup warm-up, $clients callers; build $HAWSER"
read -r -a order <<< "$cases"
for round in $(seq "$rounds"); do
    first=$(( (round - 1) % ${#order[@]} ))
    rotated=("${order[@]:$first}" "${order[@]:0:$first}")
    echo "# round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    for case in "${rotated[@]}"; do run_case "$case"; done
done
