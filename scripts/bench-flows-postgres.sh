#!/usr/bin/env bash
# Durable flows on PostgreSQL beside SQLite, in one run, on a release build (issue 15): a private
# PostgreSQL 15 (initdb in a temporary directory, a free loopback port, every setting at its
# default: fsync on, synchronous_commit on, full_page_writes on) and `hawser bench flows` with an
# in-process node on each store: closed loop with CLIENTS clients, then open loop at RATE flows/s.
# PostgreSQL runs as the `postgres` user (it refuses root), so run this as root.
# Usage: scripts/bench-flows-postgres.sh [FLOWS] [CLIENTS] [RATE] [ROUNDS]   (default: 5000 64 500 1)
# With HAWSER="/path/a /path/b" (builds to compare), each round runs every build in turn on the
# same server, each line tagged with its build, each round starting with the next build: an A/B
# under the same load. Otherwise this worktree's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-5000}
clients=${2:-64}
rate=${3:-500}
rounds=${4:-1}
bin=/usr/lib/postgresql/15/bin
if [ -z "${HAWSER:-}" ]; then
    swift build -c release --product hawser --scratch-path .build-release >&2
    HAWSER=$PWD/.build-release/release/hawser
fi

pg=$(mktemp -d /tmp/hawser-pg-bench.XXXXXX)
chown postgres:postgres "$pg"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres "$bin/initdb" -D "$pg/data" -U hawser -A trust -E UTF8 >/dev/null
as_postgres "$bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -o "-p $port -k $pg -c listen_addresses=127.0.0.1" start >/dev/null
trap 'as_postgres "$bin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1; rm -rf "$pg"' EXIT
settings=$(as_postgres "$bin/psql" -h "$pg" -p "$port" -U hawser -d postgres -Atc \
    "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')")
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); postgres: $settings"

run() {  # build, store, then the bench's own options
    local hawser=$1 store=$2; shift 2
    local extra=()
    if [ "$store" = postgres ]; then
        local db="b$(date +%s%N)"
        as_postgres "$bin/psql" -h "$pg" -p "$port" -U hawser -d postgres -qc "CREATE DATABASE $db"
        extra=(--database-url "postgres://hawser@127.0.0.1:$port/$db")
    fi
    local line
    line=$("$hawser" bench flows --store "$store" "${extra[@]}" --flows "$flows" --clients "$clients" "$@")
    echo "build=$hawser $line"
}
read -r -a builds <<< "$HAWSER"
for round in $(seq "$rounds"); do
    # The first place goes round: in a fixed order the build that ran second had the slower
    # open loop in most rounds, whichever build it was (the server is still busy with the last
    # run's database then).
    first=$(( (round - 1) % ${#builds[@]} ))
    order=("${builds[@]:$first}" "${builds[@]:0:$first}")
    echo "# round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    for store in sqlite postgres; do
        for hawser in "${order[@]}"; do run "$hawser" "$store"; done
        for hawser in "${order[@]}"; do run "$hawser" "$store" --rate "$rate"; done
    done
done
