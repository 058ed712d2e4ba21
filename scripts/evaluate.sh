#!/bin/sh
# The policy comparison the README's tables come from: every policy through the daemon's loop, on the
# four shipped scenarios and (when ../shared/traces is beside the clone) both shared traces, each on a
# host that gives the guests 1.0× and 1.5× their mean use. Usage: scripts/evaluate.sh [ARBITER] [OUTDIR]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-.build/release/arbiter}
out=${2:-.build/evaluation}
mkdir -p "$out"
[ -x "$bin" ] || swift build -c release --product arbiter
for s in default spikes hostile idle-fleet; do
    "$bin" simulate --scenario "$s" --compare --host-scale 1.0 1.5 > "$out/$s.txt"
done
for t in google2011 bitbrains-rnd-2013-9; do
    f=../shared/traces/$t/normalised.csv
    [ -f "$f" ] && "$bin" simulate --trace "$f" --vms 50 --compare --host-scale 1.0 1.5 > "$out/$t.txt"
done
cat "$out"/*.txt
