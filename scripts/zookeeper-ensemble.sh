#!/usr/bin/env bash
# Starts or stops a 3-server ZooKeeper ensemble on loopback, for trying things by hand.
#
#   scripts/zookeeper-ensemble.sh start DIR   # prints the connect string when all three serve
#   scripts/zookeeper-ensemble.sh stop DIR
#   scripts/zookeeper-ensemble.sh status DIR
#
# Uses the Debian `zookeeper` package (jars in /usr/share/java) and a JDK. Each server gets
# DIR/zkN/{zoo.cfg,data/myid,server.log,pid}; ports are picked at random among free ones in 20000-31999
# (client, quorum and election ports, all on 127.0.0.1), or in PORTS=LOW-HIGH if set (at least 64
# ports). ZOOKEEPER_TICK_MS sets tickTime (200).
set -euo pipefail

command=${1:-}
dir=${2:-}
if [[ -z "$command" || -z "$dir" ]]; then
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
fi

classpath="/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
tick=${ZOOKEEPER_TICK_MS:-200}

port_is_free() {
    ! { (exec 3<>"/dev/tcp/127.0.0.1/$1"); } 2>/dev/null
}

# Below the kernel's ephemeral range (32768 and up) by default, where outgoing connections of other
# processes could take a port between the check and the server's bind.
ports=${PORTS:-20000-31999}
if ! [[ $ports =~ ^([0-9]{4,5})-([0-9]{4,5})$ ]] || ((BASH_REMATCH[1] < 1024 || BASH_REMATCH[2] > 65535 || BASH_REMATCH[2] - BASH_REMATCH[1] < 63)); then
    echo "PORTS must be LOW-HIGH, 1024 <= LOW, HIGH <= 65535, at least 64 ports: $ports" >&2
    exit 2
fi
ports_low=${BASH_REMATCH[1]} ports_span=$((BASH_REMATCH[2] - BASH_REMATCH[1] + 1))

pick_ports() {
    local -a picked=()
    while ((${#picked[@]} < 9)); do
        local port=$((ports_low + (RANDOM << 15 | RANDOM) % ports_span))
        [[ " ${picked[*]} " == *" $port "* ]] && continue
        port_is_free "$port" && picked+=("$port")
    done
    echo "${picked[@]}"
}

four_letter() { # port word
    { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && cat <&3); } 2>/dev/null
}

start() {
    if [[ -f "$dir/connect-string" ]]; then
        echo "already started in $dir (stop it first)" >&2
        exit 1
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    read -r -a ports <<<"$(pick_ports)"
    local servers="" connect=""
    for i in 1 2 3; do
        servers+="server.$i=127.0.0.1:${ports[$((3 * i - 2))]}:${ports[$((3 * i - 1))]}"$'\n'
        connect+="${connect:+,}127.0.0.1:${ports[$((3 * i - 3))]}"
    done
    for i in 1 2 3; do
        local home="$dir/zk$i"
        mkdir -p "$home/data"
        echo "$i" >"$home/data/myid"
        cat >"$home/zoo.cfg" <<CFG
tickTime=$tick
initLimit=10
syncLimit=5
dataDir=$home/data
clientPort=${ports[$((3 * i - 3))]}
clientPortAddress=127.0.0.1
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=*
$servers
CFG
        nohup java -Xmx256m -Djava.net.preferIPv4Stack=true -Dzookeeper.jmx.log4j.disable=true \
            -cp "$classpath" org.apache.zookeeper.server.quorum.QuorumPeerMain "$home/zoo.cfg" \
            >"$home/server.log" 2>&1 </dev/null &
        echo $! >"$home/pid"
    done
    echo "$connect" >"$dir/connect-string"

    local deadline=$((SECONDS + 60))
    for i in 1 2 3; do
        until four_letter "${ports[$((3 * i - 3))]}" srvr | grep -qE 'Mode: (leader|follower)'; do
            if ((SECONDS > deadline)); then
                echo "server $i did not join a quorum; see $dir/zk$i/server.log" >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    echo "$connect"
}

stop() {
    for i in 1 2 3; do
        local pidfile="$dir/zk$i/pid"
        [[ -f "$pidfile" ]] || continue
        local pid
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
    rm -f "$dir/connect-string"
}

status() {
    [[ -f "$dir/connect-string" ]] || { echo "not started"; exit 1; }
    IFS=, read -r -a addresses <"$dir/connect-string"
    for address in "${addresses[@]}"; do
        mode=$(four_letter "${address##*:}" srvr | grep Mode || echo "Mode: down")
        echo "$address $mode"
    done
}

case "$command" in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: $0 start|stop|status DIR" >&2; exit 2 ;;
esac
