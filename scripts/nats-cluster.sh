#!/usr/bin/env bash
# Start or stop a 3-server NATS JetStream cluster on loopback (127.0.0.1 only).
#
#   scripts/nats-cluster.sh start <dir> [base-port]   start servers (those not running), print the client URLs
#   scripts/nats-cluster.sh stop  <dir>               stop the servers started in <dir>
#   scripts/nats-cluster.sh urls  <dir>               print the client URLs again
#
# <dir> holds the configuration, JetStream data, logs and pid files of the three servers.
# Client ports are base-port, +1, +2 (default 4222); route ports are base-port+100, +101, +102;
# monitoring (HTTP) ports are base-port+200, +201, +202.
# `start` waits (at most 30 s) until every server accepts clients and JetStream has a meta leader.
# Environment: NATS_SERVER (default: scripts/nats-server-path.sh, the pip-installed current
# server first); SYNC_INTERVAL (e.g. `always`: JetStream fsyncs every write before acknowledging
# it; nats-server 2.10 or later; docs/cluster.md, "What acknowledged means").
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || usage
base=${3:-4222}
server_bin=$("$(dirname "$0")/nats-server-path.sh" 2>/dev/null || echo nats-server)
sync_line=""
[[ -n "${SYNC_INTERVAL:-}" ]] && sync_line="  sync_interval: \"$SYNC_INTERVAL\""

urls() {
    for i in 0 1 2; do
        [[ -f "$dir/n$((i + 1)).port" ]] && echo "nats://127.0.0.1:$(cat "$dir/n$((i + 1)).port")"
    done
    return 0
}

# True once the server on port $1 answers INFO, is routed to its peers, and JetStream is clustered.
ready() {
    local port=$1 monitor=$2
    # The monitoring endpoint reports JetStream's meta leader once one is elected.
    local body
    body=$( (exec 3<>"/dev/tcp/127.0.0.1/$monitor" && printf 'GET /jsz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && timeout 2 cat <&3) 2>/dev/null) || return 1
    grep -q '"leader": *"[^"]' <<<"$body" || return 1
    local line
    line=$( (exec 4<>"/dev/tcp/127.0.0.1/$port" && read -r -t 2 l <&4 && echo "$l") 2>/dev/null) || return 1
    [[ $line == INFO* ]]
}

case "$cmd" in
start)
    [[ -x "$server_bin" ]] || { echo "nats-server not found (set NATS_SERVER)" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    routes=""
    for i in 0 1 2; do routes+="\"nats-route://127.0.0.1:$((base + 100 + i))\", "; done
    routes=${routes%, }
    for i in 0 1 2; do
        name="n$((i + 1))"
        # A server still running is left as it is: `start` again brings back the ones that died.
        if [[ -f "$dir/$name.pid" ]] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
            echo "$name already running (pid $(cat "$dir/$name.pid"))" >&2
            continue
        fi
        mkdir -p "$dir/$name"
        cat >"$dir/$name.conf" <<CONF
server_name: "$name"
listen: "127.0.0.1:$((base + i))"
http: "127.0.0.1:$((base + 200 + i))"
pid_file: "$dir/$name.pid"
log_file: "$dir/$name.log"
jetstream {
  store_dir: "$dir/$name"
$sync_line
}
cluster {
  name: "hawser"
  listen: "127.0.0.1:$((base + 100 + i))"
  routes: [$routes]
}
CONF
        echo "$((base + i))" >"$dir/$name.port"
        nohup "$server_bin" -c "$dir/$name.conf" >/dev/null 2>&1 &
    done
    deadline=$((SECONDS + 30))
    for i in 0 1 2; do
        until ready "$((base + i))" "$((base + 200 + i))"; do
            if ((SECONDS > deadline)); then
                echo "n$((i + 1)) not ready after 30 s; see $dir/n$((i + 1)).log" >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    urls
    ;;
stop)
    for i in 1 2 3; do
        pidfile="$dir/n$i.pid"
        [[ -f "$pidfile" ]] || continue
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
        rm -f "$pidfile"
    done
    ;;
urls)
    urls
    ;;
*)
    usage
    ;;
esac
