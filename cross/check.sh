#!/usr/bin/env bash
# Reproducibility check for CI, run after cross/build.sh: rebuilds both release binaries from a
# copy of the tree at another path into a fresh target dir and requires identical bytes (so
# no build path, time or machine detail leaks into what we ship). Costs one cold release
# build per target (about 2 min each on 2 cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cross/build.sh --repro --no-smoke "$@"
