#!/usr/bin/env bash
# Start or stop a local notary cluster on loopback: 3 nats-server (JetStream) + 3 notary replicas
# of one notary (one key), each with its own SQLite store, sharing one replicated log stream.
#
#   scripts/notary-cluster.sh start <dir> [nats-base-port] [http-base-port] [grpc-base-port]
#   scripts/notary-cluster.sh stop  <dir>
#   scripts/notary-cluster.sh kill  <dir> <replica 0-2>     kill -9 one replica (to try failover)
#   scripts/notary-cluster.sh restart <dir> <replica 0-2>...   start stopped replicas again, then wait
#                                                         until each is ready (a replica is ready only with
#                                                         a majority running: after a whole outage, give two or three)
#
# NATS client ports are nats-base-port..+2 (default 4222; the servers also take +100..+102 for
# routes and +200..+202 for monitoring, see nats-cluster.sh); the replicas' HTTP APIs listen on
# http-base-port..+2 (default 8080); given a grpc-base-port, they also serve gRPC on ..+2, listed
# in <dir>/grpc-urls. <dir> holds everything: the NATS cluster (nats/), the replicas (r0/, r1/,
# r2/ with hawser.json, notary.key and data/), their logs and pid files, the notary's public key
# (notary.pub), and a party key authorised to notarise (demo-party.key). `start` prints the
# replicas' HTTP URLs once all are ready.
# Environment: HAWSER (the hawser binary; default: build release into .build-release and copy it
# to <dir>/hawser, which later commands on <dir> reuse); NATS_SERVER and SYNC_INTERVAL as for
# scripts/nats-cluster.sh.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || usage
root=$(cd "$(dirname "$0")/.." && pwd)
# A live process: a killed one not yet reaped (a zombie) answers kill -0 too (as node-ha.sh).
running() { kill -0 "$1" 2>/dev/null && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; }

# True once the replica on port $1 answers GET /health/ready with 200.
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health/ready") == 200 ]]; }

start_replica() {
    local i=$1 hawser=$2
    local pidfile="$dir/r$i/hawser.pid"
    if [[ -f "$pidfile" ]] && running "$(cat "$pidfile")"; then
        echo "replica $i already running (pid $(cat "$pidfile"))" >&2
        return 1
    fi
    nohup "$hawser" notary run --config "$dir/r$i/hawser.json" --log-level "${LOG_LEVEL:-warning}" \
        >>"$dir/r$i/stdout.log" 2>>"$dir/r$i/hawser.log" &
    echo $! >"$pidfile"
}

wait_ready() {
    local i=$1 port
    port=$(cat "$dir/r$i/port")
    local deadline=$((SECONDS + 60))
    until ready "$port"; do
        if ! running "$(cat "$dir/r$i/hawser.pid")"; then
            echo "replica $i exited; see $dir/r$i/hawser.log" >&2
            return 1
        fi
        if ((SECONDS > deadline)); then echo "replica $i not ready after 60 s; see $dir/r$i/hawser.log" >&2; return 1; fi
        sleep 0.2
    done
    echo "http://127.0.0.1:$port"
}

case "$cmd" in
start)
    nats_base=${3:-4222}
    http_base=${4:-8080}
    grpc_base=${5:-}
    hawser=$("$root/scripts/hawser-path.sh" "$dir")
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    nats_urls=$("$root/scripts/nats-cluster.sh" start "$dir/nats" "$nats_base")
    servers=$(printf '"%s", ' $nats_urls)
    servers=${servers%, }
    if [[ ! -f "$dir/demo-party.key" ]]; then
        party=$("$hawser" party new --name "O=Demo Party, L=London, C=GB" --out "$dir/demo-party.key")
        grep '^publicKey:' <<<"$party" | cut -d' ' -f2 >"$dir/demo-party.pub"
    fi
    for i in 0 1 2; do
        mkdir -p "$dir/r$i"
        echo "$((http_base + i))" >"$dir/r$i/port"
        [[ -f "$dir/r$i/hawser.json" ]] && continue
        grpc=""
        if [[ -n "$grpc_base" ]]; then
            grpc=",
  \"grpc\": { \"host\": \"127.0.0.1\", \"port\": $((grpc_base + i)) }"
            echo "grpc://127.0.0.1:$((grpc_base + i))" >>"$dir/grpc-urls"
        fi
        if [[ $i == 0 ]]; then
            init=$("$hawser" notary init --dir "$dir/init" --port 0 --accept-any-party)
            sed -n 's/.*(public key \(.*\))$/\1/p' <<<"$init" >"$dir/notary.pub"
            mv "$dir/init/notary.key" "$dir/notary.key"
            rm -rf "$dir/init"
        fi
        # Every replica serves the one notary identity: the same key file.
        cp "$dir/notary.key" "$dir/r$i/notary.key"
        chmod 600 "$dir/r$i/notary.key"
        cat >"$dir/r$i/hawser.json" <<JSON
{
  "name": "O=Hawser Notary, L=London, C=GB",
  "keyFile": "notary.key",
  "dataDirectory": "data",
  "listen": { "host": "127.0.0.1", "port": $((http_base + i)) },
  "authorisedParties": [ { "name": "O=Demo Party, L=London, C=GB", "publicKey": "$(cat "$dir/demo-party.pub")" } ],
  "log": { "kind": "jetstream", "servers": [ $servers ], "stream": "HAWSER_NOTARY", "replicas": 3,
           "replicaId": "r$i", "members": ["r0", "r1", "r2"] }$grpc
}
JSON
    done
    for i in 0 1 2; do start_replica "$i" "$hawser"; done
    for i in 0 1 2; do wait_ready "$i"; done
    ;;
stop)
    for i in 0 1 2; do
        pidfile="$dir/r$i/hawser.pid"
        [[ -f "$pidfile" ]] || continue
        pid=$(cat "$pidfile")
        if running "$pid"; then
            kill -CONT "$pid" 2>/dev/null || true
            kill -TERM "$pid"
            for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
            running "$pid" && kill -KILL "$pid"
        fi
        rm -f "$pidfile"
    done
    "$root/scripts/nats-cluster.sh" stop "$dir/nats"
    ;;
kill)
    i=${3:?replica 0-2}
    kill -KILL "$(cat "$dir/r$i/hawser.pid")" && rm -f "$dir/r$i/hawser.pid"
    ;;
restart)
    replicas=("${@:3}")
    ((${#replicas[@]} > 0)) || usage
    hawser=$("$root/scripts/hawser-path.sh" "$dir")
    for i in "${replicas[@]}"; do start_replica "$i" "$hawser"; done
    for i in "${replicas[@]}"; do wait_ready "$i"; done
    ;;
*)
    usage
    ;;
esac
