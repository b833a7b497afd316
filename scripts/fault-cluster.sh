#!/usr/bin/env bash
# Runs the diverged-stream fault test (Tests/HawserNodeTests/DivergedStreamFaultTests.swift) on many
# seeds, one after another, and prints a line per seed: 3 nats-servers and 3 notary replicas on
# loopback, under load, through the fault sequence that diverged nats-server 2.9.10's stream and
# seeded variants of it, each checked against the clients' history.
#
#   scripts/fault-cluster.sh [FIRST-LAST]     seeds, default 1-20
#
# It runs the test from this source tree (swift build, swift test): a release binary alone is not
# enough.
#
# Environment: NATS_SERVER (default: scripts/nats-server-path.sh, the current pip-installed one);
# NATS_SERVER=/usr/sbin/nats-server runs Debian's 2.9.10.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-1-20}
NATS_SERVER=$(scripts/nats-server-path.sh)
export NATS_SERVER
echo "# $(date -u +%Y-%m-%dT%H:%MZ) nats-server $("$NATS_SERVER" --version), seeds $seeds, commit $(git rev-parse --short HEAD)"
swift build --build-tests >&2
first=${seeds%-*}
last=${seeds#*-}
failed=0
for seed in $(seq "$first" "$last"); do
    log=$(mktemp)
    start=$SECONDS
    if HAWSER_FAULT_SEEDS="$seed-$seed" swift test --skip-build --filter DivergedStreamFaultTests >"$log" 2>&1; then
        echo "seed $seed: passed in $((SECONDS - start)) s"
    else
        failed=$((failed + 1))
        echo "seed $seed: FAILED in $((SECONDS - start)) s; log kept in $log"
        grep -E '✘|recorded an issue' "$log" | head -5
        continue
    fi
    rm -f "$log"
done
echo "# $failed of the seeds $seeds failed"
[[ $failed == 0 ]]
