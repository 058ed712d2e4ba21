#!/usr/bin/env bash
# The Debian packages as an admin gets them: build (scripts/package.sh; nothing to do when current),
# lintian (no error or warning; what it still says is explained in dist/debian/*.lintian-overrides),
# `dpkg -i` both on this machine (root), then what is installed: the binaries' version is the package's,
# the manual pages resolve (`man -w`) and are current (every verb of `arbiter --help` in arbiter(8),
# every key of the shipped config in arbiter.toml(5), every reporter option in arbiter-reporter(8)), the
# conffile is `arbiter config-example`, the completions load, and `systemd-analyze verify` passes on
# both installed units. Purges both packages at the end (KEEP=1 keeps them). ~30 s after the build.
# Usage: integration/package/run.sh [DEBDIR]   (default .build/debian)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEBS=${1:-.build/debian}
fail() { echo "package check FAILED: $*" >&2; exit 1; }

./scripts/package.sh "$DEBS" >/dev/null
VERSION=$(.build/release/arbiter --version)
ARCH=$(dpkg --print-architecture)
A=$DEBS/arbiter_${VERSION}_${ARCH}.deb R=$DEBS/arbiter-reporter_${VERSION}_${ARCH}.deb
ls -l "$A" "$R"

need=()
for p in lintian:lintian man:man-db systemd-analyze:systemd; do command -v "${p%%:*}" >/dev/null || need+=("${p#*:}"); done
[ ${#need[@]} = 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
echo "### lintian"
rc=0
out=$(lintian --fail-on error,warning --pedantic --display-info "$A" "$R" 2>&1) || rc=$?
echo "$out" | grep -v "running with root privileges" || true
[ $rc = 0 ] || fail "lintian"

echo "### dpkg -i"
dpkg -i "$A" "$R"
[ "${KEEP:-0}" = 1 ] || trap 'dpkg --purge arbiter arbiter-reporter >/dev/null' EXIT
[ "$(/usr/sbin/arbiter --version)" = "$VERSION" ] || fail "arbiter --version is not $VERSION"
[ "$(/usr/sbin/arbiter-reporter --version)" = "$VERSION" ] || fail "arbiter-reporter --version is not $VERSION"
man -w arbiter arbiter.toml arbiter-reporter

page() { man -w "$1" | xargs zcat; }
n=0
# every verb the binary has is in arbiter(8)
for verb in $(/usr/sbin/arbiter --help | sed -n '/^SUBCOMMANDS:/,/^$/p' | awk '/^  [a-z]/ {print $1}'); do
    page arbiter | grep -qx ".It Em $verb" || fail "arbiter(8) has no $verb"
    n=$((n + 1))
done
# every key of the shipped config is in arbiter.toml(5), and the conffile is the binary's example
cmp -s /etc/arbiter/config.toml <(/usr/sbin/arbiter config-example) || fail "/etc/arbiter/config.toml is not arbiter config-example"
for key in $(awk -F' = ' '/^[a-z_]+ = / {print $1}' /etc/arbiter/config.toml); do
    page arbiter.toml | grep -qx ".It Cm $key" || fail "arbiter.toml(5) has no $key"
    n=$((n + 1))
done
for opt in $(/usr/sbin/arbiter-reporter --help 2>&1 | awk '/^  --/ {print $1}'); do
    page arbiter-reporter | grep -q "^.It Fl ${opt#-}\b" || fail "arbiter-reporter(8) has no $opt"
    n=$((n + 1))
done
[ $n -ge 60 ] || fail "only $n verbs, keys and options found to check"
echo "manual pages: $n verbs, config keys and reporter options documented"
for p in arbiter arbiter.toml arbiter-reporter; do
    w=$(man --warnings -l <(page "$p") 2>&1 >/dev/null) && [ -z "$w" ] || fail "man $p: $w"
done
bash -c 'source /usr/share/bash-completion/completions/arbiter && complete -p arbiter' >/dev/null || fail "bash completion"
[ -s /usr/share/zsh/vendor-completions/_arbiter ] && [ -s /usr/share/fish/vendor_completions.d/arbiter.fish ] || fail "zsh/fish completion"

echo "### systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/arbiter.service /lib/systemd/system/arbiter-reporter.service
echo "package check passed: $(basename "$A") $(du -k "$A" | cut -f1) KiB, $(basename "$R") $(du -k "$R" | cut -f1) KiB"
