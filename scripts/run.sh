#!/usr/bin/env bash
# The main job. Until the daemon lands: the decision core over the built-in example host, printed as
# tables. Arguments go to `arbiter` (e.g. `./scripts/run.sh demo --rounds 300`, `./scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product arbiter >&2
exec .build/release/arbiter "$@"
