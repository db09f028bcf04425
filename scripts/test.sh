#!/usr/bin/env bash
# Installs what is missing and runs every check CI runs: format, lints, all tests (including
# the ones that need root: network namespaces, nftables), cross builds with qemu smoke runs,
# and the systemd unit check. Run as root (CI is root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }
t0=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (root: namespaces, nftables, real sockets)"
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the integration tests create network namespaces and need root" >&2
  exit 1
fi
cargo test --locked -- --test-threads=2

# Cross builds (static aarch64 + armv7, size budget, qemu smoke runs), their
# reproducibility, the systemd unit (verify, exposure, privileges), the monitoring
# files against real /metrics, and the Debian packages installed and purged with dpkg.
# (systemd/check.sh ends with systemd/check-privileges.sh.)
for extra in cross/build.sh cross/check.sh systemd/check.sh "monitoring/check.sh --strict" \
             packaging/check.sh; do
  step "$extra"
  # shellcheck disable=SC2086 # the word split is the point: script plus its flags
  ./$extra
done

echo
echo "all checks passed in $(( $(date +%s) - t0 )) s"
