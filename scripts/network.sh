#!/usr/bin/env bash
# Start or stop a local network on loopback (docs/network.md): the notary (three replicas of one
# notary on a 3-server JetStream cluster, or one process) and three nodes, Alice, Bob and Charlie,
# each a member of one network definition, talking over signed peer-to-peer sessions.
#
#   scripts/network.sh start <dir> [base-port]   create the network (first time) and start it
#   scripts/network.sh stop  <dir>               stop every process started in <dir>
#
# `start` makes <dir> with `hawser network init` (ports base-port...base-port+202, default 10000),
# starts the notary's NATS cluster and replicas, then the nodes, waits until each answers
# /health/ready, and prints how to drive them. Each process logs to <dir>/<its dir>/hawser.log.
# Environment: HAWSER (the hawser binary; default: build release into .build-release and copy it
# to <dir>/hawser), NOTARY (cluster, the default, or single), NATS_SERVER and SYNC_INTERVAL as for
# scripts/nats-cluster.sh, LOG_LEVEL (default warning).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || usage
root=$(cd "$(dirname "$0")/.." && pwd)
# A live process: a killed one not yet reaped (a zombie) answers kill -0 too (as node-ha.sh).
running() { kill -0 "$1" 2>/dev/null && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; }
nodes=(alice bob charlie)

# Starts `hawser $2...` in directory $1 (its pid in $1/hawser.pid, its log in $1/hawser.log).
start_process() {
    local where=$1; shift
    if [[ -f "$where/hawser.pid" ]] && running "$(cat "$where/hawser.pid")"; then
        echo "$where: already running (pid $(cat "$where/hawser.pid"))" >&2
        return 0
    fi
    # The subshell becomes the process (exec), so that $! is its pid; it holds none of our streams.
    (cd "$where" && exec nohup "$@" --log-level "${LOG_LEVEL:-warning}" >>stdout.log 2>>hawser.log </dev/null) &
    echo $! >"$where/hawser.pid"
}

# Waits (at most 90 s) until the process in $1 answers GET /health/ready on port $2.
wait_ready() {
    local where=$1 port=$2 deadline=$((SECONDS + 90))
    # --max-time: a paused process (SIGSTOP) accepts connections and never answers.
    until [[ $(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready") == 200 ]]; do
        if ! running "$(cat "$where/hawser.pid")"; then echo "$where: exited; see $where/hawser.log" >&2; return 1; fi
        if ((SECONDS > deadline)); then echo "$where: not ready after 90 s; see $where/hawser.log" >&2; return 1; fi
        sleep 0.2
    done
}

case "$cmd" in
start)
    base=${3:-10000}
    notary=${NOTARY:-cluster}
    hawser=$("$root/scripts/hawser-path.sh" "$dir")
    if [[ ! -f "$dir/network.json" ]]; then
        "$hawser" network init "$dir" --nodes Alice,Bob,Charlie --notary "$notary" --base-port "$base" >"$dir.init.txt" \
            || { cat "$dir.init.txt" >&2; exit 1; }
        mv "$dir.init.txt" "$dir/init.txt"
    fi
    dir=$(cd "$dir" && pwd)
    if [[ -d "$dir/notary/r0" ]]; then
        "$root/scripts/nats-cluster.sh" start "$dir/notary/nats" "$((base + 100))" >/dev/null
        for i in 0 1 2; do start_process "$dir/notary/r$i" "$hawser" notary run --config hawser.json; done
        for i in 0 1 2; do wait_ready "$dir/notary/r$i" "$((base + 2 * i))"; done
    else
        start_process "$dir/notary" "$hawser" notary run --config hawser.json
        wait_ready "$dir/notary" "$base"
    fi
    for i in 0 1 2; do start_process "$dir/${nodes[$i]}" "$hawser" node run --config node.json; done
    for i in 0 1 2; do wait_ready "$dir/${nodes[$i]}" "$((base + 10 + i))"; done
    cat <<EOF
The network runs in $dir: the notary ($notary), and the nodes
  Alice   http://127.0.0.1:$((base + 10))   (party "O=Alice, L=London, C=GB")
  Bob     http://127.0.0.1:$((base + 11))   (party "O=Bob, L=London, C=GB")
  Charlie http://127.0.0.1:$((base + 12))   (party "O=Charlie, L=London, C=GB")
each with RPC user admin, password in $dir/<node>/rpc-password. A payment from Alice to Bob:
  alice="--node http://127.0.0.1:$((base + 10)) --password \$(cat $dir/alice/rpc-password)"
  $hawser flow start IssueTokens '{"owner":"O=Alice, L=London, C=GB","amount":100}' --wait \$alice
  $hawser flow start MoveTokens '{"owner":"O=Alice, L=London, C=GB","newOwner":"O=Bob, L=London, C=GB","amount":30}' --wait \$alice
  $hawser vault query --owner "O=Bob, L=London, C=GB" --node http://127.0.0.1:$((base + 11)) --password \$(cat $dir/bob/rpc-password)
Stop it with: scripts/network.sh stop $dir
EOF
    ;;
stop)
    for where in "$dir"/{alice,bob,charlie} "$dir"/notary/r{0,1,2} "$dir/notary"; do
        [[ -f "$where/hawser.pid" ]] || continue
        pid=$(cat "$where/hawser.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$where/hawser.pid"
    done
    [[ -d "$dir/notary/nats" ]] && "$root/scripts/nats-cluster.sh" stop "$dir/notary/nats"
    echo "stopped the network in $dir"
    ;;
*) usage ;;
esac
