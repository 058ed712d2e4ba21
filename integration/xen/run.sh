#!/usr/bin/env bash
# The arbiter on real Xen, end to end: Xen 4.17 + a Debian dom0 + four PV guests booted under
# qemu-system-x86_64 (TCG: no hardware virtualisation needed), the `arbiter` daemon from its Debian
# package in dom0 on the real libxl/xenstore, `arbiter-reporter` from its package in the guests. Exits 0 only if every check in
# check.sh passed. Needs root for apt; everything else lives under .build-xen/ (kept after the run:
# console.log, results/ with the decision database, the daemon logs, xl samples and guest consoles).
#   integration/xen/run.sh               install what is missing, build, boot, check
#   integration/xen/run.sh --check-only  re-run the checks on the last results
#   integration/xen/run.sh --scenario bake [--check-only]   the policy bake-off instead (bake-scenario.sh;
#                                        its table from bake-table.sh; work dir .build-xen-bake)
# Knobs (env): TIMEOUT=1500 (s, hard cap on qemu: the scenario ran out of 900 s on a slower 2-core machine)  QEMU_MEM=1856 (MiB)  DOM0_MEM=768M  SMP=2
# (dom0 holds its 150 MB initramfs twice while unpacking it: packed and unpacked)
# The bake-off's: BAKE_SAMPLES=30 (trace samples, 90 at most: the full run)  BAKE_STEP=4 (s a sample)
# BAKE_POLICIES="arbiter qmemman squeezed mom static"  BAKE_SEED=1  QEMU_MEM=1536 (a tighter host)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCENARIO=e2e
if [ "${1:-}" = --scenario ]; then SCENARIO=${2:?--scenario e2e|bake}; shift 2; fi
case $SCENARIO in
    e2e) WORK=${WORK:-$ROOT/.build-xen} ;;
    bake)
        WORK=${WORK:-$ROOT/.build-xen-bake}
        BAKE_SAMPLES=${BAKE_SAMPLES:-30} BAKE_STEP=${BAKE_STEP:-4} BAKE_SEED=${BAKE_SEED:-1}
        BAKE_POLICIES=${BAKE_POLICIES:-arbiter qmemman squeezed mom static}
        # per policy: about 60 s of guest boots and teardown beside the workload (480 s allowed: a slower machine takes several times as long)
        TIMEOUT=${TIMEOUT:-$(awk -v n="$BAKE_SAMPLES" -v s="$BAKE_STEP" -v p="$(echo $BAKE_POLICIES | wc -w)" \
            'BEGIN {print int(240 + p * (n * s + 480))}')}
        QEMU_MEM=${QEMU_MEM:-1536} ;;
    *) echo "run.sh: unknown scenario $SCENARIO (e2e, bake)" >&2; exit 64 ;;
esac
OUT=$WORK/out RES=$WORK/results
TIMEOUT=${TIMEOUT:-1500} QEMU_MEM=${QEMU_MEM:-1856} DOM0_MEM=${DOM0_MEM:-768M} SMP=${SMP:-2}
T0=$SECONDS
phase() { echo "### $* (at $((SECONDS - T0)) s)"; }
# what judges the results: check.sh (pass/fail), or the bake-off's table
judge() { if [ $SCENARIO = bake ]; then "$HERE/bake-table.sh" "$@"; else "$HERE/check.sh" "$@"; fi; }

if [ "${1:-}" = --check-only ]; then judge "$RES"; exit; fi

phase "packages"
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
ls /boot/xen-4.17-amd64.gz >/dev/null 2>&1 || need+=(xen-hypervisor-4.17-amd64)
[ -x /usr/lib/xen-4.17/bin/xl ] || need+=(xen-utils-4.17)
command -v xenstore >/dev/null || need+=(xenstore-utils)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx tr || need+=(busybox-static)
for p in cpio:cpio modprobe:kmod xz:xz-utils sqlite3:sqlite3 strip:binutils; do
    command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
# the bake-off's workload is static C (images.sh builds it); its table runs python3 for the simulator's JSON
[ $SCENARIO = bake ] && { command -v gcc >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(gcc libc6-dev); }
[ $SCENARIO = bake ] && { command -v python3 >/dev/null || need+=(python3); }
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    # Package scripts must not start Xen daemons on this (non-Xen) machine.
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"
fi

phase "build and package (release, static Swift stdlib: the arbiter and arbiter-reporter .debs)"
cd "$ROOT"
# setup.sh's packages (libxen-dev ...), the release build, then the Debian packages the images install
./scripts/package.sh "$ROOT/.build/debian"

phase "images"
SCENARIO=$SCENARIO "$HERE/images.sh" "$OUT" "$ROOT/.build/debian" | tail -6

phase "boot Xen + dom0 under qemu (TCG), run the scenario"
rm -rf "$RES" && mkdir -p "$RES"
DRIVES=()
if [ $SCENARIO = bake ]; then
    # Each guest's disk, a sparse file here: a swap area (made here, with the host's mkswap) and the file
    # set after it. dom0 sees them as virtio drives vda-vdd and hands each to its guest through blkback.
    SWAP_MIB=256 DATA_MIB=320
    mkdir -p "$WORK/disks"
    for g in g1 g2 g3 g4; do
        rm -f "$WORK/disks/$g.img"
        truncate -s $((SWAP_MIB + DATA_MIB))M "$WORK/disks/$g.img"
        mkswap -q "$WORK/disks/$g.img" $((SWAP_MIB * 1024)) > /dev/null 2>&1 || { echo "mkswap $g failed"; exit 1; }
        DRIVES+=(-drive "file=$WORK/disks/$g.img,format=raw,if=virtio,cache=unsafe")
    done
    cat > "$RES/bake.env" <<ENV
BAKE_SAMPLES=$BAKE_SAMPLES
BAKE_STEP=$BAKE_STEP
BAKE_SEED=$BAKE_SEED
BAKE_POLICIES="$BAKE_POLICIES"
BAKE_SWAP_MIB=$SWAP_MIB
BAKE_BOOT=${BAKE_BOOT:-160}
BAKE_MAXMEM=${BAKE_MAXMEM:-384}
BAKE_ANON="g1:0.7 g2:0.5 g3:0.3 g4:0.6"
ENV
fi
XEN_CMD="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all console_timestamps=boot"
XEN_CMD+=" dom0_mem=$DOM0_MEM,max:$DOM0_MEM dom0_max_vcpus=$SMP noreboot spec-ctrl=no xpti=no"
DOM0_CMD="console=hvc0 earlyprintk=xen rdinit=/init mitigations=off loglevel=5"   # no commas: -initrd splits on them
RUN_ID=arbiter-e2e-$$-$RANDOM    # names this run's qemu, so that only it is ever killed
QEMU=(qemu-system-x86_64 -name "$RUN_ID" -accel tcg,thread=multi,tb-size=256 -cpu qemu64 -smp "$SMP" -m "$QEMU_MEM"
      -nographic -no-reboot -monitor none -serial stdio -net none
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -virtfs "local,path=$RES,mount_tag=results,security_model=none" "${DRIVES[@]}"
      -kernel "$OUT/xen" -append "$XEN_CMD"
      -initrd "$OUT/vmlinux $DOM0_CMD,$OUT/dom0.cpio")
LOG=$WORK/console.log
echo "# ${QEMU[*]}" > "$LOG"
start=${EPOCHREALTIME/./}
set +e
timeout "$TIMEOUT" "${QEMU[@]}" < /dev/null 2>&1 | while IFS= read -r line; do
    line=${line%$'\r'}
    us=$(( ${EPOCHREALTIME/./} - start ))
    printf '[%4d.%03d] %s\n' $((us / 1000000)) $((us % 1000000 / 1000)) "$line" >> "$LOG"
    case $line in
        *E2E*|*"Xen version"*|*"(XEN)"*"Panic on CPU"*|*"(XEN)"*"Dom0 crashed"*)
            printf '[%4d] %s\n' $((us / 1000000)) "$line" ;;
    esac
    case $line in
        # Xen itself died: nothing more will come (a guest's "Kernel panic" is not this)
        *"(XEN)"*"Panic on CPU"*|*"(XEN)"*"Dom0 crashed"*) pkill -f "$RUN_ID" ;;
        # dom0 ends qemu through isa-debug-exit; should that fail, do not wait for the timeout
        *E2E-DONE*) ( sleep 15; pkill -f "$RUN_ID" ) > /dev/null 2>&1 & ;;
    esac
done
qrc=${PIPESTATUS[0]}
set -e
echo "qemu exit $qrc (1 = scenario ran to its end, 3 = it could not, 124 = timed out after $TIMEOUT s); console: $LOG"
if ! grep -q 'E2E-DONE' "$LOG"; then
    echo "FAIL: the scenario did not finish; last console lines:"; tail -40 "$LOG"; exit 1
fi

phase "checks"
rc=0
judge "$RES" || rc=$?
if [ "$rc" != 0 ] && [ $SCENARIO = e2e ]; then
    echo "--- events (dom0)"; cat "$RES/events.log"
    for f in "$RES"/arbiter-*.log; do echo "--- $f (tail)"; tail -15 "$f"; done
fi
phase "done rc=$rc"
exit $rc
