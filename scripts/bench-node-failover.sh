#!/usr/bin/env bash
# Node failover benchmark (issue 15): kill -9 of the active node under flow load, to the first
# flow completed by the new active node, TRIALS times per case (release build): hot-cold (the
# watchdog sees its node die), hot-cold with the machine gone (watchdog and node killed together)
# and hot-warm. The election is a private 3-server ZooKeeper ensemble on loopback with a session
# timeout of 2 s; the node database is SQLite, shared by the two nodes. Prints a header line
# (date, cores, load), then every line of the benchmark.
#
#   scripts/bench-node-failover.sh [TRIALS]          # default 20
#   CASES="hot-warm" scripts/bench-node-failover.sh  # a subset (default: hot-cold machine-gone hot-warm)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-20}
cases=${CASES:-hot-cold machine-gone hot-warm}

swift build -c release --scratch-path .build-release --product hawser >&2
work=$(mktemp -d /tmp/hawser-bench-node-failover.XXXXXX)
# A private copy: the shared build directory may be rebuilt while the trials start processes.
cp .build-release/release/hawser "$work/hawser"
trap 'scripts/zookeeper-ensemble.sh stop "$work/zk" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
connect=$(scripts/zookeeper-ensemble.sh start "$work/zk" | tail -1)
printf 'hawser-bench:%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$work/zk.credentials"

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ZooKeeper 3 servers, session timeout 2000 ms"
for case in $cases; do
    case $case in
        hot-cold) options=(--mode hot-cold) ;;
        machine-gone) options=(--mode hot-cold --machine-gone) ;;
        hot-warm) options=(--mode hot-warm) ;;
        *) echo "unknown case $case (hot-cold, machine-gone, hot-warm)" >&2; exit 2 ;;
    esac
    "$work/hawser" bench failover --node "${options[@]}" --zookeeper "$connect" --zookeeper-credentials "$work/zk.credentials" \
        --session-timeout-ms 2000 --trials "$trials" --work-directory "$work/$case" --json
    echo "# after $case: load $(cut -d' ' -f1-3 /proc/loadavg)"
done
