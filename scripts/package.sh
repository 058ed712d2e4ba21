#!/usr/bin/env bash
# Builds the Debian packages (Debian 12 / bookworm, the dom0's and the guests' distribution) into OUT:
#   arbiter_V_ARCH.deb           dom0: /usr/sbin/arbiter, /etc/arbiter/config.toml (conffile, every key at
#                                its default), /var/lib/arbiter, arbiter.service, arbiter(8), arbiter.toml(5),
#                                bash/zsh/fish completions
#   arbiter-reporter_V_ARCH.deb  guests: /usr/sbin/arbiter-reporter, arbiter-reporter.service, arbiter-reporter(8)
# The version is written once, ArbiterRelease.version (Sources/GuestModel/Release.swift), and read here
# from the built binaries; dist/debian/changelog's first entry must name it, and its date is the build's
# SOURCE_DATE_EPOCH (manual page dates, file times). The manual pages are generated here from the
# binaries being packaged, so they cannot describe another build: arbiter(8) by swift-argument-parser's
# generate-manual (the tool its GenerateManual plugin runs; the plugin itself would rebuild every product
# without --static-swift-stdlib), arbiter.toml(5) by `arbiter config-example --man` from the key table the
# config parser reads, arbiter-reporter(8) by `arbiter-reporter --manual` from the table its parser reads.
# Depends come from dpkg-shlibdeps on the binaries (libxen 4.17, libsqlite3, libstdc++ ...).
# Usage: scripts/package.sh [OUT]   (default .build/debian; run as root or with sudo for apt, like setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.build/debian}
./scripts/setup.sh
# dpkg-shlibdeps and dpkg-parsechangelog (dpkg-dev); chrpath drops SwiftPM's RUNPATH $ORIGIN (nothing is
# installed beside the binaries: a search path there is only a hazard).
missing=()
for p in dpkg-shlibdeps:dpkg-dev chrpath:chrpath; do command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}"); done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

swift build -c release --static-swift-stdlib --product arbiter >&2
swift build -c release --static-swift-stdlib --product arbiter-reporter >&2
swift build -c release --static-swift-stdlib --product generate-manual >&2
BIN=.build/release
VERSION=$("$BIN/arbiter" --version)
[ "$("$BIN/arbiter-reporter" --version)" = "$VERSION" ] || { echo "package: arbiter-reporter is not $VERSION" >&2; exit 1; }
CHANGELOG=dist/debian/changelog
[ "$(dpkg-parsechangelog -l "$CHANGELOG" -S Version)" = "$VERSION" ] || {
    echo "package: $CHANGELOG's first entry is not $VERSION (ArbiterRelease.version): add one" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$CHANGELOG" -S Timestamp)}
DAY=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
ARCH=$(dpkg --print-architecture)
MAINTAINER=$(dpkg-parsechangelog -l "$CHANGELOG" -S Maintainer)
# Both packages newer than everything that goes into them: nothing to do (CI packages once per real-Xen run).
DEBS=("$OUT/arbiter_${VERSION}_${ARCH}.deb" "$OUT/arbiter-reporter_${VERSION}_${ARCH}.deb")
if [ -f "${DEBS[0]}" ] && [ -f "${DEBS[1]}" ] && [ -z "$(find "$BIN/arbiter" "$BIN/arbiter-reporter" "$BIN/generate-manual" \
        dist scripts/package.sh -newer "$(ls -t "${DEBS[@]}" | tail -1)" -print -quit)" ]; then
    echo "package: $OUT is up to date" >&2
    ls -l "${DEBS[@]}"
    exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
rm -f "$OUT"/arbiter_*.deb "$OUT"/arbiter-reporter_*.deb   # other versions: one of each is what OUT holds

# --- the contents of each package under $WORK/PACKAGE ---------------------------------------------
# an executable: stripped as dh_strip does, without its RUNPATH
put_bin() {
    install -D -m 755 "$1" "$2"
    strip --remove-section=.comment --remove-section=.note "$2"
    chrpath -d "$2" >/dev/null
}
put_man() { mkdir -p "$(dirname "$2")" && gzip -9n < "$1" > "$2" && chmod 644 "$2"; }
put_doc() {   # copyright and changelog (native package: changelog.gz)
    install -D -m 644 dist/debian/copyright "$1/usr/share/doc/$2/copyright"
    gzip -9n < "$CHANGELOG" > "$1/usr/share/doc/$2/changelog.gz"
    chmod 644 "$1/usr/share/doc/$2/changelog.gz"
}

A=$WORK/arbiter
put_bin "$BIN/arbiter" "$A/usr/sbin/arbiter"
install -d -m 755 "$A/etc/arbiter"
"$BIN/arbiter" config-example > "$A/etc/arbiter/config.toml"
chmod 644 "$A/etc/arbiter/config.toml"
install -d -m 700 "$A/var/lib/arbiter"
install -D -m 644 dist/arbiter.service "$A/lib/systemd/system/arbiter.service"
mkdir -p "$WORK/man"
"$BIN/generate-manual" "$BIN/arbiter" --section 8 --date "$DAY" --output-directory "$WORK/man" >&2
put_man "$WORK/man/arbiter.8" "$A/usr/share/man/man8/arbiter.8.gz"
"$BIN/arbiter" config-example --man > "$WORK/man/arbiter.toml.5"
put_man "$WORK/man/arbiter.toml.5" "$A/usr/share/man/man5/arbiter.toml.5.gz"
install -d -m 755 "$A/usr/share/bash-completion/completions" "$A/usr/share/zsh/vendor-completions" \
    "$A/usr/share/fish/vendor_completions.d"
# (a completion is sourced, not run: no #! line)
"$BIN/arbiter" --generate-completion-script bash | sed '1{/^#!/d}' > "$A/usr/share/bash-completion/completions/arbiter"
"$BIN/arbiter" --generate-completion-script zsh > "$A/usr/share/zsh/vendor-completions/_arbiter"
"$BIN/arbiter" --generate-completion-script fish > "$A/usr/share/fish/vendor_completions.d/arbiter.fish"
chmod 644 "$A"/usr/share/*/*completion*/* "$A/usr/share/zsh/vendor-completions/_arbiter"
put_doc "$A" arbiter
install -D -m 644 dist/debian/arbiter.lintian-overrides "$A/usr/share/lintian/overrides/arbiter"

R=$WORK/arbiter-reporter
put_bin "$BIN/arbiter-reporter" "$R/usr/sbin/arbiter-reporter"
install -D -m 644 dist/arbiter-reporter.service "$R/lib/systemd/system/arbiter-reporter.service"
"$BIN/arbiter-reporter" --manual > "$WORK/man/arbiter-reporter.8"
put_man "$WORK/man/arbiter-reporter.8" "$R/usr/share/man/man8/arbiter-reporter.8.gz"
put_doc "$R" arbiter-reporter
install -D -m 644 dist/debian/arbiter-reporter.lintian-overrides "$R/usr/share/lintian/overrides/arbiter-reporter"

# --- control files, then the .deb -------------------------------------------------------------------
# Depends of a package's executables, as dpkg-shlibdeps computes them for a debian/ tree.
depends() {
    local pkg=$1 shl=$WORK/shlibs-$1
    mkdir -p "$shl/debian" && printf 'Source: arbiter\n\nPackage: %s\nArchitecture: any\n' "$pkg" > "$shl/debian/control"
    (cd "$shl" && dpkg-shlibdeps -O -e"$WORK/$pkg/usr/sbin/$pkg" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}
build_deb() {
    local pkg=$1 unit=$2 root=$WORK/$1 s
    mkdir -p "$root/DEBIAN"
    sed -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@DEPENDS@|$(depends "$pkg")|" \
        -e "s|@SIZE@|$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)|" \
        -e "/^Package:/a Version: $VERSION" "dist/debian/$pkg.control" > "$root/DEBIAN/control"
    for s in postinst prerm postrm; do
        sed -e "s|@UNIT@|$unit|g" -e "s|@PACKAGE@|$pkg|g" "dist/debian/$s" > "$root/DEBIAN/$s"
        chmod 755 "$root/DEBIAN/$s"
    done
    [ -d "$root/etc" ] && (cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
    chmod 644 "$root/DEBIAN"/{control,md5sums} "$root"/DEBIAN/conffiles 2>/dev/null || true
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    # xz at level 1: 9 s and 20 MB for arbiter on 2 cores, where the default level 6 takes 44 s for 17 MB
    dpkg-deb --root-owner-group -Zxz -z1 --build "$root" "$OUT/${pkg}_${VERSION}_${ARCH}.deb" >&2
}
build_deb arbiter arbiter.service
build_deb arbiter-reporter arbiter-reporter.service
ls -l "${DEBS[@]}"
