#!/usr/bin/env bash
# The checks of the end-to-end run, on the host, from what dom0 brought back in RESULTS: the decision
# database (the daemon's own record), xl list / xenstore samples and timestamped xenstore watches.
# Prints PASS/FAIL per check and a summary table; exits 0 only if every check passed.
# Usage: check.sh RESULTS
set -uo pipefail
RES=$1
HERE=$(cd "$(dirname "$0")" && pwd)
DB=$RES/decisions.sqlite
passed=0 failed=0
ok() { echo "PASS $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
q() { sqlite3 -batch -noheader "$DB" "$@"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

# Pacing from the run's config (defaults where it is silent), as the arbiter reads it.
cfg() { awk -F= -v k="$1" '$1 ~ "^"k" *$" {gsub(/[ "]/, "", $2); print $2}' "$HERE/arbiter.toml"; }
size_kib() { case $1 in *G) echo $(( ${1%G} * 1048576 )) ;; *M) echo $(( ${1%M} * 1024 )) ;; *) echo "$1" ;; esac; }
FRAC=$(cfg surplus_shrink_fraction_per_second); FRAC=${FRAC:-0.1}
MINRATE=$(size_kib "$(cfg min_shrink_per_second)"); [ -n "$MINRATE" ] || MINRATE=4096
MAXRATE=$(size_kib "$(cfg max_shrink_per_second)"); [ -n "$MAXRATE" ] || MAXRATE=524288
INTERVAL=$(cfg max_interval_seconds); INTERVAL=${INTERVAL:-10}
ABSMIN=$(size_kib "$(cfg absolute_min)"); [ -n "$ABSMIN" ] || ABSMIN=131072
RESERVE=$(size_kib "$(cfg host_reserve)"); [ -n "$RESERVE" ] || RESERVE=65536

[ -s "$DB" ] || { echo "FAIL no decision database in $RES"; exit 1; }
check "decision database intact" test "$(q 'PRAGMA integrity_check')" = ok
check "scenario reported no problem" sh -c "! grep PROBLEM '$RES/events.log'"
for n in 1 2; do
    check "daemon $n exited 0 on SIGTERM" grep -q "daemon $n stopped rc=0" "$RES/events.log"
done
check "two daemon lifetimes in the store (startup and shutdown rounds)" \
    test "$(q "SELECT count(*) FILTER (WHERE trigger = 'startup') || ' ' || count(*) FILTER (WHERE trigger = 'shutdown') FROM rounds")" = "2 2"
check "no push failed (libxl_set_memory_target)" test "$(q 'SELECT count(*) FROM allocations WHERE pushed = 0')" = 0
check "targets were pushed" test "$(q 'SELECT count(*) FROM allocations WHERE pushed = 1')" -gt 0
check "no floor violation: no target ever lowered below its floor or absolute_min" \
    test "$(q "SELECT count(*) FROM allocations WHERE target_kib < previous_target_kib AND (target_kib < floor_kib OR target_kib < $ABSMIN)")" = 0

boot() { awk -v n="$1" '$1 == n {print $4 * 1024}' "$RES/guests.txt"; }
dom() { echo "domain_id IN (SELECT id FROM domains WHERE name = '$1')"; }
# Rows of one guest in round order: at|previous|target|floor|status|reason
rows() { q "SELECT r.at, a.previous_target_kib, a.target_kib, a.floor_kib, a.report_status, a.reason
            FROM allocations a JOIN rounds r ON r.id = a.round_id WHERE a.$(dom "$1") ORDER BY r.id"; }
last_target() { q "SELECT a.target_kib FROM allocations a WHERE a.$(dom "$1") ORDER BY a.round_id DESC LIMIT 1"; }
min_target() { q "SELECT min(target_kib) FROM allocations WHERE $(dom "$1")"; }
max_target() { q "SELECT max(target_kib) FROM allocations WHERE $(dom "$1")"; }
# xl list's memory (MiB) of a guest in the last sample
xl_end() { awk -v n="$1" '$2 == n {m = $3} END {print m}' "$RES/xl-samples.txt"; }

# snapshot_every = 1: every round records every domain
for g in idle hungry silent hostile; do
    first=$(q "SELECT min(round_id) FROM allocations WHERE $(dom $g)")
    n=$(q "SELECT count(*) FROM allocations WHERE $(dom $g) AND reason != ''")
    check "$g: decided with a reason code in each of the $n rounds since it appeared" \
        test "$n" -gt 10 -a "$n" = "$(q "SELECT count(*) FROM rounds WHERE id >= ${first:-0}")"
done
check "every guest was seen through @introduceDomain by the running daemon" \
    test "$(q "SELECT count(DISTINCT name) FROM domains WHERE name IN ('idle','hungry','silent','hostile')")" = 4

# Alive: a guest squeezed into what it uses dies ("System is deadlocked on memory"), crashed state 'c'.
for g in idle hungry silent hostile; do
    st=$(awk -v n="$g" '$1 == n {print $5}' "$RES/xl-list-end.txt")
    check "$g: running at the end (xl list state '${st:-absent}')" sh -c "case '$st' in ''|*c*|*s*|*d*) exit 1 ;; esac"
done

# Pace: over any window, no guest's target fell faster than the configured shrink rate (at the
# boot size, the largest base it had), plus one interval of accrued allowance.
pace_violations() {
    local b rate
    b=$(boot "$1")
    rate=$(awk -v f="$FRAC" -v b="$b" -v lo="$MINRATE" -v hi="$MAXRATE" 'BEGIN {r = f * b; if (r < lo) r = lo; if (r > hi) r = hi; print r}')
    q "WITH t AS (SELECT r.at, a.target_kib AS v FROM allocations a JOIN rounds r ON r.id = a.round_id WHERE a.$(dom "$1"))
       SELECT count(*) FROM t x JOIN t y ON y.at > x.at WHERE x.v - y.v > $rate * (y.at - x.at + $INTERVAL) + 4"
}
for g in idle hungry silent hostile; do
    check "$g: never shrunk faster than the configured pace" test "$(pace_violations $g)" = 0
done

# idle
IB=$(boot idle)
check "idle: shrunk by at least 128 MiB (boot $(mib "$IB") MiB, end target $(mib "$(last_target idle)") MiB)" \
    test "$(last_target idle)" -le $(( IB - 131072 ))
check "idle: its target never below its floor" test "$(q "SELECT count(*) FROM allocations WHERE $(dom idle) AND target_kib < floor_kib")" = 0
check "idle: the balloon followed (xl list $(xl_end idle) MiB vs target $(mib "$(last_target idle)") MiB, within 16)" \
    awk -v m="$(xl_end idle)" -v t="$(last_target idle)" 'BEGIN {d = m - t / 1024; exit !(d < 16 && d > -16)}'

# hungry
HB=$(boot hungry)
FREE0=$(awk '$1 == "free_memory" {print $3 * 1024}' "$RES/xl-info-start.txt")
BOOTSUM=$(awk '{s += $4} END {print s * 1024}' "$RES/guests.txt")
SPARE=$(( FREE0 - BOOTSUM - RESERVE ))
GROWTH=$(( $(max_target hungry) - HB ))
HOG=$(sed -n 's/.*hungry hog complete: \(.*\) after \([0-9]*\) s/\1 took=\2/p' "$RES/events.log")
check "hungry: its working set grew to completion ($HOG)" test -n "$HOG"
BLOCKED=$(echo "$HOG" | sed -n 's/.*blocked=\([0-9]*\).*/\1/p')
check "hungry: waited for memory ${BLOCKED:-?} s in all, at most 180" test "${BLOCKED:-999}" -le 180
field() { tr ' ' '\n' < "$1" | sed -n "s/^$2=//p"; }
delta() { echo $(( $(field "$RES/hungry-report-last.txt" "$1") - $(field "$RES/hungry-report-first.txt" "$1") )); }
STALL=$(delta psi_some_total_us) MAJ=$(delta pgmajfault)
check "hungry: memory stall (PSI some) over the run $(awk -v u="$STALL" 'BEGIN {printf "%.2f", u / 1e6}') s, at most 10" test "$STALL" -le 10000000
check "hungry: $MAJ major faults over the run, at most 1000" test "$MAJ" -le 1000
check "hungry: grown by $(mib $GROWTH) MiB, more than the $(mib $SPARE) MiB that was spare after boot (the rest came from idle)" \
    test "$GROWTH" -gt "$SPARE"
check "hungry: the balloon followed (xl list $(xl_end hungry) MiB vs target $(mib "$(last_target hungry)") MiB, within 16)" \
    awk -v m="$(xl_end hungry)" -v t="$(last_target hungry)" 'BEGIN {d = m - t / 1024; exit !(d < 16 && d > -16)}'
check "hungry: idle gave back at least what hungry took beyond the spare memory" \
    test $(( IB - $(min_target idle) )) -ge $(( GROWTH - SPARE ))

# silent and hostile: held at their boot size throughout
for g in silent hostile; do
    check "$g: target held at its boot size in every round" \
        test "$(q "SELECT count(*) FROM allocations WHERE $(dom $g) AND target_kib != $(boot $g)")" = 0
    check "$g: xl list shows it at its boot size at the end" test "$(xl_end $g)" = $(( $(boot $g) / 1024 ))
done
check "silent: recorded as having no report" test "$(q "SELECT count(*) FROM allocations WHERE $(dom silent) AND report_status != 'none'")" = 0
REJ=$(q "SELECT count(*) FROM rejections WHERE $(dom hostile)")
CODES=$(q "SELECT count(DISTINCT code) FROM rejections WHERE $(dom hostile)")
check "hostile: $REJ reports rejected and recorded, $CODES distinct reason codes" test "$REJ" -ge 20 -a "$CODES" -ge 8
check "hostile: no other guest had a report rejected" test "$(q "SELECT count(*) FROM rejections WHERE NOT $(dom hostile)")" = 0
FIRSTREJ=$(q "SELECT min(at) FROM rejections")
check "others decided on fresh reports while hostile wrote garbage" \
    test "$(q "SELECT count(*) FROM allocations a JOIN rounds r ON r.id = a.round_id
               WHERE r.at > $FIRSTREJ AND a.report_status = 'fresh' AND a.target_kib != a.previous_target_kib")" -gt 0

# Restart: the second daemon picks up the targets it finds in xenstore, and moves on from there.
R2=$(q "SELECT id FROM rounds WHERE trigger = 'startup' ORDER BY id LIMIT 1 OFFSET 1")
restart_rows() {   # before_target|after_previous|after_target|gap_seconds
    q "SELECT b.target_kib, a.previous_target_kib, a.target_kib, ra.at - rb.at
       FROM (SELECT * FROM allocations WHERE $(dom "$1") AND round_id < $R2 ORDER BY round_id DESC LIMIT 1) b,
            (SELECT * FROM allocations WHERE $(dom "$1") AND round_id >= $R2 ORDER BY round_id LIMIT 1) a,
            rounds rb, rounds ra WHERE rb.id = b.round_id AND ra.id = a.round_id"
}
for g in idle hungry silent hostile; do
    IFS='|' read -r before prev after gap <<< "$(restart_rows $g)"
    check "restart: $g continues from $(mib "$before") MiB (read back $(mib "$prev"), first target $(mib "$after") after ${gap%.*} s)" \
        test "$prev" = "$before" -a "$after" -le "$before" -o "$g" = hungry -a "$prev" = "$before"
done

# Report-to-target latency: from the last report a guest wrote to each change of its memory/target
# (both seen by dom0 xenstore watches, stamped with dom0's clock).
latency() {
    awk 'FNR == 1 {f++} f == 1 {rep[++n] = $1; next}
         FNR > 1 && NF >= 3 {j = 0; for (i = 1; i <= n; i++) if (rep[i] <= $1) j = i; if (j) print $1 - rep[j]}' \
        "$RES/watch-$1-report.txt" "$RES/watch-$1-target.txt" | sort -n |
        awk '{v[NR] = $1} END {if (NR) printf "%d|%.2f|%.2f", NR, v[int((NR + 1) / 2)], v[NR]; else print "0|-|-"}'
}
for g in idle hungry; do
    IFS='|' read -r n med max <<< "$(latency $g)"
    check "$g: report-to-target latency observed over $n target changes: median ${med} s, max ${max} s" test "$n" -gt 0
done

echo
printf '%-8s %9s %9s %12s %10s %7s %10s %14s\n' guest boot_MiB end_MiB min_tgt_MiB floor_MiB rounds rejections latency_s
for g in idle hungry silent hostile; do
    IFS='|' read -r mt fl <<< "$(q "SELECT target_kib, floor_kib FROM allocations WHERE $(dom $g) ORDER BY target_kib, round_id LIMIT 1")"
    lat=-; case $g in idle|hungry) IFS='|' read -r n med max <<< "$(latency $g)"; lat="$med/$max" ;; esac
    printf '%-8s %9s %9s %12s %10s %7s %10s %14s\n' "$g" "$(mib "$(boot $g)")" "$(xl_end $g)" "$(mib "$mt")" "$(mib "$fl")" \
        "$(q "SELECT count(*) FROM allocations WHERE $(dom $g)")" "$(q "SELECT count(*) FROM rejections WHERE $(dom $g)")" "$lat"
done
echo "rounds: $(q 'SELECT count(*) FROM rounds')  latency: median/max seconds from a guest's report to its new memory/target"
echo
echo "reason codes recorded (rounds):"
for g in idle hungry silent hostile; do
    printf '  %-8s %s\n' "$g" "$(q "SELECT group_concat(reason || ' ' || n, ', ') FROM (SELECT reason, count(*) AS n FROM allocations
                                    WHERE $(dom $g) GROUP BY reason ORDER BY n DESC)")"
done
echo "rejection codes (hostile): $(q "SELECT group_concat(code || ' ' || n, ', ') FROM (SELECT code, count(*) AS n FROM rejections GROUP BY code ORDER BY n DESC)")"
echo
echo "checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
