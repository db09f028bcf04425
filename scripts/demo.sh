#!/usr/bin/env bash
# Installs what is missing, builds pirouterd and runs `pirouterd demo` on http://127.0.0.1:9880/.
# Extra arguments go to the demo (e.g. --listen 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
PIROUTERD_SETUP_CROSS=0 ./scripts/setup.sh
cargo build --release --quiet
exec ./target/release/pirouterd demo "$@"
