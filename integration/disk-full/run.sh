#!/usr/bin/env bash
# The decision store on a full disk, for real: a 2 MiB tmpfs holds the store, with a 1 MiB filler
# file in it. The daemon runs the default scenario at 100 simulated seconds a second, a round every
# 0.05 simulated seconds (as often as its loop wakes, ~80 a second), recording every
# domain every round, so the volume fills within seconds; then the filler is deleted (space comes
# back), and the daemon is stopped. Prints the largest WAL seen, the rounds lost and resumed (from the
# daemon's own log and from the store), what a clean stop leaves behind; exits 1 when a check fails.
# Needs root (mount). BIN=path/to/arbiter to measure another build.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/arbiter}
SECONDS_FULL=${SECONDS_FULL:-30}
W=$(mktemp -d /tmp/arbiter-diskfull.XXXX)
V=$W/vol
mkdir -p $V
if ! mount -t tmpfs -o size=2m tmpfs $V 2>/dev/null; then
    echo "disk-full: cannot mount a tmpfs here (not root?): skipped"; exit 0
fi
trap 'kill $PID 2>/dev/null; umount $V 2>/dev/null; rm -rf $W' EXIT
head -c 1048576 /dev/zero > $V/filler
cat > $W/config.toml <<CONF
[daemon]
backend = "sim"
database = "$V/d.sqlite"
socket = "$W/s.sock"
snapshot_every = 1
min_round_interval_seconds = 0.05
[sim]
speed = 100
CONF
$BIN daemon --config $W/config.toml 2> $W/daemon.log &
PID=$!
max_wal=0
sample() {  # $1 seconds
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        w=$(stat -c %s $V/d.sqlite-wal 2>/dev/null || echo 0)
        [ "$w" -gt "$max_wal" ] && max_wal=$w
        sleep 0.2
    done
}
sample $SECONDS_FULL
lost_full=$(grep -c "decision not recorded" $W/daemon.log)
used_full=$(df -k --output=used $V | tail -1 | tr -d ' ')
rm -f $V/filler
sample 10
kill -TERM $PID; wait $PID; rc=$?
lost=$(grep -c "decision not recorded" $W/daemon.log)
resumed=$(grep -c "recording resumed after" $W/daemon.log)
stopped=$(grep -o "unrecorded=[0-9]*" $W/daemon.log | tail -1)
wal_left=$(stat -c %s $V/d.sqlite-wal 2>/dev/null || echo none)
alerts=$($BIN alerts --db $V/d.sqlite 2>&1 | grep -c "rounds-not-recorded")
echo "disk-full: 2 MiB volume, ${SECONDS_FULL} s full then 10 s with the 1 MiB filler deleted ($BIN)"
echo "  largest WAL seen: $((max_wal / 1024)) KiB; volume used while full: ${used_full} KiB"
echo "  rounds lost while full: $lost_full; in all: $lost; 'recording resumed' lines: $resumed; at stop: $stopped; exit $rc"
echo "  WAL left after SIGTERM: $wal_left bytes; rounds-not-recorded alerts in the store: $alerts"
grep -m1 "recording resumed" $W/daemon.log | cut -c1-200
fail=0
[ $rc -eq 0 ] || { echo "FAIL: daemon exit $rc"; fail=1; }
[ $max_wal -le $((1024 * 1024 + 256 * 1024)) ] || { echo "FAIL: WAL grew past its limit"; fail=1; }
[ $lost_full -gt 0 ] || { echo "FAIL: the volume never filled (nothing was tested)"; fail=1; }
[ $resumed -gt 0 ] && [ $alerts -gt 0 ] || { echo "FAIL: recording never resumed, or the loss is not in the store"; fail=1; }
[ "$wal_left" = none ] || [ "$wal_left" -eq 0 ] || { echo "FAIL: a clean stop left a WAL"; fail=1; }
exit $fail
