#!/usr/bin/env bash
# The main job: the arbiter daemon. Without Xen it runs on the simulated host (the default scenario),
# keeping its state in ./.arbiter/ (decision store and control socket); Ctrl-C or SIGTERM stops it
# after recording a last round. With arguments, runs `arbiter ARGS…` instead (e.g. `./scripts/run.sh
# demo`, `./scripts/run.sh simulate --compare`, `./scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --static-swift-stdlib --product arbiter >&2
if [ $# -gt 0 ]; then
    exec .build/release/arbiter "$@"
fi
mkdir -p .arbiter
echo "arbiter: daemon on the simulated host; state in .arbiter/. In another terminal:" >&2
echo "  .build/release/arbiter top --socket .arbiter/arbiter.sock" >&2
echo "  .build/release/arbiter report --format html -o report.html --db .arbiter/decisions.sqlite" >&2
exec .build/release/arbiter daemon --db .arbiter/decisions.sqlite --socket .arbiter/arbiter.sock --speed 10
