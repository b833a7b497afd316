#!/usr/bin/env bash
# Prints the hawser binary a set-up in <dir> runs: $HAWSER if set, else <dir>/hawser, a private
# copy of the release build (built into .build-release first if <dir> has none yet), so that the
# build may be relinked while the set-up runs. Used by scripts/notary-cluster.sh and
# scripts/network.sh.
#
#   scripts/hawser-path.sh <dir>
set -euo pipefail
dir=${1:?usage: scripts/hawser-path.sh <dir>}
if [[ -n "${HAWSER:-}" ]]; then echo "$HAWSER"; exit 0; fi
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -x "$dir/hawser" ]]; then
    (cd "$root" && swift build -c release --product hawser --scratch-path .build-release >&2)
    mkdir -p "$dir"
    cp "$root/.build-release/release/hawser" "$dir/hawser"
fi
echo "$(cd "$dir" && pwd)/hawser"
