#!/usr/bin/env bash
# Every test: unit, property (seeded), simulator, store, control loop and the daemon as a process,
# with the system packages installed first. `swift build` first: the daemon tests run the real
# `arbiter` binary, which `swift test` alone does not build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build
swift test "$@"
