#!/usr/bin/env bash
# Cross-builds pirouterd for the Raspberry Pi: static, stripped, reproducible release binaries
# for aarch64 (musl, linked by rust-lld) and 32-bit armv7 (glibc linked statically with
# Debian's arm-linux-gnueabihf-gcc; rustup serves no arm musl std here), prints their size and
# SHA-256, checks they are static, and smoke-tests each under qemu-user.
#
#   cross/build.sh                       both targets, smoke tests
#   cross/build.sh --target aarch64      one target (aarch64 | armv7 | a full triple)
#   cross/build.sh --repro               also rebuild from a copy of the tree at another path
#                                        into a fresh target dir and require identical bytes
#   cross/build.sh --no-smoke            build and check only
#
# Output: target/dist/pirouterd-<triple> and target/dist/SHA256SUMS (the packaging reads them).
# Needs: rustup targets aarch64-unknown-linux-musl and armv7-unknown-linux-gnueabihf, apt
# gcc-arm-linux-gnueabihf, libclang-dev (rustables' bindgen), qemu-user-static, file, curl,
# python3 and prometheus (promtool) for the smoke test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The aarch64 binary must stay under this (BENCHMARKS.md "Binary size"); bytes.
AARCH64_BUDGET=$((3 * 1024 * 1024))

targets=()
repro=0
smoke=1
while [ $# -gt 0 ]; do
    case "$1" in
        --target) targets+=("${2:?--target needs a value}"); shift 2 ;;
        --repro) repro=1; shift ;;
        --no-smoke) smoke=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "cross/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(aarch64 armv7)

triple_of() {
    case "$1" in
        aarch64|arm64|aarch64-unknown-linux-musl) echo aarch64-unknown-linux-musl ;;
        armv7|armhf|armv7-unknown-linux-gnueabihf) echo armv7-unknown-linux-gnueabihf ;;
        *) echo "cross/build.sh: unknown target $1 (aarch64 or armv7)" >&2; return 2 ;;
    esac
}

qemu_of() {
    case "$1" in
        aarch64-*) echo qemu-aarch64-static ;;
        armv7-*) echo qemu-arm-static ;;
    esac
}

# `file` must say this about the binary (architecture), besides static and stripped.
arch_word() {
    case "$1" in
        aarch64-*) echo "ARM aarch64" ;;
        armv7-*) echo "32-bit LSB.*ARM, EABI5" ;;
    esac
}

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "cross/build.sh: $1 not found: install $2" >&2
        exit 1
    }
}
need cargo "rustup (https://rustup.rs)"
need file "apt package file"
need sha256sum "apt package coreutils"
if [ "$smoke" = 1 ]; then
    need qemu-aarch64-static "apt package qemu-user-static"
    need qemu-arm-static "apt package qemu-user-static"
    need curl "apt package curl"
fi

installed_targets=$(rustup target list --installed 2>/dev/null || true)

# Reproducibility: the commit time is the only clock a build may see, and no path of this
# machine may end up in the binary (panic locations carry source paths, bindgen output is
# include!()d from the target dir).
SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
export CARGO_INCREMENTAL=0
CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

# build SRC TARGET_DIR TRIPLE: one release build, prints nothing but cargo's progress.
build() {
    local src=$1 tdir=$2 triple=$3
    local up=${triple^^}
    up=${up//-/_}
    local low=${triple//-/_}
    local remap="--remap-path-prefix=$src=/build/pirouterd --remap-path-prefix=$tdir=/build/target --remap-path-prefix=$CARGO_HOME_DIR=/cargo"
    local flags linker
    case "$triple" in
        aarch64-unknown-linux-musl)
            # rust-lld ships with the toolchain: no aarch64 C toolchain needed; musl is
            # self-contained and static by default.
            linker=rust-lld
            flags="-C linker-flavor=ld.lld $remap"
            ;;
        armv7-unknown-linux-gnueabihf)
            need arm-linux-gnueabihf-gcc "apt package gcc-arm-linux-gnueabihf"
            linker=arm-linux-gnueabihf-gcc
            flags="-C target-feature=+crt-static $remap"
            ;;
    esac
    # rustables runs bindgen on kernel headers; libclang for a foreign target does not look in
    # the host's multiarch dir, where asm/types.h lives (the integer types are the same).
    (cd "$src" && env \
        "CARGO_TARGET_DIR=$tdir" \
        "CARGO_TARGET_${up}_LINKER=$linker" \
        "CARGO_TARGET_${up}_RUSTFLAGS=$flags" \
        "BINDGEN_EXTRA_CLANG_ARGS_${low}=-I/usr/include/$MULTIARCH" \
        cargo build --release --locked --target "$triple" --bin pirouterd)
}

DIST=$ROOT/target/dist
mkdir -p "$DIST"
TMP=$(mktemp -d /tmp/pirouterd-cross.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail() {
    echo "cross/build.sh: FAIL: $*" >&2
    exit 1
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
summary=()

for t in "${targets[@]}"; do
    triple=$(triple_of "$t")
    grep -qx "$triple" <<<"$installed_targets" ||
        fail "rust target $triple is not installed: rustup target add $triple"
    echo "== $triple: release build"
    start=$(date +%s)
    build "$ROOT" "$ROOT/target/cross" "$triple"
    secs=$(($(date +%s) - start))
    bin=$DIST/pirouterd-$triple
    cp "$ROOT/target/cross/$triple/release/pirouterd" "$bin"

    desc=$(file -b "$bin")
    echo "file: $desc"
    grep -Eq "$(arch_word "$triple")" <<<"$desc" || fail "$bin is not a $triple binary: $desc"
    grep -Eq 'statically linked|static-pie linked' <<<"$desc" || fail "$bin is not static: $desc"
    grep -q 'not stripped' <<<"$desc" && fail "$bin is not stripped: $desc"
    grep -q 'stripped' <<<"$desc" || fail "$bin is not stripped: $desc"

    size=$(stat -c %s "$bin")
    sum=$(sha256sum "$bin" | cut -d' ' -f1)
    mib=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')
    echo "size: $size bytes ($mib MiB)"
    echo "sha256: $sum"
    if [ "$triple" = aarch64-unknown-linux-musl ] && [ "$size" -ge "$AARCH64_BUDGET" ]; then
        fail "aarch64 binary is $mib MiB, over its 3 MiB budget"
    fi

    # Cheap half of the reproducibility check, every run: no path of this machine inside.
    for p in "$ROOT" "$CARGO_HOME_DIR" "$HOME"; do
        if grep -qaF "$p/" "$bin"; then
            fail "$bin contains the build path $p/ (a --remap-path-prefix is missing)"
        fi
    done

    if [ "$repro" = 1 ]; then
        echo "== $triple: second build from another path, fresh target dir"
        copy=$TMP/elsewhere/src
        mkdir -p "$copy"
        # Tracked and untracked-but-not-ignored files: what a fresh clone plus edits would hold.
        git ls-files -z -co --exclude-standard | (cd "$ROOT" && tar -c --null -T - -f -) |
            tar -x -C "$copy" -f -
        build "$copy" "$TMP/elsewhere/target" "$triple"
        sum2=$(sha256sum "$TMP/elsewhere/target/$triple/release/pirouterd" | cut -d' ' -f1)
        [ "$sum" = "$sum2" ] || fail "$triple is not reproducible: $sum vs $sum2 (diffoscope the two files)"
        echo "reproducible: second build has the same sha256"
        rm -rf "$TMP/elsewhere"
    fi

    if [ "$smoke" = 1 ]; then
        echo "== $triple: smoke test under $(qemu_of "$triple")"
        "$ROOT/cross/smoke.sh" "$(qemu_of "$triple")" "$bin" "$version"
    fi
    summary+=("$(printf '%-32s %9s bytes %6s MiB  build %4ss  sha256 %s' "$triple" "$size" "$mib" "$secs" "$sum")")
done

(cd "$DIST" && sha256sum pirouterd-* >SHA256SUMS)
echo
echo "== summary (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
printf '%s\n' "${summary[@]}"
