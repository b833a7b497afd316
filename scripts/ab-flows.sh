#!/usr/bin/env bash
# Interleaved A/B of two hawser release binaries on the open-loop flow benchmark (1,000 flows/s
# offered, 64 clients). This host's speed drifts by up to a factor of two over minutes, so one
# run of each proves nothing: runs alternate A, B, A, B, ... and the summary gives each side's
# median p50 and in how many pairs B was faster.
# Usage: scripts/ab-flows.sh OLD_BINARY NEW_BINARY [PAIRS]   (default 8 pairs of 3,000 flows)
set -euo pipefail
a=$1 b=$2 pairs=${3:-8}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
p50() { "$1" bench flows --clients 64 --rate 1000 --flows 3000 --warmup 300 2>/dev/null | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p'; }
echo "# $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for i in $(seq "$pairs"); do
    pa=$(p50 "$a") pb=$(p50 "$b")
    echo "pair $i: A $pa ms, B $pb ms"
    echo "$pa $pb" >> "$results"
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }
echo "median p50: A $(cut -d' ' -f1 "$results" | median) ms, B $(cut -d' ' -f2 "$results" | median) ms;" \
     "B faster in $(awk '$2 < $1' "$results" | wc -l) of $pairs pairs"
