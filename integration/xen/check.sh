#!/usr/bin/env bash
# The checks of the end-to-end run, on the host, from what dom0 brought back in RESULTS: the decision
# database (the daemon's own record), xl list / xenstore samples, timestamped xenstore watches, the
# daemon's logs and what the scenario recorded of its VM lifecycle and weights phases.
# Prints PASS/FAIL per check and two summary tables; exits 0 only if every check passed.
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
# Phase 1 (the policy) ends when hungry's working set is complete and settled: the four guests' "end"
# is that moment (the lifecycle and weights phases destroy them afterwards). CUT: its Unix second;
# P1: allocation rows of rounds up to it; CUT_UP: its dom0 uptime, the clock of the xl samples.
CUT_LINE=$(grep -m1 ' phase 1 end ' "$RES/events.log" 2>/dev/null)
CUT=$(sed -n 's/.* unix=\([0-9]*\).*/\1/p' <<< "$CUT_LINE"); CUT=${CUT:-1e12}
CUT_UP=$(awk '{print $2}' <<< "$CUT_LINE"); CUT_UP=${CUT_UP:-1e12}
P1="round_id IN (SELECT id FROM rounds WHERE at < $CUT + 1)"
# Phase 4 (flood): flood.txt, key=value lines written by the scenario. While the flood rewrote web3's
# report with an older line than its reporter's newest, the daemon may reject web3's reports
# (sequence-regression): rejections of web3 from the writers' start to 10 s after their stop are the flood's.
FLOOD=$RES/flood.txt
fl() { sed -n "s/^$1=//p" "$FLOOD" 2>/dev/null | tail -1; }
FW0=$(fl writers_start); FW0=${FW0:-0}
FW1=$(fl writers_stop); FW1=${FW1:-0}
FLOODREJ="$(echo "domain_id IN (SELECT id FROM domains WHERE name = 'web3')") AND at >= $FW0 AND at <= $FW1 + 10"
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
# (up to phase 1's end)
last_target() { q "SELECT a.target_kib FROM allocations a WHERE a.$(dom "$1") AND a.$P1 ORDER BY a.round_id DESC LIMIT 1"; }
min_target() { q "SELECT min(target_kib) FROM allocations WHERE $(dom "$1") AND $P1"; }
max_target() { q "SELECT max(target_kib) FROM allocations WHERE $(dom "$1") AND $P1"; }
# xl list's memory (MiB) of a guest in the last sample of phase 1
xl_end() { awk -v n="$1" -v c="$CUT_UP" '$2 == n && $1 <= c + 0 {m = $3} END {print m}' "$RES/xl-samples.txt"; }
# The balloon followed: phase 1's last xl sample is within 16 MiB of the last target, or of the target in
# force 3 s before phase 1 ended (CUT is the end's whole second and P1 reaches a second past it: a target
# pushed in the last seconds, e.g. a lasting shortfall's grow, is not reached by that sample yet; samples come every ~2.3 s).
settled_target() { q "SELECT a.target_kib FROM allocations a JOIN rounds r ON r.id = a.round_id WHERE a.$(dom "$1") AND r.at < $CUT - 3 ORDER BY a.round_id DESC LIMIT 1"; }
followed() { awk -v m="$(xl_end "$1")" -v t="$(last_target "$1")" -v s="$(settled_target "$1")" \
    'BEGIN {d = m - t / 1024; e = m - s / 1024; exit !((d < 16 && d > -16) || (s != "" && e < 16 && e > -16))}'; }

# snapshot_every = 1: every round records every domain (phase 1's rounds)
for g in idle hungry silent hostile; do
    first=$(q "SELECT min(round_id) FROM allocations WHERE $(dom $g)")
    n=$(q "SELECT count(*) FROM allocations WHERE $(dom $g) AND reason != '' AND $P1")
    check "$g: decided with a reason code in each of the $n rounds from its first to phase 1's end" \
        test "$n" -gt 10 -a "$n" = "$(q "SELECT count(*) FROM rounds WHERE id >= ${first:-0} AND at < $CUT + 1")"
done
check "every guest was seen through @introduceDomain by the running daemon" \
    test "$(q "SELECT count(DISTINCT name) FROM domains WHERE name IN ('idle','hungry','silent','hostile')")" = 4

# Alive: a guest squeezed into what it uses dies ("System is deadlocked on memory"), crashed state 'c'.
for g in idle hungry silent hostile; do
    st=$(awk -v n="$g" '$1 == n {print $5}' "$RES/xl-list-end.txt")
    check "$g: running at phase 1's end (xl list state '${st:-absent}')" sh -c "case '$st' in ''|*c*|*s*|*d*) exit 1 ;; esac"
done

# Pace: over any window, no guest's target fell faster than the configured shrink rate (at the
# boot size, the largest base it had), plus one interval of accrued allowance.
pace_violations() {
    local b rate
    b=$(boot "$1")
    rate=$(awk -v f="$FRAC" -v b="$b" -v lo="$MINRATE" -v hi="$MAXRATE" 'BEGIN {r = f * b; if (r < lo) r = lo; if (r > hi) r = hi; print r}')
    q "WITH t AS (SELECT r.at, a.target_kib AS v FROM allocations a JOIN rounds r ON r.id = a.round_id WHERE a.$(dom "$1") AND r.at < $CUT + 1)
       SELECT count(*) FROM t x JOIN t y ON y.at > x.at WHERE x.v - y.v > $rate * (y.at - x.at + $INTERVAL) + 4"
}
for g in idle hungry silent hostile; do
    check "$g: never shrunk faster than the configured pace (phase 1)" test "$(pace_violations $g)" = 0
done

# idle
IB=$(boot idle)
check "idle: shrunk by at least 128 MiB (boot $(mib "$IB") MiB, end target $(mib "$(last_target idle)") MiB)" \
    test "$(last_target idle)" -le $(( IB - 131072 ))
check "idle: its target never below its floor" test "$(q "SELECT count(*) FROM allocations WHERE $(dom idle) AND target_kib < floor_kib")" = 0
check "idle: the balloon followed (xl list $(xl_end idle) MiB vs target $(mib "$(last_target idle)") MiB, 3 s before the end $(mib "$(settled_target idle)"), within 16)" \
    followed idle

# hungry
HB=$(boot hungry)
FREE0=$(awk '$1 == "free_memory" {print $3 * 1024}' "$RES/xl-info-start.txt")
BOOTSUM=$(awk '$1 ~ /^(idle|hungry|silent|hostile)$/ {s += $4} END {print s * 1024}' "$RES/guests.txt")
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
check "hungry: the balloon followed (xl list $(xl_end hungry) MiB vs target $(mib "$(last_target hungry)") MiB, 3 s before the end $(mib "$(settled_target hungry)"), within 16)" \
    followed hungry
check "hungry: idle gave back at least what hungry took beyond the spare memory" \
    test $(( IB - $(min_target idle) )) -ge $(( GROWTH - SPARE ))

# silent and hostile: held at their boot size throughout (every round of their lives, phase 2's too)
for g in silent hostile; do
    check "$g: target held at its boot size in every round" \
        test "$(q "SELECT count(*) FROM allocations WHERE $(dom $g) AND target_kib != $(boot $g)")" = 0
    check "$g: xl list shows it at its boot size at phase 1's end" test "$(xl_end $g)" = $(( $(boot $g) / 1024 ))
done
check "silent: recorded as having no report" test "$(q "SELECT count(*) FROM allocations WHERE $(dom silent) AND report_status != 'none'")" = 0
REJ=$(q "SELECT count(*) FROM rejections WHERE $(dom hostile)")
CODES=$(q "SELECT count(DISTINCT code) FROM rejections WHERE $(dom hostile)")
check "hostile: $REJ reports rejected and recorded, $CODES distinct reason codes" test "$REJ" -ge 20 -a "$CODES" -ge 8
check "hostile: no other guest had a report rejected (the flood's rejections of web3 aside: $(q "SELECT count(*) FROM rejections WHERE $FLOODREJ"))" \
    test "$(q "SELECT count(*) FROM rejections WHERE NOT $(dom hostile) AND NOT ($FLOODREJ)")" = 0
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
        awk '{v[NR] = $1} END {p = int(NR * 0.99); if (p < NR * 0.99) p++
                               if (NR) printf "%d|%.2f|%.2f|%.2f", NR, v[int((NR + 1) / 2)], v[p], v[NR]; else print "0|-|-|-"}'
}
for g in idle hungry; do
    IFS='|' read -r n med p99 max <<< "$(latency $g)"
    check "$g: report-to-target latency observed over $n target changes: median ${med} s, p99 ${p99} s, max ${max} s" test "$n" -gt 0
done
# The daemon's own measure, logged at each stop: every written report's wait from its watch event to the
# round that read it (printed, not judged: TCG's timing varies).
for f in "$RES"/arbiter-*.log; do
    w=$(grep "arbiter stopped" "$f" 2>/dev/null | tail -1 | grep -o 'report_wait[a-z0-9_]*=[0-9-]*' | tr '\n' ' ')
    if [ -n "$w" ]; then echo "report waits, $(basename "$f"): $w"; fi
    l=$(grep "report waits by domain" "$f" 2>/dev/null | tail -1 | sed -n 's/.*longest=\(.*\) \[Arbiter\].*/\1/p')
    if [ -n "$l" ]; then echo "  longest by domain: $l"; fi
    r=$(grep "round steps" "$f" 2>/dev/null | tail -1 | sed -n 's/.*arbiter: \(.*\) \[Arbiter\] round steps.*/\1/p')
    if [ -n "$r" ]; then echo "  round steps, mean/max ms: $r"; fi
    d=$(grep "domain facts" "$f" 2>/dev/null | tail -1 | sed -n 's/.*arbiter: \(.*\) \[[A-Za-z]*\] domain facts.*/\1/p')
    if [ -n "$d" ]; then echo "  domain facts (name, static-max, target) between rounds: $d"; fi
    x=$(grep "xen calls" "$f" 2>/dev/null | tail -1 | sed -n 's/.*arbiter: \(.*\) \[[A-Za-z]*\] xen calls.*/\1/p')
    if [ -n "$x" ]; then echo "  calls into Xen, count/mean/max ms: $x"; fi
done

# --- Phase 2: VM lifecycle ---------------------------------------------------------------------------
# lifecycle.txt: EVENT ok|fail SECONDS DETAIL; lifetimes.txt: EVENT NAME OLD_DOMID|- NEW_DOMID|- UNIX;
# list-EVENT.txt / list-all-EVENT.txt: `arbiter list` / `arbiter list --all` right after EVENT.
LC=$RES/lifecycle.txt LT=$RES/lifetimes.txt
EVENTS="hostile-destroy web2-start web-start silent-destroy web-restart web2-reboot web-save web-restore web3-plain-create web3-start"
declare -A WHAT=(
    [hostile-destroy]="xl destroy hostile (room for two more guests)"
    [web2-start]="web2 started through arbiter reserve 136M --for web2 --wait, then xl create"
    [web-start]="web started through arbiter start while memory was lent out"
    [silent-destroy]="xl destroy silent"
    [web-restart]="web restarted by name: xl destroy, xl create at once"
    [web2-reboot]="web2 rebooted by xl reboot (xl's monitor built the new domain)"
    [web-save]="xl save web"
    [web-restore]="xl restore web after arbiter reserve --for web --wait"
    [web3-plain-create]="a plain xl create of web3 while heavy and light hold the host fails (Out of memory)"
    [web3-start]="web3 started through arbiter start while heavy and light hold the host"
)
ENDS=" hostile-destroy silent-destroy web-restart web2-reboot web-save "      # a lifetime ends
BEGINS=" web2-start web-start web-restart web2-reboot web-restore web3-start "   # a lifetime begins
ev_field() { awk -v e="$1" -v f="$2" '$1 == e {v = $f} END {print v}' "$LC" 2>/dev/null; }
ev_detail() { awk -v e="$1" '$1 == e {$1 = $2 = $3 = ""; d = $0} END {sub(/^ +/, "", d); print d}' "$LC" 2>/dev/null; }
for e in $EVENTS; do
    res=$(ev_field $e 2) s=$(ev_field $e 3)
    check "lifecycle: ${WHAT[$e]}: ${res:-not recorded}${s:+ in $s s} ($(ev_detail $e))" test "$res" = ok
done
for n in web web3; do
    check "lifecycle: arbiter start printed 'started $n in ...'" grep -qs "^started $n in " "$RES/start-$n.txt"
done
# The domids arbiter list showed for NAME right after EVENT, space-separated.
list_ids() { awk -v n="$2" 'NR > 1 && $1 == n {print $2}' "$RES/list-$1.txt" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'; }
for e in $EVENTS; do
    read -r _ name old new _ <<< "$(awk -v e="$e" '$1 == e' "$LT" 2>/dev/null | tail -1)"
    if [ -z "$name" ]; then bad "$e: no lifetime recorded"; continue; fi
    if [[ $ENDS == *" $e "* ]]; then
        n=none; [ "$old" = - ] || n=$(q "SELECT count(*) FROM domains WHERE name = '$name' AND domid = $old AND released IS NOT NULL")
        check "$e: $name's old lifetime (domid $old) released in the store" test "$n" = 1
    fi
    if [[ $BEGINS == *" $e "* ]]; then
        n=none; [ "$new" = - ] || n=$(q "SELECT count(*) FROM domains WHERE name = '$name' AND domid = $new")
        check "$e: $name's new lifetime (domid $new) in the store" test "$n" = 1
    fi
    want=; [ "$new" = - ] || want=$new
    got=$(list_ids "$e" "$name")
    if [ -n "$want" ]; then shows="only as domid $want"; else shows="no more"; fi
    check "$e: arbiter list then shows $name $shows (it showed '${got}')" test "$got" = "$want"
done
DUPS=$(for f in "$RES"/list-*.txt; do case $f in */list-all-*|*'*'*) continue ;; esac
           awk -v f="${f##*/}" 'NR > 1 {c[$1]++} END {for (n in c) if (c[n] > 1) printf "%s in %s ", n, f}' "$f"; done)
NLISTS=$(ls "$RES"/list-*.txt 2>/dev/null | grep -vc '/list-all-')
check "arbiter list showed live domains only, one row per name, in all $NLISTS snapshots (duplicates: ${DUPS:-none})" \
    test -z "$DUPS" -a "$NLISTS" -ge 8
ALLWEB=$(awk 'NR > 1 && $1 == "web"' "$RES/list-all-web-restore.txt" 2>/dev/null | wc -l)
ALLHOST=$(awk 'NR > 1 && $1 == "hostile"' "$RES/list-all-hostile-destroy.txt" 2>/dev/null | wc -l)
check "arbiter list --all shows released lifetimes too: $ALLWEB of web (3 by its restore), $ALLHOST of hostile" \
    test "$ALLWEB" -ge 3 -a "$ALLHOST" -ge 1
LOGS=$(ls "$RES"/arbiter-*.log 2>/dev/null)
alllogs() { [ -n "$LOGS" ] && cat $LOGS; }
RELLOG=$(alllogs | grep 'domain released' | grep -c 'domain=hostile')
check "the daemon logged hostile's release ($RELLOG 'domain released' lines for it)" test "$RELLOG" -ge 1
UNREL=$(q "SELECT group_concat(name || '/' || domid, ' ') FROM domains
           WHERE released IS NULL AND name IN ('idle', 'hungry', 'silent', 'hostile', 'web', 'web2')")
check "every destroyed, saved or rebooted domain's lifetime is released in the store (open: ${UNREL:-none})" test -z "$UNREL"
FREEWEB=$(cat "$RES/free-before-web.txt" 2>/dev/null)

# --- Phase 3: weights ----------------------------------------------------------------------------------
# heavy (weight 2) and light (weight 1), the same guest, contending; the memory above their static
# floors (absolute_min each) should split 2:1. Tolerance 1.5-2.7: the deadband (up to 5 % of a target)
# and the balloons' lag keep each a little off its share.
FLOOR_MIB=$((ABSMIN / 1024)) WLO=1.5 WHI=2.7
WS=$(sed -n 's/.* weights sample start unix=\([0-9]*\).*/\1/p' "$RES/events.log"); WS=${WS:-0}
WE=$(sed -n 's/.* weights sample end unix=\([0-9]*\).*/\1/p' "$RES/events.log"); WE=${WE:-0}
WIN="r.at >= $WS AND r.at < $WE + 1"
above() { awk -v h="$1" -v l="$2" -v f="$FLOOR_MIB" 'BEGIN {if (h != "" && l != "" && l - f > 0) printf "%.2f", (h - f) / (l - f); else print "-"}'; }
in_tol() { awk -v r="$1" -v lo="$WLO" -v hi="$WHI" 'BEGIN {exit !(r != "-" && r != "" && r + 0 >= lo && r + 0 <= hi)}'; }
read -r _ WSET _ WSETMSG <<< "$(awk '$1 == "set"' "$RES/weights.txt" 2>/dev/null)"
check "weights: arbiter set heavy --weight 2 accepted (${WSETMSG:-${WSET:-not run}})" test "$WSET" = ok
read -r XH XL XN <<< "$(awk '{h += $3; l += $4; n++} END {if (n) printf "%.0f %.0f %d", h / n, l / n, n}' "$RES/weights-samples.txt" 2>/dev/null)"
XR=$(above "$XH" "$XL")
check "weights: xl list over the 20 s sample: heavy ${XH:-?} MiB, light ${XL:-?} MiB; above the $FLOOR_MIB MiB floors $XR : 1 (2 : 1 within $WLO-$WHI)" \
    in_tol "$XR"
IFS='|' read -r SH SL SN <<< "$(q "SELECT printf('%.0f', avg(CASE WHEN d.name = 'heavy' THEN a.actual_kib END) / 1024.0),
                                         printf('%.0f', avg(CASE WHEN d.name = 'light' THEN a.actual_kib END) / 1024.0),
                                         count(DISTINCT a.round_id)
                                  FROM allocations a JOIN rounds r ON r.id = a.round_id JOIN domains d ON d.id = a.domain_id
                                  WHERE $WIN AND d.name IN ('heavy', 'light')")"
SR=$(above "$SH" "$SL")
check "weights: the store's actual_kib over $SN rounds of the sample: heavy ${SH:-?} MiB, light ${SL:-?} MiB; above the floors $SR : 1 (within $WLO-$WHI)" \
    in_tol "$SR"
IFS='|' read -r H2 HN L1 LN <<< "$(q "SELECT count(*) FILTER (WHERE d.name = 'heavy' AND a.weight = 2), count(*) FILTER (WHERE d.name = 'heavy'),
                                            count(*) FILTER (WHERE d.name = 'light' AND a.weight = 1), count(*) FILTER (WHERE d.name = 'light')
                                     FROM allocations a JOIN rounds r ON r.id = a.round_id JOIN domains d ON d.id = a.domain_id WHERE $WIN")"
check "weights: decided at weight 2 for heavy in $H2 of its $HN rounds of the sample, at 1 for light in $L1 of $LN" \
    test "${HN:-0}" -gt 0 -a "$H2" = "$HN" -a "${LN:-0}" -gt 0 -a "$L1" = "$LN"
IFS='|' read -r CONT ROUNDS <<< "$(q "SELECT count(*) FILTER (WHERE phase = 'contended'), count(*) FROM rounds r WHERE $WIN")"
check "weights: the host was contended in $CONT of the sample's $ROUNDS rounds (at least half)" \
    test "${ROUNDS:-0}" -gt 0 -a $(( ${CONT:-0} * 2 )) -ge "${ROUNDS:-0}"
for g in heavy light; do
    h=$(cat "$RES/hog-$g.txt" 2>/dev/null)
    check "weights: $g's working set still growing, never complete ($h)" grep -q 'done=0' <<< "$h"
    st=$(awk -v n="$g" '$1 == n {print $5}' "$RES/xl-list-final.txt" 2>/dev/null)
    check "weights: $g running at the end (xl list state '${st:-absent}')" sh -c "case '$st' in ''|*c*|*s*|*d*) exit 1 ;; esac"
done

# --- Phase 4: flood ------------------------------------------------------------------------------------
# Timing under TCG varies: the CPU figures and rates are printed, never judged. Judged: the flood ran,
# the daemon lived through it, rounds went on during it and decided heavy and light, and no round was lost.
FS=$(fl flood_start); FS=${FS:-0}
FE=$(fl flood_end); FE=${FE:-0}
fwin() { echo "r.at >= $(fl "$1"_start) AND r.at <= $(fl "$1"_end)"; }   # a window's rounds (Unix times)
# rounds|report-triggered rounds|longest gap between two of them (s), in window $1
fround() { [ -n "$(fl "$1"_start)" ] || { echo "0|0|-"; return; }
           q "WITH w AS (SELECT r.at, r.trigger, r.at - lag(r.at) OVER (ORDER BY r.id) AS gap FROM rounds r WHERE $(fwin "$1"))
              SELECT count(*), count(*) FILTER (WHERE trigger = 'report'), coalesce(printf('%.1f', max(gap)), '-') FROM w"; }
# decisions|fresh ones|seconds from the last to the window's end, of guest $2 in window $1
fdecided() { [ -n "$(fl "$1"_start)" ] || { echo "0|0|-"; return; }
             q "SELECT count(*), count(*) FILTER (WHERE a.report_status = 'fresh'), coalesce(printf('%.1f', $(fl "$1"_end) - max(r.at)), '-')
                FROM allocations a JOIN rounds r ON r.id = a.round_id WHERE a.$(dom "$2") AND $(fwin "$1")"; }
# daemon log lines matching $2 stamped within window $1 (the log's stamps are whole UTC seconds)
iso() { date -u -d "@${1%.*}" +%Y-%m-%dT%H:%M:%S; }
flog() { [ -n "$(fl "$1"_start)" ] || { echo 0; return; }
         alllogs | awk -v a="$(iso "$(fl "$1"_start)")" -v b="$(iso "$(fl "$1"_end)")" -v m="$2" \
             'substr($1, 1, 19) >= a && substr($1, 1, 19) <= b && index($0, m) {n++} END {print n + 0}'; }
check "flood: flood.txt recorded" test -s "$FLOOD"
FWRITES=$(fl flood_writes)
check "flood: $(fl writers) writers rewrote web3's report ${FWRITES:-0} times in $(fl flood_seconds) s ($(fl calls) xenstore-write calls, $(fl calls_failed) failed)" \
    test "${FWRITES:-0}" -gt 0
check "flood: the daemon was running after the flood (same pid $(fl daemon_pid), '$(fl daemon_comm)')" test "$(fl daemon_alive_after)" = yes
IFS='|' read -r FR FRR FRG <<< "$(fround flood)"
check "flood: rounds went on during the flood: $FR recorded ($FRR on reports), longest gap ${FRG} s" test "${FR:-0}" -gt 0
IFS='|' read -r FH FHF FHL <<< "$(fdecided flood heavy)"
IFS='|' read -r FLN FLF FLL <<< "$(fdecided flood light)"
check "flood: heavy decided in $FH rounds during the flood ($FHF on fresh reports, the last ${FHL} s before its end), light in $FLN ($FLF, ${FLL} s)" \
    test "${FH:-0}" -gt 0 -a "${FLN:-0}" -gt 0
FLOST=$(flog flood 'decision not recorded')
check "flood: no round lost during the flood ($FLOST 'decision not recorded' in the daemon log within it)" test "$FLOST" = 0

# --- The whole run: no round lost, no push failed -------------------------------------------------------
check "daemon logs present ($(echo $LOGS | wc -w) files)" test -n "$LOGS"
LOST=$(alllogs | grep -c 'decision not recorded')
NOTSET=$(alllogs | grep -c 'target not set')
SETERR=$(alllogs | grep -c -E 'libxl_set_memory_target|ERROR_DOMAIN_NOTFOUND')
check "no decision round lost: $LOST 'decision not recorded' in the daemon logs" test "$LOST" = 0
check "no push failed: $NOTSET 'target not set' in the daemon logs" test "$NOTSET" = 0
check "no target pushed to a domain being built or gone: $SETERR libxl_set_memory_target / ERROR_DOMAIN_NOTFOUND errors in the logs" \
    test "$SETERR" = 0

echo
printf '%-8s %9s %9s %12s %10s %7s %10s %14s\n' guest boot_MiB end_MiB min_tgt_MiB floor_MiB rounds rejections latency_s
for g in idle hungry silent hostile; do
    IFS='|' read -r mt fl <<< "$(q "SELECT target_kib, floor_kib FROM allocations WHERE $(dom $g) ORDER BY target_kib, round_id LIMIT 1")"
    lat=-; case $g in idle|hungry) IFS='|' read -r n med p99 max <<< "$(latency $g)"; lat="$med/$p99/$max" ;; esac
    printf '%-8s %9s %9s %12s %10s %7s %10s %14s\n' "$g" "$(mib "$(boot $g)")" "$(xl_end $g)" "$(mib "$mt")" "$(mib "$fl")" \
        "$(q "SELECT count(*) FROM allocations WHERE $(dom $g)")" "$(q "SELECT count(*) FROM rejections WHERE $(dom $g)")" "$lat"
done
echo "rounds: $(q 'SELECT count(*) FROM rounds')  latency: median/p99/max seconds from a guest's report to its new memory/target"
echo
echo "reason codes recorded (rounds):"
for g in idle hungry silent hostile; do
    printf '  %-8s %s\n' "$g" "$(q "SELECT group_concat(reason || ' ' || n, ', ') FROM (SELECT reason, count(*) AS n FROM allocations
                                    WHERE $(dom $g) GROUP BY reason ORDER BY n DESC)")"
done
echo "rejection codes (hostile): $(q "SELECT group_concat(code || ' ' || n, ', ') FROM (SELECT code, count(*) AS n FROM rejections GROUP BY code ORDER BY n DESC)")"
echo
printf '%-18s %-6s %8s  %s\n' lifecycle result seconds detail
for e in $EVENTS; do
    r=$(ev_field $e 2)
    printf '%-18s %-6s %8s  %s\n' "$e" "${r:-none}" "$(ev_field $e 3)" "$(ev_detail $e | cut -c1-100)"
done
echo "Xen free before web's start: ${FREEWEB:-?} MiB; before web3's: $(cat "$RES/free-before-web3.txt" 2>/dev/null || echo '?') MiB (a build needs about 130 MiB, plus the 32 MiB host reserve)"
printf 'weights  heavy %s MiB, light %s MiB (xl list, %s samples); above the %s MiB floors %s : 1 (store: %s : 1); 2 : 1 within %s-%s\n' \
    "${XH:-?}" "${XL:-?}" "${XN:-0}" "$FLOOR_MIB" "$XR" "$SR" "$WLO" "$WHI"
echo "lost rounds: $LOST ('decision not recorded')  failed pushes: $NOTSET in the logs ('target not set'), $(q 'SELECT count(*) FROM allocations WHERE pushed = 0') in the store  set-target errors: $SETERR"
echo
printf '%-8s %7s %9s %9s %12s %14s %10s %7s %8s %7s %16s %16s\n' flood seconds writes/s events/s arbiter_cpu% xenstored_cpu% dom0_cpu% rounds on_rept max_gap heavy_n/fresh/s light_n/fresh/s
for w in idle flood; do
    IFS='|' read -r r rr g <<< "$(fround $w)"
    IFS='|' read -r hn hf hl <<< "$(fdecided $w heavy)"
    IFS='|' read -r ln lf ll <<< "$(fdecided $w light)"
    wps=0; [ $w = flood ] && wps=$(fl writes_per_s)
    printf '%-8s %7s %9s %9s %12s %14s %10s %7s %8s %7s %16s %16s\n' "$([ $w = idle ] && echo without || echo with)" "$(fl ${w}_seconds)" "${wps:-?}" \
        "$(fl ${w}_events_per_s)" "$(fl ${w}_arbiter_cpu_pct)" "$(fl ${w}_xenstored_cpu_pct)" "$(fl ${w}_dom0_cpu_pct)" "$r" "$rr" "$g" "$hn/$hf/$hl" "$ln/$lf/$ll"
done
echo "flood: $(fl writers) dom0 loops rewrote web3's data/pressure ($(fl line_bytes) bytes, its own line), $(fl batch) writes per xenstore-write call (one transaction, a watch event per write); events/s: what a second watcher of the key received; CPU in % of one core (dom0 has $(fl dom0_vcpus) vCPUs; clk_tck $(fl clk_tck)); heavy/light: decisions in the window/on fresh reports/seconds from the last to its end"
# the daemon's busiest threads in each window, "tid:name %" of one core (Linux names a thread after the one
# that made it unless it is named: Dispatch's pool threads and those they start are all "...default-qos")
fthreads() { awk -v w="$1" -v s="$(fl "$1"_seconds)" -v hz="$(fl clk_tck)" '$1 == w && $2 == "start" {a[$3] = $5}
                 $1 == w && $2 == "end" {d = $5 - ($3 in a ? a[$3] : 0); if (d > 0) printf "%.1f %s:%s\n", 100 * d / hz / s, $3, $4}' \
                 "$RES/flood-threads.txt" 2>/dev/null |
             sort -rn | head -6 | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1} END {if (!NR) printf "-"}'; }
for w in idle flood; do echo "flood: the daemon's threads $([ $w = idle ] && echo without || echo with) the flood (% of a core): $(fthreads $w)"; done
echo "flood: the daemon's RSS $(fl rss_kib_before) KiB before, $(fl rss_kib_after) KiB after; web3's reports rejected meanwhile: $(q "SELECT count(*) || ' (' || coalesce(group_concat(DISTINCT code), 'none') || ')' FROM rejections WHERE $FLOODREJ"); 'watch connection lost' in the daemon log during it: $(flog flood 'watch connection lost')"
echo
echo "checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
