#!/usr/bin/env bash
# The bake-off's table, from what bake-scenario.sh left in RESULTS (one folder per policy), and the
# simulator's on the same scenario (bake-twin.toml: the same guests, sizes and trace) beside it.
#   integration/xen/bake-table.sh [RESULTS]   (default .build-xen-bake/results)
# Real Xen, per policy, summed over the four guests unless said otherwise:
#   stall s     PSI memory "some" total over the workload (/proc/pressure/memory, inside the guests)
#   full s      PSI "full" total
#   majflt      major faults (/proc/vmstat pgmajfault: swap-ins and file refaults that read the disk)
#   swapin      pages swapped in (pswpin)
#   p50/p99 ms  the workload's operation latency, the worst guest's (an operation touches 16 pages)
#   ops %       operations run of those planned (below 100: the guest could not keep up)
#   out GiB·s   memory kept out of the guests: Σ over time of (static-max − actual), from dom0's xl list
#               every 2 s (about 4 s apart under TCG) over the workload's length from go
#   targets     changes of memory/target seen by a dom0 watch over the same window
#   died        guests that crashed, vanished or whose workload did not finish
#   A guest still running whose workload did not finish (it wrote no BAKE-RESULT by 120 s after its end:
#   thrashing) counts as died, and its stall, full, majflt and swapin come from its reporter's lines at
#   go and at the end instead (its last report: a lower bound); the row is then marked *. Its latency
#   is unknown: p50/p99 are of the guests that finished.
# Then the simulator's table for the same policies (bake-twin.toml, --hours of this run's length): stall s
# (its PSI-some equivalent, summed over guests), out GiB·s (reclaimed), targets (changes); and the two
# rankings side by side (by stall, least first; by memory kept out, most first), with every pair of
# policies the two order differently.
# Exits 1 if a policy's folder lacks results (a guest without a BAKE-RESULT counts as died, not as
# missing).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RES=${1:-$ROOT/.build-xen-bake/results}
[ -r "$RES/bake.env" ] || { echo "bake-table: no $RES/bake.env (run integration/xen/run.sh --scenario bake first)"; exit 1; }
. "$RES/bake.env"
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< " $2"; }
rc=0
TMP=$(mktemp -d)
RANKS=$TMP/ranks SIM=$TMP/sim
trap 'rm -rf "$TMP"' EXIT
printf '%s\n' "real Xen: $(echo $BAKE_POLICIES | wc -w) policies x 4 guests, $BAKE_SAMPLES trace samples x $BAKE_STEP s, seed $BAKE_SEED"
printf '%-16s %8s %8s %8s %8s %8s %8s %6s %10s %8s %5s\n' policy "stall s" "full s" majflt swapin "p50 ms" "p99 ms" "ops %" "out GiB·s" targets died
behind=
for P in $BAKE_POLICIES; do
    D=$RES/$P
    if [ ! -s "$D/times.txt" ]; then printf '%-16s (no run)\n' "$P"; rc=1; continue; fi
    # the workload's window: from go for its length (dom0 may wait longer for a guest that is behind)
    GO=$(awk '$1 == "go" {print $2}' "$D/times.txt")
    END=$(awk -v go="$GO" -v n="$BAKE_SAMPLES" -v s="$BAKE_STEP" '$1 == "end" {e = $2} END {print (e < go + n * s ? e : go + n * s)}' "$D/times.txt")
    some=0 full=0 maj=0 sin=0 p50=0 p99=0 ops=0 planned=0 died=0 mark=
    for g in g1 g2 g3 g4; do
        line=$(cat "$D/result-$g.txt" 2>/dev/null)
        st=$(sed -n "s/^$g .*state=\([^ ]*\).*/\1/p" "$D/state.txt" 2>/dev/null)
        if [ -z "$line" ] || [ -n "$(kv died "$line")" ] || [[ "$st" == *c* ]] || [ "$st" = gone ]; then
            died=$((died + 1))
            a=$(cat "$D/report-go-$g.txt" 2>/dev/null) b=$(cat "$D/report-end-$g.txt" 2>/dev/null)
            if [ -n "$a" ] && [ -n "$b" ] && [ -n "$(kv psi_some_total_us "$b")" ]; then
                mark='*'
                some=$((some + $(kv psi_some_total_us "$b") - $(kv psi_some_total_us "$a")))
                full=$((full + $(kv psi_full_total_us "$b") - $(kv psi_full_total_us "$a")))
                maj=$((maj + $(kv pgmajfault "$b") - $(kv pgmajfault "$a")))
                sin=$((sin + $(kv pswpin "$b") - $(kv pswpin "$a")))
            else
                mark='?'   # nothing to go on: its stall is missing from the sum
            fi
            continue
        fi
        some=$((some + $(kv some_us "$line"))); full=$((full + $(kv full_us "$line")))
        maj=$((maj + $(kv pgmajfault "$line"))); sin=$((sin + $(kv pswpin "$line")))
        ops=$((ops + $(kv ops "$line"))); planned=$((planned + $(kv planned "$line")))
        [ "$(kv p50_us "$line")" -gt $p50 ] && p50=$(kv p50_us "$line")
        [ "$(kv p99_us "$line")" -gt $p99 ] && p99=$(kv p99_us "$line")
    done
    # static-max − actual, held from each sample to the next (per guest), between go and end
    out=$(sort -k2,2 -k1,1n "$D/samples.txt" 2>/dev/null | awk -v go="$GO" -v end="$END" '
        $1 >= go && $1 <= end && $5 > 0 {
            if ($2 == g && t != "") s += (($5 / 1024 - m) / 1024) * ($1 - t)
            g = $2; t = $1; m = $3 }
        END {printf "%.1f", s}')
    tc=0
    for f in "$D"/targets-g*.txt; do
        [ -e "$f" ] || continue
        tc=$((tc + $(awk -v go="$GO" -v end="$END" 'prev != "" && $2 != prev && $1 >= go && $1 <= end {n++} $2 != "" {prev = $2} END {print n + 0}' "$f")))
    done
    pct=$(awk -v o=$ops -v p=$planned 'BEGIN {if (p) printf "%.0f", 100 * o / p; else print "-"}')
    if [ "$pct" != - ] && [ "$pct" -lt 90 ]; then behind="$behind $P"; fi
    echo "$P ${mark:--} $(awk -v v=$some 'BEGIN {print v / 1e6}') $out" >> "$RANKS"
    printf '%-16s %8.1f %8.1f %8d %8d %8.2f %8.1f %6s %10s %8d %5d\n' "$P$mark" "$(awk -v v=$some 'BEGIN {print v / 1e6}')" \
        "$(awk -v v=$full 'BEGIN {print v / 1e6}')" $maj $sin "$(awk -v v=$p50 'BEGIN {print v / 1e3}')" \
        "$(awk -v v=$p99 'BEGIN {print v / 1e3}')" "$pct" "$out" $tc $died
done
grep -q ' [*?] ' "$RANKS" && echo "(* a workload did not finish: that guest's figures are its reporter's up to the end; ? not even that: that guest is missing from the sums)"
if [ -n "$behind" ]; then
    echo "(ops % under 90 for$behind: the guests fell behind their workload on this machine's emulated CPU, so the"
    echo " stall column compares CPU starvation as much as memory policy: rerun on a faster machine before reading it)"
fi

BIN=$ROOT/.build/release/arbiter
HOURS=$(awk -v n=$BAKE_SAMPLES -v s=$BAKE_STEP 'BEGIN {printf "%.6f", n * s / 3600}')
echo
if [ ! -x "$BIN" ] || ! command -v python3 > /dev/null; then
    echo "simulator: not run (needs $BIN and python3)"; exit $rc
fi
"$BIN" simulate --scenario "$HERE/bake-twin.toml" --compare --hours "$HOURS" --seed "$BAKE_SEED" --json > "$SIM.json" || { echo "simulator failed"; exit 1; }
# NAME-reserve0: the same scenario with [arbiter.share] host_reserve and slack 0, NAME alone
for P in $BAKE_POLICIES; do
    case $P in *-reserve0) ;; *) continue ;; esac
    sed 's/^\(slack\|host_reserve\) = .*/\1 = "0M"/' "$HERE/bake-twin.toml" > "$SIM-$P.toml"
    cp "$HERE/bake-trace.csv" "$TMP/bake-trace.csv"
    "$BIN" simulate --scenario "$SIM-$P.toml" --policy "${P%-reserve0}" --hours "$HOURS" --seed "$BAKE_SEED" --json \
        | python3 -c 'import json, sys; d = json.load(sys.stdin); [p.update(policy=sys.argv[1]) for p in d["policies"]]; print(json.dumps(d))' "$P" \
        > "$SIM-$P.json" || { echo "simulator failed ($P)"; exit 1; }
done
python3 - "$SIM" "$BAKE_POLICIES" "$RANKS" <<'PY'
import glob, json, sys
sim = {}
for f in sorted(glob.glob(sys.argv[1] + "*.json")):
    d = json.load(open(f))
    sim.update({p["policy"]: p for p in (d["policies"] if "policies" in d else [d])})
want = sys.argv[2].split()
real = {}
for line in open(sys.argv[3]):
    p, mark, stall, out = line.split()
    real[p] = (float(stall), float(out))
    if mark != "-":
        print("(real Xen's %s: a workload did not finish, its stall is %s)" % (p, "a lower bound" if mark == "*" else "incomplete"))
print("simulator (integration/xen/bake-twin.toml, the same guests and trace, %s policies):" % len(want))
print("%-16s %8s %10s %8s" % ("policy", "stall s", "out GiB·s", "targets"))
simv = {}
for p in want:
    if p not in sim:
        print("%-16s (no such policy in the simulator)" % p); continue
    s = sim[p]
    simv[p] = (s["stall_seconds"], s["reclaimed_gib_hours"] * 3600)
    print("%-16s %8.1f %10.1f %8d" % (p, simv[p][0], simv[p][1], s["target_changes"]))
both = [p for p in want if p in real and p in simv]
def rank(v, key, rev):
    order = sorted(both, key=lambda p: v[p][key], reverse=rev)
    return order
print()
for key, name, rev in ((0, "stall (least first)", False), (1, "memory kept out (most first)", True)):
    r, s = rank(real, key, rev), rank(simv, key, rev)
    print("ranking by %s: real Xen %s | simulator %s" % (name, " < ".join(r) if not rev else " > ".join(r), " < ".join(s) if not rev else " > ".join(s)))
    bad = []
    for i, a in enumerate(both):
        for b in both[i + 1:]:
            dr = real[a][key] - real[b][key]; ds = simv[a][key] - simv[b][key]
            if dr * ds < 0:
                bad.append("%s vs %s (real %.1f / %.1f, simulated %.1f / %.1f)" % (a, b, real[a][key], real[b][key], simv[a][key], simv[b][key]))
    print("  the two agree on every pair" if not bad else "  they disagree on: " + "; ".join(bad))
PY
exit $rc
