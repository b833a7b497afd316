#!/usr/bin/env bash
# Failover benchmark (issue 4): kill -9 the leader, time until the new leader acts (its first
# accepted fenced write), TRIALS times per backend. Release build; prints one summary line and
# one JSON line per backend.
#
#   scripts/bench-failover.sh [TRIALS]      # default 20
#   BACKENDS="sqlite postgres" scripts/bench-failover.sh   # a subset (default: zookeeper sqlite postgres)
#
# Backends: ZooKeeper (a 3-server ensemble on loopback, session timeout 2 s), the SQLite lease
# and, when PostgreSQL 15 is installed and we are root, the PostgreSQL lease (lease 2 s, renew
# 500 ms). Everything runs in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-20}
backends=" ${BACKENDS:-zookeeper sqlite postgres} "

swift build -c release --scratch-path .build-release --product hawser >&2
work=$(mktemp -d /tmp/hawser-bench-failover.XXXXXX)
chmod 755 "$work"  # the postgres user must reach its data directory inside
# A private copy: the shared build directory may be rebuilt while the trials start processes.
cp .build-release/release/hawser "$work/hawser"
hawser=$work/hawser
pg_pid=""
cleanup() {
    scripts/zookeeper-ensemble.sh stop "$work/zk" >/dev/null 2>&1 || true
    if [[ -n "$pg_pid" ]]; then kill -9 "$pg_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ "$backends" == *" zookeeper "* ]]; then
    echo "== ZooKeeper (session timeout 2 s)" >&2
    connect=$(scripts/zookeeper-ensemble.sh start "$work/zk" | tail -1)
    printf 'hawser-bench:%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$work/zk.credentials"
    "$hawser" bench failover --zookeeper "$connect" --zookeeper-credentials "$work/zk.credentials" \
        --session-timeout-ms 2000 --trials "$trials" --json
    scripts/zookeeper-ensemble.sh stop "$work/zk" >/dev/null
fi

if [[ "$backends" == *" sqlite "* ]]; then
    echo "== SQLite lease (lease 2 s, renew 500 ms)" >&2
    "$hawser" bench failover --sqlite "$work/lease.sqlite" --lease-ms 2000 --renew-ms 500 --trials "$trials" --json
fi

pgbin=/usr/lib/postgresql/15/bin
if [[ "$backends" == *" postgres "* && -x "$pgbin/postgres" && "$(id -u)" == 0 ]]; then
    echo "== PostgreSQL lease (lease 2 s, renew 500 ms)" >&2
    mkdir -p "$work/pg" && chown postgres:postgres "$work/pg"
    setpriv --reuid=postgres --regid=postgres --init-groups "$pgbin/initdb" -D "$work/pg/data" -U hawser -A trust --no-sync >/dev/null
    port=$((20000 + RANDOM % 40000))
    setpriv --reuid=postgres --regid=postgres --init-groups "$pgbin/postgres" -D "$work/pg/data" -p "$port" -k "$work/pg" \
        -c listen_addresses=127.0.0.1 >"$work/pg/log" 2>&1 &
    pg_pid=$!
    until "$pgbin/pg_isready" -h 127.0.0.1 -p "$port" -q; do sleep 0.2; done
    "$hawser" bench failover --postgres "postgres://hawser@127.0.0.1:$port/postgres" --lease-ms 2000 --renew-ms 500 \
        --trials "$trials" --json
fi
