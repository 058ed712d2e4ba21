#!/usr/bin/env bash
# Builds the boot artefacts of the end-to-end run into $OUT from Debian packages and the project's own
# packages (scripts/package.sh: static Swift stdlib, so neither image needs a Swift runtime):
#   $OUT/xen         Xen 4.17, gunzipped (qemu's multiboot loader reads ELF, not gzip)
#   $OUT/vmlinux     the Debian kernel as a plain ELF: dom0's kernel and every guest's (an xz bzImage
#                    costs ~10 s of TCG time in each domain build)
#   $OUT/guest.cpio.gz  busybox + xenstore-utils + the arbiter-reporter package + guest-init (one image;
#                    the role comes from the guest's kernel command line)
#   $OUT/dom0.cpio   busybox + Xen toolstack + the arbiter package + the run's config + the guest payload
#                    + dom0-init
# Usage: images.sh OUT DEBS   (DEBS holds arbiter_*.deb and arbiter-reporter_*.deb from scripts/package.sh)
# The packages go in with `dpkg-deb -x`: their files, at the paths and modes dpkg would install
# (/usr/sbin/arbiter, /etc/arbiter/config.toml, the units, the manual pages), so the package itself is
# what runs. Not `dpkg --root`: these busybox roots have no dpkg database, their libraries come from the
# host by ldd (not as packages dpkg could check the Depends against), and the maintainer scripts only
# enable systemd units, which an init-less root has no use for.
# SCENARIO=bake (run.sh --scenario bake) adds the bake-off's payload: blkfront, the workload (bake-work,
# built here: static C) and its trace in the guest; virtio-blk, blkback, bash and flock (the block
# hotplug script's) and bake-scenario.sh as /scenario.sh in dom0.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$1 DEBS=$2
KVER=${KVER:-$(ls /lib/modules | sort -V | tail -1)}
XENGZ=${XENGZ:-$(ls /boot/xen-4.*-amd64.gz | sort -V | tail -1)}
XENBIN=/usr/lib/xen-4.17/bin
mkdir -p "$OUT"

# copy a file to the same path under root $1 (symlinks dereferenced)
put() { mkdir -p "$1$(dirname "$2")" && cp -L "$2" "$1$2"; }
# the shared libraries ldd names for ELF $2 into root $1 (into /lib/x86_64-linux-gnu: no merged /usr here)
put_libs() {
    local root=$1 lib
    for lib in $(ldd "$2" | awk '/=>/ {print $3} /^\t\/lib64/ {print $1}'); do
        case $lib in
            /lib64/*) put "$root" "$lib" ;;
            /*) cp -Ln "$lib" "$root/lib/x86_64-linux-gnu/" ;;
        esac
    done
}
# an ELF program plus its shared libraries
put_elf() {
    local root=$1 src=$2 dst=${3:-$2}
    mkdir -p "$root$(dirname "$dst")" && cp -L "$src" "$root$dst"
    put_libs "$root" "$src"
}
# a package of ours (DEBS/NAME_*.deb) unpacked into root $1, with the libraries its program $3 needs
put_deb() {
    local debs=("$DEBS"/"$2"_*.deb)
    [ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || { echo "images: want one $DEBS/$2_*.deb, have: ${debs[*]}" >&2; exit 1; }
    dpkg-deb -x "${debs[0]}" "$1"
    put_libs "$1" "$1$3"
}
skeleton() {
    local root=$1 a
    rm -rf "$root" && mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,var,mnt,root,lib/x86_64-linux-gnu,lib64,usr/bin,usr/sbin,usr/local/bin}
    cp /bin/busybox "$root/bin/busybox"
    for a in $(/bin/busybox --list); do [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"; done
    # The kernel's orderly_poweroff() execs /sbin/poweroff.
    for a in poweroff reboot halt init insmod; do ln -sf ../bin/busybox "$root/sbin/$a"; done
    # glibc dlopen()s libgcc_s for pthread_cancel; ldd does not list it.
    cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$root/lib/x86_64-linux-gnu/"
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'root:x:0:' > "$root/etc/group"
    ln -sf /proc/mounts "$root/etc/mtab"
}
xenstore_utils() {   # /usr/bin/xenstore dispatches on argv[0]
    local t
    put_elf "$1" /usr/bin/xenstore
    for t in read write ls list rm exists chmod watch; do ln -sf xenstore "$1/usr/bin/xenstore-$t"; done
}
cpio_of() { (cd "$1" && find . -print0 | cpio --null -o -H newc --quiet); }
# the xz payload of a bzImage as an ELF (what linux/scripts/extract-vmlinux does)
vmlinux_of() {
    local sects off len
    sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$1" | tr -d ' '); [ "$sects" = 0 ] && sects=4
    off=$(od -An -tu4 -j $((0x248)) -N4 "$1" | tr -d ' ')
    len=$(od -An -tu4 -j $((0x24c)) -N4 "$1" | tr -d ' ')
    dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip=$(( (sects + 1) * 512 + off )) count="$len" status=none \
        | xz -dc --single-stream > "$2"
    [ "$(head -c 4 "$2" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || { echo "images: no ELF in $1" >&2; exit 1; }
}

zcat "$XENGZ" > "$OUT/xen"
[ "$OUT/vmlinux" -nt "/boot/vmlinuz-$KVER" ] || vmlinux_of "/boot/vmlinuz-$KVER" "$OUT/vmlinux"

# --- guest -----------------------------------------------------------------------------------------
G=$OUT/rootfs-guest
skeleton "$G"
xenstore_utils "$G"
put_deb "$G" arbiter-reporter /usr/sbin/arbiter-reporter
install -m 755 "$HERE/guest-init" "$G/init"
# kernel modules into root $1's /etc/$2, in dependency order, from the modules $3...
modules_of() {
    local root=$1 list=$2 m ko; shift 2; : > "$root/etc/$list"
    for m in "$@"; do
        for ko in $(modprobe --show-depends -S "$KVER" "$m" | awk '$1 == "insmod" {print $2}'); do
            cat "$root"/etc/modules.* | grep -qxF "$ko" || { put "$root" "$ko"; echo "$ko" >> "$root/etc/$list"; }
        done
    done
}
if [ "${SCENARIO:-}" = bake ]; then
    modules_of "$G" modules.blk xen-blkfront
    gcc -O2 -static -Wall -o "$G/usr/local/bin/bake-work" "$HERE/bake-work.c"
    strip "$G/usr/local/bin/bake-work"
    mkdir -p "$G/bake" && cp "$HERE/bake-trace.csv" "$G/bake/trace.csv"
fi
cpio_of "$G" | gzip -1 > "$OUT/guest.cpio.gz"

# --- dom0 ------------------------------------------------------------------------------------------
D=$OUT/rootfs-dom0
skeleton "$D"
# `arbiter start` runs `/usr/bin/env xl create …`; busybox's links are only in /bin.
ln -sf ../../bin/busybox "$D/usr/bin/env"
xenstore_utils "$D"
for b in xl xenstored oxenstored xenconsoled xen-init-dom0 libxl-save-helper; do put_elf "$D" "$XENBIN/$b"; done
mkdir -p "$D/etc/xen" && cp -a /etc/xen/. "$D/etc/xen/"
mkdir -p "$D"/var/{lib/xen,lib/xenstored,log/xen/console,lock}
put_deb "$D" arbiter /usr/sbin/arbiter
mkdir -p "$D/etc/arbiter" && cp "$HERE/arbiter.toml" "$D/etc/arbiter/arbiter.toml"
# kernel modules in dependency order: the toolstack's, then virtio 9p for the results share
modules_of "$D" modules.xen xenfs xen-evtchn xen-privcmd xen-gntdev xen-gntalloc
modules_of "$D" modules.9p virtio_pci 9pnet_virtio 9p
mkdir -p "$D/guest"
cp "$OUT/vmlinux" "$D/guest/kernel"
cp "$OUT/guest.cpio.gz" "$D/guest/initrd"
install -m 755 "$HERE/dom0-init" "$D/init"
if [ "${SCENARIO:-}" = bake ]; then
    # the guests' disks (qemu virtio drives) go to them through blkback; libxl runs the block hotplug
    # script, which is bash and takes its lock with flock(1)
    modules_of "$D" modules.blk virtio_blk xen-blkback
    put_elf "$D" /bin/bash
    put_elf "$D" /usr/bin/flock
    install -m 755 "$HERE/bake-scenario.sh" "$D/scenario.sh"
    cp "$HERE/bake.toml" "$D/etc/arbiter/bake.toml"
else
    install -m 755 "$HERE/scenario.sh" "$D/scenario.sh"
fi
cpio_of "$D" > "$OUT/dom0.cpio"     # uncompressed: qemu copies it in, nobody decompresses it under TCG
rm -rf "$G" "$D"
ls -la "$OUT"
