#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, run and test pirouterd.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: build (libclang for rustables' bindgen, cross gcc), run (nft, ip, unshare),
# test (chromium for the page, promtool, wrk, qemu for cross binaries, systemd-analyze).
PKGS=(
  build-essential pkg-config libclang-dev clang
  nftables iproute2 iputils-ping util-linux procps curl python3 strace
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static file
  systemd prometheus wrk
  chromium chromium-driver
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust is missing: install it with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
if [ "${PIROUTERD_SETUP_CROSS:-1}" = 1 ] && command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed)
  for t in aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi
