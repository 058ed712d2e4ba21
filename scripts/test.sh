#!/usr/bin/env bash
# Every test: unit, property (seeded) and CLI-level, with the system packages installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift test "$@"
