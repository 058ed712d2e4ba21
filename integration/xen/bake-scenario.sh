#!/bin/sh
# The bake-off on real Xen, run by dom0-init (as /scenario.sh) once the toolstack is up; started by
# `integration/xen/run.sh --scenario bake`, which writes /results/bake.env and prints the table
# (bake-table.sh). For each policy in BAKE_POLICIES, on fresh guests with the same seed:
#   four PV guests g1-g4 (BAKE_BOOT MiB, maxmem BAKE_MAXMEM), each with a disk of its own (qemu virtio
#   drive vda-vdd in dom0, given as xvda through blkback: swap area + the file set), role bake;
#   once all four are ready, the daemon with `policy = "P"` (bake.toml) and a new decision database;
#   3 s later dom0 writes data/bake-go to all four at once; each replays its row of
#   bake-trace.csv (BAKE_SAMPLES samples, BAKE_STEP s apart) and writes its BAKE-RESULT to data/bake;
#   meanwhile dom0 records every 2 s each guest's memory (xl list) and target, and every change of
#   memory/target (a watch);
#   then the daemon is stopped, its database copied, the guests destroyed.
# Everything goes to /results/P/ (samples.txt, targets-G.txt, result-G.txt, state.txt, consoles, the
# database); bake-table.sh turns it into the table.
export PATH=/usr/local/bin:/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
R=/results
. $R/bake.env
up() { cut -d' ' -f1 /proc/uptime; }
ev() { echo "E2E $(up) $*" | tee -a $R/events.log; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN {print int(b - a)}'; }
FAILED=0
problem() { ev "PROBLEM $*"; FAILED=1; }
GUESTS="g1 g2 g3 g4"
disk_of() { case $1 in g1) echo vda ;; g2) echo vdb ;; g3) echo vdc ;; g4) echo vdd ;; esac; }
anon_of() { echo "$BAKE_ANON" | tr ' ' '\n' | sed -n "s/^$1://p"; }

cfg() {   # cfg NAME: /run/NAME.cfg
    cat > /run/$1.cfg <<CFG
name="$1"
type="pv"
kernel="/guest/kernel"
ramdisk="/guest/initrd"
extra="console=hvc0 rdinit=/init mitigations=off loglevel=4 arbiter.role=bake arbiter.bake_vm=$1 arbiter.bake_anon=$(anon_of $1) arbiter.bake_step=$BAKE_STEP arbiter.bake_samples=$BAKE_SAMPLES arbiter.bake_seed=$BAKE_SEED arbiter.bake_swap=$BAKE_SWAP_MIB"
memory=$BAKE_BOOT
maxmem=$BAKE_MAXMEM
vcpus=1
disk=["phy:/dev/$(disk_of $1),xvda,w"]
on_poweroff="destroy"
on_reboot="destroy"
on_crash="preserve"
CFG
}
domid() { xl domid "$1" 2>/dev/null; }
# every change of PATH's value, stamped with dom0 uptime (a watch fires on every write, changed or not)
watch_changes() {   # watch_changes PATH FILE
    xenstore-watch "$1" | while read -r p; do
        read -r u _ < /proc/uptime
        echo "$u $(xenstore-read "$p" 2>/dev/null)"
    done > "$2" &
}

run_policy() {
    P=$1 D=$R/$1
    mkdir -p $D
    CONF=/run/arbiter/bake-$P.toml DB=/run/arbiter/bake-$P.sqlite
    # POLICY-reserve0: POLICY with [share] host_reserve and slack 0 (memory the arbiter holds back for
    # VM builds and spikes; static hands out everything)
    case $P in
        *-reserve0) POL=${P%-reserve0} SEDX='s/^\(slack\|host_reserve\) = .*/\1 = "0M"/' ;;
        *) POL=$P SEDX= ;;
    esac
    { sed "$SEDX" /etc/arbiter/bake.toml; echo "policy = \"$POL\""; echo "database = \"$DB\""; } > $CONF
    rm -f $DB*
    t0=$(up)
    for g in $GUESTS; do
        cfg $g
        xl create /run/$g.cfg > $D/xl-create-$g.log 2>&1 || problem "$P: xl create $g failed: $(tail -3 $D/xl-create-$g.log | tr '\n' ' ')"
    done
    ev "$P: guests created in $(elapsed $t0) s"
    WATCHERS=
    for g in $GUESTS; do
        id=$(domid $g); [ -n "$id" ] || continue
        echo "$g $id" >> $D/domids.txt
        watch_changes /local/domain/$id/memory/target $D/targets-$g.txt
    done
    # all ready (disk found, swap on, schedule read), then all go at once
    t0=$(up)
    for g in $GUESTS; do
        id=$(domid $g); [ -n "$id" ] || continue
        until [ "$(xenstore-read /local/domain/$id/data/bake-ready 2>/dev/null)" = 1 ]; do
            [ "$(elapsed $t0)" -ge 240 ] && { problem "$P: $g not ready within 240 s"; break; }
            sleep 1
        done
    done
    ev "$P: guests ready after $(elapsed $t0) s"
    # The daemon starts once the four guests are up: every policy meets the same four from its first
    # round (static, started before them, splits the host among those it has seen and leaves too little
    # for the last build).
    arbiter daemon --config $CONF >> $D/arbiter.log 2>&1 &
    DAEMON=$!
    ev "$P: daemon started pid=$DAEMON; Xen free $(xl info | awk '$1 == "free_memory" {print $3}') MiB"
    sleep 3
    kill -0 $DAEMON 2>/dev/null || problem "$P: daemon not running 3 s after its start"
    xl list > $D/xl-list-go.txt
    ( while :; do
        u=$(up)
        xl list 2>/dev/null | awk -v u="$u" 'NR > 1 && $1 != "Domain-0" {print u, $1, $2, $3, $5}' | while read -r u n id mem st; do
            echo "$u $n $mem $(xenstore-read /local/domain/$id/memory/target 2>/dev/null) $(xenstore-read /local/domain/$id/memory/static-max 2>/dev/null) $st"
        done
        sleep 2
      done >> $D/samples.txt ) &
    SAMPLER=$!
    # each guest's reporter line at go and at the end: its PSI and vmstat counters (bake-table.sh falls
    # back on them for a guest whose workload never finished)
    for g in $GUESTS; do id=$(domid $g) && [ -n "$id" ] && xenstore-read /local/domain/$id/data/pressure > $D/report-go-$g.txt 2>/dev/null; done
    GO=$(up)
    for g in $GUESTS; do id=$(domid $g) && [ -n "$id" ] && xenstore-write /local/domain/$id/data/bake-go 1; done
    echo "go $GO" > $D/times.txt
    ev "$P: go"
    # the workload's length, then until every guest has written its result (or is gone)
    LEN=$(awk -v n=$BAKE_SAMPLES -v s=$BAKE_STEP 'BEGIN {print int(n * s)}')
    sleep $LEN
    for g in $GUESTS; do
        id=$(domid $g)
        until [ -z "$id" ] || xenstore-exists /local/domain/$id/data/bake 2>/dev/null; do
            [ "$(elapsed $GO)" -ge $((LEN + 120)) ] && break
            xl list $g 2>/dev/null | awk 'NR == 2 {exit $5 !~ /c/}' && break   # crashed
            sleep 2
        done
    done
    END=$(up)
    echo "end $END" >> $D/times.txt
    kill $SAMPLER 2>/dev/null
    xl list > $D/xl-list-end.txt
    for g in $GUESTS; do
        id=$(domid $g)
        st=$(xl list $g 2>/dev/null | awk 'NR == 2 {print $5}')
        echo "$g domid=${id:-none} state=${st:-gone}" >> $D/state.txt
        [ -n "$id" ] && xenstore-read /local/domain/$id/data/bake > $D/result-$g.txt 2>/dev/null
        [ -n "$id" ] && xenstore-read /local/domain/$id/data/pressure > $D/report-end-$g.txt 2>/dev/null
    done
    ev "$P: end after $(elapsed $GO) s: $(tr '\n' ' ' < $D/state.txt)"
    kill -TERM $DAEMON 2>/dev/null
    t0=$(up)
    while kill -0 $DAEMON 2>/dev/null; do
        [ "$(elapsed $t0)" -ge 60 ] && { problem "$P: daemon still running 60 s after SIGTERM"; kill -KILL $DAEMON; break; }
        sleep 0.2
    done
    wait $DAEMON; ev "$P: daemon stopped rc=$?"
    for g in $GUESTS; do xl destroy $g > /dev/null 2>&1; done
    # the watchers end with their domain's nodes; make sure
    for p in /proc/[0-9]*; do
        case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in "xenstore-watch /local/domain/"*) kill ${p#/proc/} 2>/dev/null ;; esac
    done
    for g in $GUESTS; do cp /var/log/xen/console/guest-$g.log $D/console-$g.log 2>/dev/null; done
    for f in $DB*; do cp "$f" $D/; done
    rm -f /var/log/xen/console/guest-g*.log
    t0=$(up)
    while xl list 2>/dev/null | grep -q '^g[1-4] '; do
        [ "$(elapsed $t0)" -ge 60 ] && { problem "$P: guests not gone 60 s after xl destroy"; break; }
        sleep 1
    done
    ev "$P: guests destroyed; Xen free $(xl info | awk '$1 == "free_memory" {print $3}') MiB"
}

# The block hotplug script's lock stats /dev/stdin (and loops until that works); devtmpfs has no such links.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
for i in 0:stdin 1:stdout 2:stderr; do [ -e /dev/${i#*:} ] || ln -s /proc/self/fd/${i%%:*} /dev/${i#*:}; done
ev "bake start unix=$(date +%s) policies=$BAKE_POLICIES samples=$BAKE_SAMPLES step=$BAKE_STEP seed=$BAKE_SEED"
xl info > $R/xl-info-start.txt
ls -la /dev/vd* > $R/dom0-disks.txt 2>&1
for P in $BAKE_POLICIES; do run_policy $P; done
cp /var/log/xen/xen-hotplug.log $R/ 2>/dev/null
ev "bake end"
exit $FAILED
