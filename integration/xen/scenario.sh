#!/bin/sh
# The end-to-end scenario, run by dom0-init once the toolstack is up. Everything it records goes to
# /results (the host's folder over 9p); the checks run on the host (check.sh). Every wait is bounded.
#   idle     448M (static-max 448M), reporter only            → shrunk, paced, never below its floor
#   hungry   160M (static-max 640M), reporter + growing hog  → grown with memory idle gave back
#   silent   192M (static-max 384M), no reporter              → held
#   hostile  160M (static-max 256M), writes garbage reports   → rejected and recorded, held
# The arbiter starts before the guests (it meets them through @introduceDomain) and is restarted
# (SIGTERM, start again on the same database) while idle is still shrinking.
export PATH=/usr/local/bin:/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
R=/results
up() { cut -d' ' -f1 /proc/uptime; }
ev() { echo "E2E $(up) $*" | tee -a $R/events.log; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN {print int(b - a)}'; }
FAILED=0
problem() { ev "PROBLEM $*"; FAILED=1; }

DAEMON=
start_daemon() {
    arbiter daemon --config /etc/arbiter/arbiter.toml >> $R/arbiter-$1.log 2>&1 &
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

guest() {   # guest NAME ROLE MEMORY MAXMEM [EXTRA]
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
on_crash="preserve"
CFG
    t=$(up)
    if xl create /run/$1.cfg > $R/xl-create-$1.log 2>&1; then
        id=$(xl domid "$1")
        echo "$1 $id $2 $3 $4" >> $R/guests.txt
        ev "guest $1 created domid=$id in $(elapsed "$t") s"
    else
        problem "xl create $1 failed"
    fi
}
domid() { awk -v n="$1" '$1 == n {print $2}' $R/guests.txt; }
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

: > $R/guests.txt
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
alive 2 "the end"
stop_daemon 2
kill $SAMPLER 2>/dev/null

xl list > $R/xl-list-end.txt
xl info > $R/xl-info-end.txt
for n in idle hungry silent hostile; do
    id=$(domid $n)
    [ -n "$id" ] && xenstore-ls -fp /local/domain/$id > $R/xenstore-$n.txt 2>&1
    cp /var/log/xen/console/guest-$n.log $R/console-$n.log 2>/dev/null
done
# The store, closed by the daemon's clean exit; copy the WAL too in case it was not.
for f in /run/arbiter/decisions.sqlite*; do cp "$f" $R/; done
ev "scenario end"
exit $FAILED
