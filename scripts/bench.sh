#!/usr/bin/env bash
# The solver benchmark (release build): one full round vs sorting n Doubles. Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --static-swift-stdlib --product arbiter-bench >&2
exec .build/release/arbiter-bench "$@"
