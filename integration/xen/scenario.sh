#!/bin/sh
# The end-to-end scenario, run by dom0-init once the toolstack is up. Everything it records goes to
# /results (the host's folder over 9p); the checks run on the host (check.sh). Every wait is bounded.
# Phase 1, the policy:
#   idle     448M (static-max 448M), reporter only            → shrunk, paced, never below its floor
#   hungry   160M (static-max 640M), reporter + growing hog  → grown with memory idle gave back
#   silent   192M (static-max 384M), no reporter              → held
#   hostile  160M (static-max 256M), writes garbage reports   → rejected and recorded, held
# The arbiter starts before the guests (it meets them through @introduceDomain) and is restarted
# (SIGTERM, start again on the same database) while idle is still shrinking. Phase 1 ends once hungry's
# working set is complete and settled; its state then is what check.sh calls the four guests' "end".
# Phase 2, VM lifecycle (daemon 2 runs on; each event's result and seconds go to lifecycle.txt, each
# lifetime it ends or begins to lifetimes.txt, `arbiter list` after it to list-EVENT.txt): hostile
# destroyed; web2 started through `arbiter reserve --for web2 --wait` + xl create; web through
# `arbiter start` while the host's memory is lent out; silent destroyed; web restarted by name (xl
# destroy + xl create at once); web2 rebooted (xl's monitor recreates it); web saved, then restored
# after `arbiter reserve --for web --wait`.
# Phase 3, weights: the rest destroyed; heavy and light, the same hungry guest whose working set never
# fits, contend with weights 2:1 until their split settles, which is then sampled for 20 s.
# Phase 4, flood: web3's report rewritten by dom0 as fast as xenstored takes it; the daemon's CPU over
# 20 s without, then 20 s with the flood, and the store's rounds of both (flood.txt; check.sh).
#
# Memory (MiB). T, what Xen has for guests: about 960 booted + 73 spare = 1030 (1856 MiB qemu, 768
# dom0). host_reserve 32. Every guest's static floor is 128 (absolute_min; selfballoon's is lower at
# these sizes); idle's working-set floor is 128, hungry's 350-386 (its 418-438 target is 1.25 x its
# working set, 256 of which is tmpfs); silent and hostile are held at 192 and 160. The daemon refuses a
# reservation beyond room = T - 32 - sum of floors - what other reservations and restart holds keep:
#   web2 136M, once hostile's restart hold (20 s) has lapsed: room >= 1030 - 32 - (128+386+192) = 292
#     (with hostile, or within its hold, it would be 132-168: too tight)
#   web 130M (128 + libxl's 1M, rounded to 2M): room >= 1030 - 32 - (128+386+192+128) = 164, and Xen
#     free is about 1030 - (133+438+192+130) = 137 < 130 + 32: memory lent out comes back first
#   restore 136M: silent gone (and its hold lapsed), web's own hold (~130) still open:
#     room >= 1030 - 32 - (128+386+128) - 130 = 226
#   weights: heavy and light alone: budget about T - 32 = 1000; 2:1 above 128 each is about 625 and 375
export PATH=/usr/local/bin:/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
R=/results
CONF=/etc/arbiter/arbiter.toml
STORE=/run/arbiter/decisions.sqlite
up() { cut -d' ' -f1 /proc/uptime; }
ev() { echo "E2E $(up) $*" | tee -a $R/events.log; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN {print int(b - a)}'; }
secs() { awk -v a="$1" -v b="$(up)" 'BEGIN {printf "%.1f", b - a}'; }
FAILED=0
problem() { ev "PROBLEM $*"; FAILED=1; }

DAEMON=
start_daemon() {
    arbiter daemon --config $CONF >> $R/arbiter-$1.log 2>&1 &
    DAEMON=$!
    ev "daemon $1 started pid=$DAEMON unix=$(date +%s)"
}
stop_daemon() {   # SIGTERM: the daemon records a last round and exits 0
    kill -TERM "$DAEMON" 2>/dev/null
    t=$(up)
    while kill -0 "$DAEMON" 2>/dev/null; do
        [ "$(elapsed "$t")" -ge 60 ] && { problem "daemon $1 still running 60 s after SIGTERM"; kill -KILL "$DAEMON"; break; }
        sleep 0.2
    done
    wait "$DAEMON"; rc=$?
    ev "daemon $1 stopped rc=$rc after $(elapsed "$t") s unix=$(date +%s)"
}
alive() { kill -0 "$DAEMON" 2>/dev/null || problem "daemon $1 is not running at $2"; }

cfg() {   # cfg NAME ROLE MEMORY MAXMEM [EXTRA]: writes /run/NAME.cfg
    cat > /run/$1.cfg <<CFG
name="$1"
type="pv"
kernel="/guest/kernel"
ramdisk="/guest/initrd"
extra="console=hvc0 rdinit=/init mitigations=off loglevel=4 arbiter.role=$2 $5"
memory=$3
maxmem=$4
vcpus=1
on_poweroff="destroy"
on_reboot="restart"
on_crash="preserve"
CFG
}
GUESTS=$R/guests.txt    # phase 1's guests (check.sh sums their boot sizes); phase 3's go to guests-late.txt
guest() {   # guest NAME ROLE MEMORY MAXMEM [EXTRA]
    cfg "$@"
    t=$(up)
    if xl create /run/$1.cfg > $R/xl-create-$1.log 2>&1; then
        id=$(xl domid "$1")
        echo "$1 $id $2 $3 $4" >> $GUESTS
        ev "guest $1 created domid=$id in $(elapsed "$t") s"
    else
        problem "xl create $1 failed"
    fi
}
domid() { awk -v n="$1" '$1 == n {id = $2} END {print id}' $R/guests.txt $R/guests-late.txt; }
wait_key() {   # wait_key NAME KEY SECONDS
    t=$(up); id=$(domid "$1")
    until xenstore-exists "/local/domain/$id/$2" 2>/dev/null; do
        [ "$(elapsed "$t")" -ge "$3" ] && { problem "$1 wrote no $2 within $3 s"; return 1; }
        sleep 0.5
    done
    ev "$1 wrote $2 after $(elapsed "$t") s"
}
# A xenstore watch, each event stamped with dom0 uptime (and the value, for memory/target).
stamp_watch() {   # stamp_watch PATH FILE read|noread
    xenstore-watch "$1" | while read -r p; do
        read -r u _ < /proc/uptime
        if [ "$3" = read ]; then echo "$u $p $(xenstore-read "$p" 2>/dev/null)"; else echo "$u $p"; fi
    done > "$2" &
}

: > $R/guests.txt; : > $R/guests-late.txt
ev "scenario start unix=$(date +%s)"
xl info > $R/xl-info-start.txt
start_daemon 1
sleep 3
alive 1 startup
guest idle idle 448 448
guest hungry hungry 160 640 "arbiter.hog=256 arbiter.hog_step=8 arbiter.hog_delay=25"
guest silent silent 192 384
guest hostile hostile 160 256
xl list > $R/xl-list-start.txt

# the toolstack's view every 2 s: uptime name MiB target_KiB
( while :; do
    u=$(up)
    xl list 2>/dev/null | awk -v u="$u" 'NR > 1 && $1 != "Domain-0" {print u, $1, $2, $3}' | while read -r u n id mem; do
        echo "$u $n $mem $(xenstore-read /local/domain/$id/memory/target 2>/dev/null)"
    done
    sleep 2
  done >> $R/xl-samples.txt ) &
SAMPLER=$!
for n in idle hungry; do
    id=$(domid $n)
    stamp_watch /local/domain/$id/data/pressure $R/watch-$n-report.txt noread
    stamp_watch /local/domain/$id/memory/target $R/watch-$n-target.txt read
done

wait_key idle data/pressure 180
wait_key hungry data/pressure 180
wait_key hostile data/pressure 180
xenstore-read /local/domain/$(domid hungry)/data/pressure > $R/hungry-report-first.txt

# Restart the daemon while idle is still being shrunk.
sleep 40
alive 1 "the planned restart"
ev "restart: idle target $(xenstore-read /local/domain/$(domid idle)/memory/target) KiB"
stop_daemon 1
start_daemon 2

# Until hungry's working set is complete (bounded), then a little longer to settle.
t=$(up)
while :; do
    hog=$(xenstore-read /local/domain/$(domid hungry)/data/hog 2>/dev/null)
    case $hog in *done=1*) ev "hungry hog complete: $hog after $(elapsed "$t") s"; break ;; esac
    if [ "$(elapsed "$t")" -ge 420 ]; then problem "hungry hog not complete within 420 s: $hog"; break; fi
    sleep 2
done
sleep 25
xenstore-read /local/domain/$(domid hungry)/data/pressure > $R/hungry-report-last.txt
alive 2 "the end of phase 1"
# Phase 1's end state: what check.sh judges the four guests by (they live on into phase 2).
xl list > $R/xl-list-end.txt
xl info > $R/xl-info-end.txt
for n in idle hungry silent hostile; do
    id=$(domid $n)
    [ -n "$id" ] && xenstore-ls -fp /local/domain/$id > $R/xenstore-$n.txt 2>&1
done
ev "phase 1 end unix=$(date +%s)"

# ---------------------------------------------------------------------------------------------------
# Phase 2: VM lifecycle with the host's memory lent out (the arithmetic is at the top).
LC=$R/lifecycle.txt     # EVENT ok|fail SECONDS DETAIL
LT=$R/lifetimes.txt     # EVENT NAME OLD_DOMID|- NEW_DOMID|- UNIX
: > $LC; : > $LT
GRACE=$(awk -F= '$1 ~ /^release_grace_seconds *$/ {gsub(/[ "]/, "", $2); print int($2 + 0.999)}' $CONF)
GRACE=${GRACE:-60}
xid() { xl domid "$1" 2>/dev/null; }
free_mib() { xl info 2>/dev/null | awk '$1 == "free_memory" {print $3}'; }
oneline() { tr '\n' ' ' < "$1" 2>/dev/null | cut -c1-240 | sed 's/ *$//'; }
result() {   # result EVENT ok|fail T0 DETAIL: a line of lifecycle.txt, seconds since T0
    s=$(secs "$3")
    echo "$1 $2 $s $4" >> $LC
    ev "lifecycle $1 $2 after $s s: $4"
}
lifetime() { echo "$1 $2 ${3:--} ${4:--} $(date +%s)" >> $LT; }   # lifetime EVENT NAME OLD NEW
bounded() {   # bounded SECONDS COMMAND...: COMMAND under timeout, a PROBLEM if it ran out of time
    local t0 rc
    t0=$(up)
    timeout "$@"; rc=$?
    [ "$(elapsed "$t0")" -ge "$1" ] && problem "$2 $3 did not finish within $1 s"
    return $rc
}
listed() { timeout 20 arbiter list --db $STORE 2>/dev/null | awk -v n="$1" 'NR > 1 && $1 == n {print $2}'; }
snap() {   # snap EVENT: what arbiter list (live domains) and arbiter list --all show after EVENT
    timeout 20 arbiter list --db $STORE > $R/list-$1.txt 2>&1
    timeout 20 arbiter list --all --db $STORE > $R/list-all-$1.txt 2>&1
}
wait_listed() {   # wait_listed NAME DOMID|- SECONDS: until arbiter list shows NAME once, as DOMID (-: not at all)
    local t0 want got
    t0=$(up) want=$2
    [ "$want" = - ] && want=
    while got=$(listed "$1" | tr '\n' ' ' | sed 's/ *$//'); [ "$got" != "$want" ]; do
        if [ "$(elapsed "$t0")" -ge "$3" ]; then
            problem "arbiter list shows $1 as '$got', not '${want:-nothing}', after $3 s"; return 1
        fi
        sleep 1
    done
    ev "arbiter list shows $1 as '${want:-nothing}' after $(secs "$t0") s"
}
wait_up() {   # wait_up NAME SECONDS: until NAME's guest has booted (its reporter wrote data/pressure)
    local t0 id
    t0=$(up)
    [ -n "$(xid "$1")" ] || { problem "no domain $1 to wait for"; return 1; }
    until id=$(xid "$1") && [ -n "$id" ] && xenstore-exists /local/domain/$id/data/pressure 2>/dev/null; do
        if [ "$(elapsed "$t0")" -ge "$2" ]; then problem "$1 not up (no data/pressure) within $2 s"; return 1; fi
        sleep 1
    done
}
wait_new() {   # wait_new NAME OLD SECONDS: NEW = NAME's domid once there is one other than OLD
    local t0
    t0=$(up)
    while NEW=$(xid "$1"); [ -z "$NEW" ] || [ "$NEW" = "$2" ]; do
        if [ "$(elapsed "$t0")" -ge "$3" ]; then problem "no new $1 (it was domid $2) within $3 s"; NEW=; return 1; fi
        sleep 0.5
    done
}
sleep_past() {   # sleep_past T0 SECONDS: until SECONDS after T0 (an uptime)
    local left
    left=$(awk -v a="$1" -v n="$2" -v b="$(up)" 'BEGIN {d = a + n - b; if (d > 0) printf "%.1f", d; else print 0}')
    [ "$left" = 0 ] || { ev "waiting $left s (restart holds last $GRACE s)"; sleep "$left"; }
}
xl_monitor() {   # xl_monitor ARGS...: the pid of a running `xl ARGS` (xl create's background monitor)
    local p
    for p in /proc/[0-9]*; do
        [ "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" = "xl $* " ] && { echo "${p#/proc/}"; return 0; }
    done
    return 1
}
arbiter_start() {   # arbiter_start NAME: event NAME-start, through arbiter start; NEW = its domid, if any
    local t0 rc
    t0=$(up)
    bounded 150 arbiter start --timeout 120 --config $CONF /run/$1.cfg > $R/start-$1.txt 2>&1
    rc=$?
    NEW=$(xid "$1")
    if [ $rc = 0 ] && [ -n "$NEW" ]; then result $1-start ok $t0 "domid=$NEW; $(grep -m1 '^started' $R/start-$1.txt)"
    else result $1-start fail $t0 "exit $rc: $(oneline $R/start-$1.txt)"; fi
}
cfg web idle 128 256
cfg web2 idle 128 256
xl info > $R/xl-info-phase2.txt
snap phase2-start

# hostile is not needed any more: its memory makes room for two more guests.
old=$(xid hostile) t0=$(up)
if xl destroy hostile > $R/xl-destroy-hostile.log 2>&1; then result hostile-destroy ok $t0 "domid=$old"
else result hostile-destroy fail $t0 "domid=$old: $(oneline $R/xl-destroy-hostile.log)"; fi
lifetime hostile-destroy hostile "$old" -
HOSTILE_GONE=$t0
wait_listed hostile - 30
snap hostile-destroy
# Its memory is held for a domain named hostile for GRACE s: web2's reservation must not count on it.
sleep_past $HOSTILE_GONE $((GRACE + 3))

# web2: a reservation, then a plain xl create
ev "web2: Xen free $(free_mib) MiB before its reservation"
t0=$(up)
bounded 150 arbiter reserve 136M --for web2 --timeout 120 --wait --config $CONF > $R/reserve-web2.txt 2>&1
rc=$?
if [ $rc = 0 ] && grep -q '^ready:' $R/reserve-web2.txt; then res=ok why="$(grep -m1 '^ready:' $R/reserve-web2.txt)"
else res=fail why="arbiter reserve exit $rc: $(oneline $R/reserve-web2.txt)"; fi
# created even when the reservation failed, so that the steps after it have their guest
if xl create /run/web2.cfg > $R/xl-create-web2.log 2>&1; then new=$(xid web2)
else
    res=fail new= why="$why; xl create: $(oneline $R/xl-create-web2.log)"
    rid=$(sed -n 's/^reserved \([0-9]*\):.*/\1/p' $R/reserve-web2.txt)
    [ -n "$rid" ] && arbiter unreserve "$rid" --config $CONF >> $R/reserve-web2.txt 2>&1
fi
result web2-start $res $t0 "domid=${new:-none}; $why"
lifetime web2-start web2 - "$new"
[ -n "$new" ] && wait_listed web2 "$new" 30
snap web2-start

# web through arbiter start, while guests hold memory above their floors
xl info > $R/xl-info-before-web.txt
F=$(free_mib)
echo "$F" > $R/free-before-web.txt
ev "web: Xen free $F MiB before arbiter start (the build needs about 130 MiB, plus the 32 MiB host reserve)"
arbiter_start web
new=$NEW
if [ -z "$new" ]; then
    ev "web: plain xl create, so that the steps after it have their guest"
    xl create /run/web.cfg > $R/xl-create-web.log 2>&1
    new=$(xid web)
fi
lifetime web-start web - "$new"
[ -n "$new" ] && wait_listed web "$new" 30
snap web-start

# silent is not needed any more either: its hold lapses while web and web2 restart, before the restore
# must reserve memory.
old=$(xid silent) t0=$(up)
if xl destroy silent > $R/xl-destroy-silent.log 2>&1; then result silent-destroy ok $t0 "domid=$old"
else result silent-destroy fail $t0 "domid=$old: $(oneline $R/xl-destroy-silent.log)"; fi
lifetime silent-destroy silent "$old" -
SILENT_GONE=$t0
wait_listed silent - 30
snap silent-destroy

# web restarted by name: xl destroy, then xl create at once (what on_reboot="restart" does)
wait_up web 60
old=$(xid web) t0=$(up)
if xl destroy web > $R/xl-destroy-web.log 2>&1 && xl create /run/web.cfg > $R/xl-create-web-restart.log 2>&1; then
    new=$(xid web)
    result web-restart ok $t0 "old=$old new=$new"
else
    new=$(xid web)
    result web-restart fail $t0 "old=$old: $(oneline $R/xl-destroy-web.log) $(oneline $R/xl-create-web-restart.log)"
fi
lifetime web-restart web "$old" "$new"
[ -n "$new" ] && wait_listed web "$new" 30
snap web-restart

# web2 rebooted: the guest's kernel runs /sbin/reboot, its PID 1 reboots, Xen reports a reboot and the
# `xl create` that built web2, still running as its monitor, builds a new web2 (on_reboot="restart").
wait_up web2 60
old=$(xid web2)
mon=$(xl_monitor create /run/web2.cfg)
ev "web2: xl's monitor: ${mon:-none running}"
t0=$(up)
if [ -z "$mon" ]; then
    result web2-reboot fail $t0 "no xl monitor for web2 (nothing would restart it): destroy + create instead"
    xl destroy web2 > /dev/null 2>&1
    xl create /run/web2.cfg > $R/xl-create-web2-restart.log 2>&1
    new=$(xid web2)
elif ! xl reboot web2 > $R/xl-reboot-web2.log 2>&1; then
    result web2-reboot fail $t0 "xl reboot: $(oneline $R/xl-reboot-web2.log)"
    new=$(xid web2)
elif wait_new web2 "$old" 90; then
    new=$NEW
    result web2-reboot ok $t0 "old=$old new=$new (xl monitor pid $mon)"
else
    new=$(xid web2)
    result web2-reboot fail $t0 "old=$old: no new web2 within 90 s"
fi
[ "$new" = "$old" ] && new=
lifetime web2-reboot web2 "$old" "$new"
[ -n "$new" ] && wait_listed web2 "$new" 60
snap web2-reboot

# web saved, then restored after a reservation (a restore needs memory as a start does)
wait_up web 60
old=$(xid web)
mem=$(xl list web 2>/dev/null | awk 'NR == 2 {print $3}')
t0=$(up)
if bounded 150 xl save web /run/web.save > $R/xl-save-web.log 2>&1; then
    result web-save ok $t0 "domid=$old at ${mem:-?} MiB, image $(du -m /run/web.save 2>/dev/null | cut -f1) MiB"
else result web-save fail $t0 "domid=$old: $(oneline $R/xl-save-web.log)"; fi
lifetime web-save web "$old" -
wait_listed web - 30
snap web-save
# silent's hold must have lapsed (it normally has, long ago); web's own stays open until it is back.
sleep_past $SILENT_GONE $((GRACE + 3))
size=$(( ${mem:-128} + 8 ))
t0=$(up)
bounded 150 arbiter reserve ${size}M --for web --timeout 120 --wait --config $CONF > $R/reserve-web.txt 2>&1
rc=$?
if [ $rc = 0 ] && grep -q '^ready:' $R/reserve-web.txt; then res=ok why="$(grep -m1 '^ready:' $R/reserve-web.txt)"
else res=fail why="arbiter reserve ${size}M exit $rc: $(oneline $R/reserve-web.txt)"; fi
if bounded 150 xl restore /run/web.save > $R/xl-restore-web.log 2>&1 && new=$(xid web) && [ -n "$new" ]; then :
else res=fail new= why="$why; xl restore: $(oneline $R/xl-restore-web.log)"; fi
result web-restore $res $t0 "domid=${new:-none}; $why"
rm -f /run/web.save
lifetime web-restore web - "$new"
[ -n "$new" ] && wait_listed web "$new" 60
snap web-restore
alive 2 "the end of phase 2"

# ---------------------------------------------------------------------------------------------------
# Phase 3: weights. Two guests of one kind (a working set that grows 4 MiB at a time towards 900 MiB,
# more than its 768 MiB maximum could ever hold, and gives memory back when its balloon is asked to:
# never done), one at weight 2; what is above their static floors should settle at 2:1.
t0=$(up)
for n in idle hungry web web2; do xl destroy $n > /dev/null 2>&1 || ev "xl destroy $n failed"; done
ev "phase 3: idle hungry web web2 destroyed in $(secs $t0) s; Xen free $(free_mib) MiB"
GUESTS=$R/guests-late.txt
# (4 MiB steps: after a step it still has keep MiB available, more than the arbiter's 16 MiB margin)
HOG="arbiter.hog=900 arbiter.hog_step=4 arbiter.hog_delay=3 arbiter.hog_yield=1"
guest heavy hungry 192 768 "$HOG"
guest light hungry 192 768 "$HOG"
# as their working sets start to grow (3 s after boot, before they are shrunk to their floors)
t0=$(up)
if bounded 30 arbiter set heavy --weight 2 --config $CONF > $R/set-heavy.txt 2>&1; then res=ok; else res=fail; fi
echo "set $res $(secs $t0) $(oneline $R/set-heavy.txt)" > $R/weights.txt
ev "weights: arbiter set heavy --weight 2: $res: $(oneline $R/set-heavy.txt)"
wait_key heavy data/hog 120
wait_key light data/hog 120

FLOOR=$(awk -F= '$1 ~ /^absolute_min *$/ {gsub(/[ "M]/, "", $2); print $2}' $CONF)
FLOOR=${FLOOR:-128}
measure() {   # HM LM: heavy's and light's memory (xl list, MiB); HTGT LTGT: their targets (MiB)
    xl list > /run/xl-now.txt 2>/dev/null
    HM=$(awk '$1 == "heavy" {print $3}' /run/xl-now.txt)
    LM=$(awk '$1 == "light" {print $3}' /run/xl-now.txt)
    HTGT=$(( $(xenstore-read /local/domain/$(domid heavy)/memory/target 2>/dev/null || echo 0) / 1024 ))
    LTGT=$(( $(xenstore-read /local/domain/$(domid light)/memory/target 2>/dev/null || echo 0) / 1024 ))
}
ratio() { awk -v h="$1" -v l="$2" -v f="$FLOOR" 'BEGIN {if (h != "" && l != "" && l - f > 0) printf "%.2f", (h - f) / (l - f); else print "-"}'; }
# Settled: (heavy − floor) / (light − floor) within 1.6-2.5, both balloons within 8 MiB of their targets
# and moved at most 8 MiB since the last look, and the host full (Xen free at most twice the 32 MiB host
# reserve: the two contend), twice in a row (5 s apart), at least 60 s after the working sets started;
# 600 s at most (85-160 s in the runs on one machine, 262-292 s on a slower one). (Without the last two, a ratio passing through the range
# while both still grew into free memory once counted as settled.)
ev "weights: heavy (weight 2) and light (weight 1) contend"
t0=$(up) good=0 PHM=0 PLM=0
while :; do
    sleep 5
    measure
    r=$(ratio "$HM" "$LM")
    F=$(free_mib)
    echo "$(up) heavy=${HM:-?}/$HTGT light=${LM:-?}/$LTGT ratio=$r free=${F:-?}" >> $R/weights-progress.txt
    if awk -v r="$r" -v hm="${HM:-0}" -v ht="$HTGT" -v lm="${LM:-0}" -v lt="$LTGT" -v ph="$PHM" -v pl="$PLM" -v f="${F:-9999}" \
        'BEGIN {exit !(r != "-" && r + 0 >= 1.6 && r + 0 <= 2.5 && hm - ht <= 8 && ht - hm <= 8 && lm - lt <= 8 && lt - lm <= 8 \
                       && hm - ph <= 8 && ph - hm <= 8 && lm - pl <= 8 && pl - lm <= 8 && f <= 64)}'; then
        good=$((good + 1))
    else
        good=0
    fi
    PHM=${HM:-0} PLM=${LM:-0}
    if [ $good -ge 2 ] && [ "$(elapsed "$t0")" -ge 60 ]; then
        ev "weights settled after $(secs "$t0") s: heavy $HM MiB, light $LM MiB, above $FLOOR MiB $r : 1"; break
    fi
    if [ "$(elapsed "$t0")" -ge 600 ]; then
        problem "weights not settled within 600 s: heavy $HM/$HTGT MiB, light $LM/$LTGT MiB (memory/target), ratio $r"; break
    fi
done
ev "weights sample start unix=$(date +%s)"
t0=$(up)
while [ "$(elapsed "$t0")" -lt 20 ]; do
    measure
    echo "$(up) $(date +%s) ${HM:-0} ${LM:-0} $HTGT $LTGT" >> $R/weights-samples.txt
    sleep 2
done
ev "weights sample end unix=$(date +%s)"
for n in heavy light; do xenstore-read /local/domain/$(domid $n)/data/hog > $R/hog-$n.txt 2>&1; done
awk -v f="$FLOOR" '{h += $3; l += $4; n++}
    END {if (n && l / n > f) printf "split heavy=%.0f light=%.0f ratio=%.2f samples=%d\n", h / n, l / n, (h / n - f) / (l / n - f), n
         else print "split none"}' $R/weights-samples.txt >> $R/weights.txt
ev "weights: $(tail -1 $R/weights.txt); hogs: heavy $(cat $R/hog-heavy.txt), light $(cat $R/hog-light.txt)"

# A VM start with the host lent out (heavy and light hold all but the reserve): a plain xl create fails,
# as it did before the arbiter took part in starts; arbiter start frees what the build needs and succeeds.
cfg web3 idle 128 256
F=$(free_mib)
echo "$F" > $R/free-before-web3.txt
ev "web3: Xen free $F MiB while heavy and light contend"
t0=$(up)
if xl create /run/web3.cfg > $R/xl-create-web3-plain.log 2>&1; then
    result web3-plain-create fail $t0 "xl create succeeded: the memory was not lent out (Xen free $F MiB)"
    xl destroy web3 > /dev/null 2>&1
else
    result web3-plain-create ok $t0 "xl create failed, as it must with Xen free $F MiB: $(grep -m1 -i 'memory' $R/xl-create-web3-plain.log | cut -c1-100)"
fi
lifetime web3-plain-create web3 - -
sleep 2
snap web3-plain-create
arbiter_start web3
new=$NEW
lifetime web3-start web3 - "$new"
[ -n "$new" ] && wait_listed web3 "$new" 30
snap web3-start
measure
ev "web3: after its start heavy $HM MiB, light $LM MiB"

# ---------------------------------------------------------------------------------------------------
# Phase 4, flood: what a guest that rewrites its report as fast as xenstored lets it costs the daemon,
# and whether the other guests' rounds go on meanwhile. The daemon's CPU (utime + stime of its process,
# all threads) over FLOOD_SECONDS without a flood, then over FLOOD_SECONDS while FLOOD_WRITERS loops in
# dom0 rewrite web3's data/pressure with web3's own line (read once: dom0 may write any path),
# FLOOD_BATCH pairs per xenstore-write call. A call with several pairs is one transaction, and
# oxenstored fires a watch event for every write in it when it commits. A second watcher on the key
# (xenstore-watch into a file) counts the events. oxenstored's and dom0's CPU are recorded beside the
# daemon's (the writers run in dom0, beside it, on dom0's 2 vCPUs). To flood.txt, key=value lines;
# check.sh adds the store's rounds of each window. Only calls that commit within the window count: with
# 200 pairs a call on a slower machine took 8 s, once longer than the window itself (no write counted).
FLOOD_SECONDS=20 FLOOD_WRITERS=3 FLOOD_BATCH=50
FL=$R/flood.txt
: > $FL; : > $R/flood-threads.txt
HZ=$(getconf CLK_TCK 2>/dev/null) || HZ=
HZ=${HZ:-100}     # busybox has no getconf: USER_HZ, 100 on x86 Linux
XSD=$(cat /run/xenstore.pid 2>/dev/null)
ticks() { sed 's/^.*) //' /proc/$1/stat 2>/dev/null | awk '{print $12 + $13}'; }   # utime + stime of pid $1
busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }           # dom0's busy ticks, all vCPUs
rss() { awk '$1 == "VmRSS:" {print $2}' /proc/$1/status 2>/dev/null; }
threads() {   # threads WINDOW start|end: "WINDOW start|end tid name ticks" of each of the daemon's threads
    awk -v w="$1 $2" '{t = $1; c = $0; sub(/^[0-9]+ \(/, "", c); sub(/\) [A-Z] .*$/, "", c); gsub(/ /, "_", c)
                       r = $0; sub(/^.*\) [A-Z] /, "", r); split(r, f, " "); print w, t, c, f[11] + f[12]}' \
        /proc/$DAEMON/task/*/stat >> $R/flood-threads.txt 2>/dev/null
}
# The wall clock to within a fork (busybox date has no %N; the store's times have fractions): the
# uptime at which a second began.
u0=$(date +%s) n=0
while [ "$(date +%s)" = "$u0" ] && [ $n -lt 100 ]; do n=$((n + 1)); done
UNIX0=$(date +%s) UP0=$(up)
unix_now() { awk -v b="$UNIX0" -v u0="$UP0" -v u="$(up)" 'BEGIN {printf "%.2f", b + u - u0}'; }
flood_writer() {   # flood_writer PATH LINE LOG: until /run/flood.stop exists (120 s at most); "uptime writes rc" a call
    local p=$1 line=$2 log=$3 i=0 u t0 rc
    read -r t0 _ < /proc/uptime
    set --
    while [ $i -lt $FLOOD_BATCH ]; do set -- "$@" "$p" "$line"; i=$((i + 1)); done
    while [ ! -e /run/flood.stop ]; do
        timeout 30 xenstore-write "$@" > /dev/null 2>&1; rc=$?
        read -r u _ < /proc/uptime
        echo "$u $FLOOD_BATCH $rc" >> "$log"
        [ "${u%.*}" -ge $(( ${t0%.*} + 120 )) ] && break
    done
}
window() {   # window NAME: FLOOD_SECONDS of CPU figures and watch events on FP, as NAME_* lines of flood.txt
    local w t0 s0 a0 x0 b0 t1 s1 a1 x1 b1 n
    xenstore-watch "$FP" > /run/flood-watch-$1.txt 2>/dev/null &
    w=$!
    sleep 1
    t0=$(up) s0=$(unix_now) a0=$(ticks $DAEMON) x0=$(ticks "$XSD") b0=$(busy)
    threads $1 start
    sleep $FLOOD_SECONDS
    t1=$(up) s1=$(unix_now) a1=$(ticks $DAEMON) x1=$(ticks "$XSD") b1=$(busy)
    threads $1 end
    kill $w 2>/dev/null; wait $w 2>/dev/null
    n=$(( $(wc -l < /run/flood-watch-$1.txt) - 1 ))    # less the watch's first event
    cat >> $FL <<WIN
$1_start=$s0
$1_end=$s1
$1_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
$1_arbiter_ticks=$(( ${a1:-0} - ${a0:-0} ))
$1_xenstored_ticks=$(( ${x1:-0} - ${x0:-0} ))
$1_dom0_busy_ticks=$(( ${b1:-0} - ${b0:-0} ))
$1_watch_events=$n
$1_up_start=$t0
$1_up_end=$t1
WIN
}
fget() { sed -n "s/^$1=//p" $FL | tail -1; }
pct() { awk -v t="$(fget $1_$2_ticks)" -v s="$(fget $1_seconds)" -v hz="$HZ" 'BEGIN {if (s > 0) printf "%.1f", 100 * t / hz / s; else print "-"}'; }

W3=$(xid web3)
wait_up web3 60
FP=/local/domain/$W3/data/pressure
LINE=$(xenstore-read "$FP" 2>/dev/null)
{
    echo "clk_tck=$HZ"
    echo "writers=$FLOOD_WRITERS"
    echo "batch=$FLOOD_BATCH"
    echo "guest=web3"
    echo "domid=$W3"
    echo "line_bytes=${#LINE}"
    echo "daemon_pid=$DAEMON"
    echo "daemon_comm=$(cat /proc/$DAEMON/comm 2>/dev/null)"
    echo "xenstored_pid=$XSD"
    echo "xenstored_comm=$(cat /proc/$XSD/comm 2>/dev/null)"
    echo "dom0_vcpus=$(grep -c '^processor' /proc/cpuinfo)"
    echo "rss_kib_before=$(rss $DAEMON)"
} >> $FL
if [ -z "$W3" ] || [ -z "$LINE" ] || [ ${#LINE} -ge 1024 ]; then
    problem "flood: no report line of web3 to rewrite (domid '${W3:-none}', ${#LINE} bytes)"
else
    ev "flood: baseline, ${FLOOD_SECONDS} s without a flood (web3 domid $W3, its line ${#LINE} bytes)"
    window idle
    rm -f /run/flood.stop /run/flood-writer-*.txt
    echo "writers_start=$(unix_now)" >> $FL
    WPIDS=
    i=0
    while [ $i -lt $FLOOD_WRITERS ]; do
        flood_writer "$FP" "$LINE" /run/flood-writer-$i.txt &
        WPIDS="$WPIDS $!"
        i=$((i + 1))
    done
    ev "flood: $FLOOD_WRITERS writers rewrite $FP, $FLOOD_BATCH writes per call"
    sleep 2
    window flood
    touch /run/flood.stop
    t0=$(up)
    for p in $WPIDS; do
        while kill -0 $p 2>/dev/null; do
            [ "$(elapsed "$t0")" -ge 40 ] && { problem "flood: writer $p still running 40 s after the stop"; kill $p; break; }
            sleep 0.2
        done
        wait $p 2>/dev/null
    done
    echo "writers_stop=$(unix_now)" >> $FL
    FS=$(fget flood_up_start) FE=$(fget flood_up_end)
    # writes done by calls that ended within the flood window; calls that failed; all calls
    cat /run/flood-writer-*.txt > $R/flood-writes.txt 2>/dev/null
    awk -v a="$FS" -v b="$FE" '$1 >= a && $1 <= b && $3 == 0 {w += $2} $3 != 0 {f++} {n++}
        END {printf "flood_writes=%d\ncalls=%d\ncalls_failed=%d\n", w, n, f}' $R/flood-writes.txt >> $FL
    echo "writes_per_s=$(awk -v w="$(fget flood_writes)" -v s="$(fget flood_seconds)" 'BEGIN {if (s > 0) printf "%.0f", w / s; else print 0}')" >> $FL
    for n in idle flood; do
        echo "${n}_events_per_s=$(awk -v e="$(fget ${n}_watch_events)" -v s="$(fget ${n}_seconds)" 'BEGIN {if (s > 0) printf "%.1f", e / s; else print 0}')"
        echo "${n}_arbiter_cpu_pct=$(pct $n arbiter)"
        echo "${n}_xenstored_cpu_pct=$(pct $n xenstored)"
        echo "${n}_dom0_cpu_pct=$(pct $n dom0_busy)"
    done >> $FL
    echo "rss_kib_after=$(rss $DAEMON)" >> $FL
    sleep 3
    if kill -0 "$DAEMON" 2>/dev/null; then echo "daemon_alive_after=yes" >> $FL
    else echo "daemon_alive_after=no" >> $FL; problem "daemon 2 is not running after the flood"; fi
    for n in heavy light web3; do timeout 20 arbiter history $n --since 60s --db $STORE > $R/flood-history-$n.txt 2>&1; done
    ev "flood: $(fget writes_per_s) writes/s ($(fget flood_events_per_s) watch events/s seen by a second watcher); daemon CPU $(fget idle_arbiter_cpu_pct) % of a core without, $(fget flood_arbiter_cpu_pct) % with; oxenstored $(fget idle_xenstored_cpu_pct) / $(fget flood_xenstored_cpu_pct) %; dom0 $(fget idle_dom0_cpu_pct) / $(fget flood_dom0_cpu_pct) % (of one vCPU, 2 in all)"
fi

alive 2 "the end"
snap end
stop_daemon 2
kill $SAMPLER 2>/dev/null
xl list > $R/xl-list-final.txt
xl info > $R/xl-info-final.txt
for n in idle hungry silent hostile web web2 heavy light web3; do
    cp /var/log/xen/console/guest-$n.log $R/console-$n.log 2>/dev/null
    cp /var/log/xen/xl-$n.log $R/xl-monitor-$n.log 2>/dev/null
done
# The store, closed by the daemon's clean exit; copy the WAL too in case it was not.
for f in $STORE*; do cp "$f" $R/; done
ev "scenario end"
exit $FAILED
