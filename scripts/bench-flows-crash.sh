#!/usr/bin/env bash
# Flows under contention through kill -9 crashes, on a release build: a `hawser node run` process
# and `hawser bench flows --workload move` (32 clients with client request ids moving tokens
# between O=Alice and O=Bob, both ways) against it, while this script kills the node with SIGKILL
# every KILL_EVERY seconds and starts it again. Prints a line per kill (flows completed since the
# last kill, by the node's database; the node's CPU seconds in that time, so that the cost of a
# flow can be followed even on a machine shared with other work; node.sqlite's size; the load),
# then the bench's lines (throughput, latency, how the flows ended, flows ended per interval).
# Usage: scripts/bench-flows-crash.sh [FLOWS] [KILL_EVERY] [REPORT_EVERY]
#   (default: 3000 flows, a kill every 15 s, flows ended per 10 s printed)
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-3000}
kill_every=${2:-15}
report_every=${3:-10}
swift build -c release --product hawser --scratch-path .build-release >&2
hawser=$PWD/.build-release/release/hawser

dir=$(mktemp -d /tmp/hawser-crash-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$hawser node init --dir "$dir" --port "$port" --user bench --password bench >/dev/null
node_pid=""
start_node() {
    $hawser node run --config "$dir/node.json" --log-level error >>"$dir/node.out" 2>>"$dir/node.err" &
    node_pid=$!
    for _ in $(seq 600); do
        grep -q '"listening"' "$dir/node.out" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "the node did not start; see $dir/node.err" >&2
    exit 1
}
stop() { [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null || true; }
trap stop EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# flows=$flows clients=32 workload=move kill_every_s=$kill_every dir=$dir"
start_node
$hawser bench flows --node "http://127.0.0.1:$port" --user bench --password bench --workload move --clients 32 \
    --flows "$flows" --warmup 0 --seed-states 64 --report-every "$report_every" >"$dir/bench.out" 2>"$dir/bench.err" &
bench_pid=$!
completed() {
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM flows WHERE status = ?", ("completed",)).fetchone()[0])' "$dir/data/node.sqlite"
}
cpu_seconds() {  # user + system time of a process, from /proc (clock ticks)
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
began=$(date +%s.%N)
last_at=$began
last_completed=0
kills=0
while kill -0 "$bench_pid" 2>/dev/null; do
    for _ in $(seq $((kill_every * 10))); do
        kill -0 "$bench_pid" 2>/dev/null || break 2
        sleep 0.1
    done
    cpu=$(cpu_seconds "$node_pid")
    kill -9 "$node_pid"
    wait "$node_pid" 2>/dev/null || true
    kills=$((kills + 1))
    now=$(date +%s.%N)
    done_now=$(completed)
    awk -v k="$kills" -v at="$(echo "$now - $began" | bc)" -v wall="$(echo "$now - $last_at" | bc)" -v n="$((done_now - last_completed))" \
        -v cpu="$cpu" -v bytes="$(stat -c %s "$dir/data/node.sqlite")" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
        'BEGIN { printf "kill=%d at_s=%.1f flows_completed=%d flows_per_second=%.1f node_cpu_s=%.1f node_cpu_ms_per_flow=%.2f node_sqlite_bytes=%d load=%s\n", k, at, n, n / wall, cpu, (n > 0 ? cpu * 1000 / n : 0), bytes, load }'
    last_at=$now
    last_completed=$done_now
    : >"$dir/node.out"
    start_node
done
status=0
wait "$bench_pid" || status=$?
cat "$dir/bench.out"
[ "$status" = 0 ] || { echo "the bench failed ($status):" >&2; cat "$dir/bench.err" >&2; }
echo "kills=$kills node_sqlite_bytes=$(stat -c %s "$dir/data/node.sqlite") wal_bytes=$(stat -c %s "$dir/data/node.sqlite-wal" 2>/dev/null || echo 0)"
exit "$status"
