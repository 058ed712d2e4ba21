#!/usr/bin/env bash
# The simulator beside real Xen: integration/xen's phase 1 and weights phase run on the simulated host
# (twin.toml, twin-weights.toml: the same guests, sizes, roles and policy), printed beside what the real
# run's decision database recorded for the same guests. SimulatorTwinTests fail when the simulator moves
# memory another way than check.sh requires of real Xen; this prints the figures for a reader.
# Usage: integration/xen/twin.sh [RESULTS]   (default: .build-xen/results, the last real run's)
set -uo pipefail
cd "$(dirname "$0")/../.."
RES=${1:-.build-xen/results}
DB=$RES/decisions.sqlite
BIN=.build/release/arbiter
[ -x "$BIN" ] || swift build -c release --product arbiter >/dev/null
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
sim() {   # sim FILE: per-guest min/max target and mean allocation, stall
    "$BIN" simulate --scenario "$1" --policy arbiter --guests | awk '/^arbiter:/ {on = 1; next} on && NF == 0 {on = 0} on && $1 != "guest"'
}
echo "simulated (integration/xen/twin.toml, phase 1): guest, stall s, mean allocation, min target, max target, end target"
sim integration/xen/twin.toml
echo "simulated (integration/xen/twin-weights.toml, weights): guest, stall s, mean allocation, min target, max target, end target"
sim integration/xen/twin-weights.toml
if [ ! -s "$DB" ] || ! command -v sqlite3 >/dev/null; then
    echo "real Xen: no decision database at $DB (run integration/xen/run.sh first)"; exit 0
fi
CUT=$(sed -n 's/.* phase 1 end .* unix=\([0-9]*\).*/\1/p' "$RES/events.log" | head -1); CUT=${CUT:-1e12}
WS=$(sed -n 's/.* weights sample start unix=\([0-9]*\).*/\1/p' "$RES/events.log"); WS=${WS:-0}
WE=$(sed -n 's/.* weights sample end unix=\([0-9]*\).*/\1/p' "$RES/events.log"); WE=${WE:-0}
echo "real Xen ($DB): guest, min target, max target, target at the end of phase 1 (MiB)"
for g in idle hungry silent hostile; do
    IFS='|' read -r lo hi last <<< "$(sqlite3 -batch -noheader "$DB" "SELECT min(a.target_kib), max(a.target_kib),
        (SELECT a2.target_kib FROM allocations a2 JOIN rounds r2 ON r2.id = a2.round_id JOIN domains d2 ON d2.id = a2.domain_id
         WHERE d2.name = '$g' AND r2.at < $CUT + 1 ORDER BY r2.at DESC LIMIT 1)
        FROM allocations a JOIN rounds r ON r.id = a.round_id JOIN domains d ON d.id = a.domain_id WHERE d.name = '$g' AND r.at < $CUT + 1")"
    [ -n "$lo" ] && echo "$g $(mib "$lo") $(mib "$hi") $(mib "$last")"
done
echo "real Xen, weights sample: guest, mean allocation (MiB)"
for g in heavy light; do
    m=$(sqlite3 -batch -noheader "$DB" "SELECT avg(a.actual_kib) FROM allocations a JOIN rounds r ON r.id = a.round_id
        JOIN domains d ON d.id = a.domain_id WHERE d.name = '$g' AND r.at >= $WS AND r.at <= $WE")
    [ -n "$m" ] && echo "$g $(mib "$m")"
done
