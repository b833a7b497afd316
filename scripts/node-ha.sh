#!/usr/bin/env bash
# A highly available node on this machine, on loopback: a private PostgreSQL (the shared node
# database), a 3-server ZooKeeper ensemble (the election), a standalone notary, and two node
# processes A and B (A preferred) on the one database; in hot-hot, three workers A, B and C.
#
#   scripts/node-ha.sh start  DIR [hot-warm|hot-cold|hot-hot|workers]   start everything (default hot-warm); prints every address
#   scripts/node-ha.sh status DIR                       each member's role and epoch (hot-hot: the partitions each leads), each node's /health/ready
#   scripts/node-ha.sh kill   DIR A|B|C                 kill -9 that node's process
#   scripts/node-ha.sh pause  DIR A|B|C                 SIGSTOP it (a frozen machine); resume: SIGCONT
#   scripts/node-ha.sh resume DIR A|B|C
#   scripts/node-ha.sh start-node DIR A|B|C             start a killed node (hot-warm, hot-hot); in hot-cold, a killed watchdog (which starts its node)
#   scripts/node-ha.sh stop   DIR                       stop everything started in DIR, also after a half-done start
#
# hot-warm: both nodes run and stand in the election themselves; the standby answers 503 `standby`
# naming the active. hot-cold: two `hawser watchdog` processes stand instead (back-off 200 ms to
# 2 s), and only the winner's node runs. hot-hot: three workers, each standing in the election of
# every one of 16 partitions (hold-down 2 s), all serving; each runs the flows of the partitions it
# leads (docs/node.md, "Hot-hot"). workers: hot-hot split by roles (docs/node.md, "Roles"), flow
# workers A and B and an RPC worker C, which queues its starts for them. Ports are free ones picked at start
# (in 20000-31999, or in PORTS=LOW-HIGH if set, at least 64 ports; also the ensemble's); everything lives in
# DIR (logs: DIR/*.log, at LOG_LEVEL, default info). docs/node.md describes it.
# The hawser binary: $HAWSER if set, else .build-release/release/hawser, else .build/debug/hawser,
# else a release build made now; a copy goes to DIR/hawser (later commands on DIR use it).
# PostgreSQL 15 (/usr/lib/postgresql/15/bin; run as user postgres when started as root), Debian's
# zookeeper package and a JDK, jq and curl must be installed.
set -Eeuo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || usage
root=$(cd "$(dirname "$0")/.." && pwd)
pgbin=/usr/lib/postgresql/15/bin
election=node
partitions=16

# The node processes of the set-up in DIR.
ids() { if hot_hot; then echo A B C; else echo A B; fi; }
# Whether the set-up in DIR is hot-hot (with or without roles).
hot_hot() { [[ $(cat "$dir/mode" 2>/dev/null) == hot-hot || $(cat "$dir/mode" 2>/dev/null) == workers ]]; }

hawser_bin() {
    if [[ -n "${HAWSER:-}" ]]; then echo "$HAWSER"; return; fi
    if [[ ! -x "$dir/hawser" ]]; then
        local built=""
        for candidate in "$root/.build-release/release/hawser" "$root/.build/debug/hawser"; do
            if [[ -x "$candidate" ]]; then built=$candidate; break; fi
        done
        if [[ -z "$built" ]]; then
            (cd "$root" && swift build -c release --product hawser --scratch-path .build-release >&2)
            built="$root/.build-release/release/hawser"
        fi
        echo "using $built" >&2
        # A private copy: the build may be relinked while the set-up runs.
        cp "$built" "$dir/hawser"
    fi
    echo "$dir/hawser"
}

port_is_free() { ! { (exec 3<>"/dev/tcp/127.0.0.1/$1"); } 2>/dev/null; }

ports=${PORTS:-20000-31999}  # below the ephemeral range, as zookeeper-ensemble.sh
if ! [[ $ports =~ ^([0-9]{4,5})-([0-9]{4,5})$ ]] || ((BASH_REMATCH[1] < 1024 || BASH_REMATCH[2] > 65535 || BASH_REMATCH[2] - BASH_REMATCH[1] < 63)); then
    echo "PORTS must be LOW-HIGH, 1024 <= LOW, HIGH <= 65535, at least 64 ports: $ports" >&2
    exit 2
fi
ports_low=${BASH_REMATCH[1]} ports_span=$((BASH_REMATCH[2] - BASH_REMATCH[1] + 1))

free_port() {
    local port
    while true; do
        port=$((ports_low + (RANDOM << 15 | RANDOM) % ports_span))
        if port_is_free "$port" && ! grep -qx "$port" "$dir/ports" 2>/dev/null; then
            echo "$port" >>"$dir/ports"
            echo "$port"
            return
        fi
    done
}

# Runs a PostgreSQL program as postgres when we are root (the server refuses to run as root).
as_postgres() {
    if [[ $(id -u) == 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi
}

# Whether process $1 runs: a zombie does not (a killed process whose parent, in a container
# without an init that reaps, is slow to reap it).
running() { kill -0 "$1" 2>/dev/null && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; }
alive() { [[ -f "$1" ]] && running "$(cat "$1")"; }

# Closes every inherited descriptor but 0-2 (in a subshell that starts a daemon), so that the
# daemons hold nothing of their caller's: a caller that waits for a descriptor to close (as
# Foundation's Process does) would otherwise wait for them.
close_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-" || true; fi
    done 2>/dev/null
    return 0
}

# Stops the process in pid file $1: SIGCONT (it may be paused), SIGTERM, SIGKILL after 10 s.
stop_pid() {
    local pidfile=$1 pid
    [[ -f "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    if running "$pid"; then
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# Polls URL $1 until its /health/ready body says status $2 (60 s).
await_health() {
    local deadline=$((SECONDS + 60)) body=""
    until [[ "$body" == *"\"status\":\"$2\""* ]]; do
        if ((SECONDS > deadline)); then echo "$1 did not become $2 within 60 s (last answer: $body)" >&2; return 1; fi
        sleep 0.2
        body=$(curl -s --max-time 2 "$1/health/ready" || true)
    done
}

election_options() {
    echo --zookeeper "$(cat "$dir/zk/connect-string")" --zookeeper-credentials "$dir/zk.credentials" --election "$election"
}

node_url() { echo "http://127.0.0.1:$(cat "$dir/node/$1.port")"; }

start_postgres() {
    mkdir -p "$dir/pg"
    local port
    port=$(free_port)
    echo "$port" >"$dir/pg/port"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$dir/pg"
    as_postgres "$pgbin/initdb" -D "$dir/pg/data" -U hawser -A trust -E UTF8 >"$dir/pg/initdb.log" 2>&1
    (close_fds && as_postgres "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
        -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1" start >/dev/null)
    as_postgres "$pgbin/psql" -h "$dir/pg" -p "$port" -U hawser -d postgres -q -c "CREATE DATABASE hawser_node"
    echo "postgres://hawser@127.0.0.1:$port/hawser_node" >"$dir/pg/url"
}

start_notary() {
    local hawser=$1 port key
    port=$(free_port)
    key=$("$hawser" notary init --dir "$dir/notary" --port "$port" --accept-any-party | sed -n 's/.*(public key \(.*\))$/\1/p')
    [[ -n "$key" ]] || { echo "hawser notary init printed no public key" >&2; return 1; }
    echo "$key" >"$dir/notary/public-key"
    (close_fds && exec nohup "$hawser" notary run --config "$dir/notary/hawser.json" --log-level warning \
        >"$dir/notary.out" 2>"$dir/notary.log") &
    echo $! >"$dir/notary.pid"
    echo "http://127.0.0.1:$port" >"$dir/notary/url"
    local deadline=$((SECONDS + 60))
    until curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; do
        alive "$dir/notary.pid" || { echo "the notary exited; see $dir/notary.log" >&2; return 1; }
        ((SECONDS < deadline)) || { echo "the notary is not ready after 60 s; see $dir/notary.log" >&2; return 1; }
        sleep 0.2
    done
}

# Writes DIR/node (keys, RPC password) and A.json, B.json (and C.json) for mode $2.
configure_nodes() {
    local hawser=$1 mode=$2
    "$hawser" node init --dir "$dir/node" --port 0 --user admin \
        --notary-url "$(cat "$dir/notary/url")" --notary-key "$(cat "$dir/notary/public-key")" >"$dir/node-init.txt" 2>&1 \
        || { cat "$dir/node-init.txt" >&2; return 1; }
    for id in $(ids); do
        local port
        port=$(free_port)
        echo "$port" >"$dir/node/$id.port"
        jq --arg id "$id" --argjson port "$port" --arg url "http://127.0.0.1:$port" --arg db "$(cat "$dir/pg/url")" \
            --arg mode "$mode" --arg zk "$(cat "$dir/zk/connect-string")" --arg election "$election" --argjson partitions "$partitions" '
            .listen.port = $port | .dataDirectory = "data-" + $id
            | .database = {kind: "postgres", url: $db}
            | .ha = (if $mode == "hot-warm"
                     then {mode: $mode, id: $id, advertise: [$url],
                           election: {zookeeper: $zk, zookeeperCredentials: "../zk.credentials", election: $election}}
                     elif $mode == "hot-hot" or $mode == "workers"
                     then {mode: "hot-hot", id: $id, advertise: [$url], partitions: $partitions,
                           election: {zookeeper: $zk, zookeeperCredentials: "../zk.credentials", election: $election, holdDownMs: 2000}}
                          + (if $mode == "workers" then {roles: (if $id == "C" then ["rpc"] else ["flow"] end)} else {} end)
                     else {mode: $mode} end)' "$dir/node/node.json" >"$dir/node/$id.json"
    done
}

# Starts node $1 (hot-warm, hot-hot) or its watchdog (hot-cold), in the background.
start_member() {
    local id=$1 hawser mode
    hawser=$(hawser_bin)
    mode=$(cat "$dir/mode")
    if alive "$dir/$id.pid"; then echo "$id is already running (pid $(cat "$dir/$id.pid"))" >&2; return 1; fi
    if [[ $mode != hot-cold ]]; then
        (close_fds && exec nohup "$hawser" node run --config "$dir/node/$id.json" --log-level "${LOG_LEVEL:-info}" \
            >>"$dir/$id.out" 2>>"$dir/$id.log") &
    else
        local url
        url=$(node_url "$id")
        # shellcheck disable=SC2046
        (close_fds && exec nohup "$hawser" watchdog --id "$id" $(election_options) --advertise "$url" --health "$url/health/ready" \
            --backoff-initial-ms 200 --backoff-max-ms 2000 --log-level "${LOG_LEVEL:-info}" \
            -- "$hawser" node run --config "$dir/node/$id.json" --log-level "${LOG_LEVEL:-info}" \
            >>"$dir/$id.out" 2>>"$dir/$id.log") &
    fi
    echo $! >"$dir/$id.pid"
}

# The pid of node $1's process: the node itself in hot-warm and hot-hot, the watchdog's current child in hot-cold.
node_pid() {
    local id=$1
    alive "$dir/$id.pid" || { echo "$id is not running" >&2; return 1; }
    if [[ $(cat "$dir/mode") != hot-cold ]]; then cat "$dir/$id.pid"; return; fi
    local child
    child=$(grep '"event":"child-started"' "$dir/$id.out" | tail -1 | jq -r .pid)
    if [[ -z "$child" ]] || ! running "$child"; then echo "$id's watchdog runs no node now" >&2; return 1; fi
    echo "$child"
}

start() {
    local mode=${1:-hot-warm}
    [[ $mode == hot-warm || $mode == hot-cold || $mode == hot-hot || $mode == workers ]] || usage
    if [[ -f "$dir/mode" ]]; then echo "$dir holds a set-up already: stop it, or use another DIR" >&2; exit 1; fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    echo "$mode" >"$dir/mode"
    trap 'echo "start failed: stopping what was started (logs stay in $dir)" >&2; stop' ERR
    # $HAWSER is copied too: this set-up runs the copy, and later commands on DIR without HAWSER use it.
    if [[ -n "${HAWSER:-}" ]]; then
        [[ "$HAWSER" -ef "$dir/hawser" ]] || cp "$HAWSER" "$dir/hawser"
        HAWSER=$dir/hawser
    fi
    local hawser
    hawser=$(hawser_bin)
    start_postgres
    (close_fds && ZOOKEEPER_TICK_MS=${ZOOKEEPER_TICK_MS:-200} exec "$root/scripts/zookeeper-ensemble.sh" start "$dir/zk" >/dev/null)
    (umask 077 && echo "hawser:$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$dir/zk.credentials")
    start_notary "$hawser"
    configure_nodes "$hawser" "$mode"
    local a b
    a=$(node_url A)
    b=$(node_url B)
    start_member A
    await_health "$a" ready
    start_member B
    if [[ $mode == hot-warm ]]; then await_health "$b" standby; fi
    if hot_hot; then
        # Each worker serves once the balancer (A, partition 0's leader) has moved it its share
        # (an RPC worker, C in `workers`, as soon as it listens).
        start_member C
        await_health "$b" ready
        await_health "$(node_url C)" ready
    else
        # shellcheck disable=SC2046
        "$hawser" admin prefer A $(election_options) >/dev/null
    fi
    trap - ERR
    local nodes="" urls="" id note
    for id in $(ids); do
        note=""
        if ! hot_hot && [[ $id == A ]]; then note=" (preferred)"; fi
        if [[ $mode == workers ]]; then note=$([[ $id == C ]] && echo " (RPC worker: send clients here)" || echo " (flow worker)"); fi
        nodes+="node $id:       $(node_url "$id")$note   config $dir/node/$id.json"$'\n'
        urls+="${urls:+,}$(node_url "$id")"
    done
    cat <<EOF
mode:         $mode
${nodes%$'\n'}
RPC login:    user admin, password in $dir/node/rpc-password
PostgreSQL:   $(cat "$dir/pg/url")
ZooKeeper:    $(cat "$dir/zk/connect-string")  (election "$election", digest credentials in $dir/zk.credentials)
notary:       $(cat "$dir/notary/url")  (public key $(cat "$dir/notary/public-key"))
try:          HAWSER_NODE=$urls HAWSER_PASSWORD=\$(cat $dir/node/rpc-password) \\
                $hawser flow start IssueTokens '{"owner":"O=Alice","amount":10}' --wait
              $0 status $dir
EOF
}

status() {
    local hawser
    hawser=$(hawser_bin)
    [[ -f "$dir/mode" ]] || { echo "nothing started in $dir" >&2; exit 1; }
    echo "mode: $(cat "$dir/mode")"
    if hot_hot; then
        # Each worker's partitions and their lag (`hawser node status`, docs/node.md "Hot-hot").
        "$hawser" node status --config "$dir/node/A.json" | jq -r '
            . as $s | .workers | sort_by(.id)[] | . as $w | ($s.partition | map(select(.leader == $w.id))) as $p
            | "member \(.id): leads \(.leads | length) partitions \(.leads | map(tostring) | join(","))"
              + " unfinished \($p | map(.unfinished) | add // 0) oldest-wait-ms \($p | map(.oldestWaitMs // 0) | max // 0)"'
    else
        # shellcheck disable=SC2046
        "$hawser" admin status $(election_options) \
            | jq -r '.members | sort_by(.id)[] | "member \(.id): \(.role) epoch \(.epoch // "-") healthy \(.healthy) \(.addresses | join(" "))"'
    fi
    for id in $(ids); do
        local url answer
        url=$(node_url "$id")
        answer=$(curl -s --max-time 2 "$url/health/ready" || true)
        echo "node $id: $url health/ready ${answer:-no answer}"
    done
}

stop() {
    trap - ERR
    set +e
    for id in A B C; do stop_pid "$dir/$id.pid"; done
    stop_pid "$dir/notary.pid"
    [[ -d "$dir/zk" ]] && "$root/scripts/zookeeper-ensemble.sh" stop "$dir/zk"
    if [[ -f "$dir/pg/data/postmaster.pid" ]]; then
        as_postgres "$pgbin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null \
            || kill -KILL "$(head -1 "$dir/pg/data/postmaster.pid")" 2>/dev/null
    fi
    set -e
}

signal() {
    local id=${1:-} sig=$2 pid
    [[ " $(ids) " == *" $id "* ]] || usage
    pid=$(node_pid "$id")
    kill "-$sig" "$pid"
    # A kill returns once the process is gone, so that start-node right after it finds it gone.
    if [[ $sig == KILL ]]; then
        for _ in $(seq 200); do running "$pid" || return 0; sleep 0.05; done
        echo "$id (pid $pid) still runs 10 s after kill -9" >&2
        return 1
    fi
}

case "$cmd" in
start) start "${3:-hot-warm}" ;;
status) status ;;
kill) signal "${3:-}" KILL ;;
pause) signal "${3:-}" STOP ;;
resume) signal "${3:-}" CONT ;;
start-node)
    id=${3:-}
    [[ -n $id && " $(ids) " == *" $id "* ]] || usage
    # In hot-cold the watchdog restarts its node itself; start-node starts a watchdog that is gone.
    if [[ $(cat "$dir/mode") == hot-cold ]] && alive "$dir/$id.pid"; then
        echo "in hot-cold $id's watchdog (pid $(cat "$dir/$id.pid")) restarts its node itself" >&2
        exit 1
    fi
    start_member "$id"
    ;;
stop) stop ;;
*) usage ;;
esac
