#!/usr/bin/env bash
# Builds the Debian packages from the cross-built binaries, offline, with plain dpkg-deb:
#
#   packaging/build-deb.sh [arm64|armhf]...     default both; needs cross/build.sh first
#
# Output: target/dist/pirouterd_<version>_<arch>.deb. Contents: /usr/bin/pirouterd, the unit,
# the example config as a conffile in /etc/pirouterd/, the sysusers.d entry that makes the
# pirouterd user and puts it in gpio, a udev rule giving GPIO devices to gpio, the README and
# copyright. The maintainer scripts (packaging/debian/) create the user, the state directory
# and a random token, and start nothing until /etc/pirouterd/pirouterd.toml exists.
# Reproducible: file times are SOURCE_DATE_EPOCH (the commit time), owners root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST=$ROOT/target/dist
DEB=$ROOT/packaging/debian

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf)

command -v dpkg-deb >/dev/null || { echo "build-deb: install apt package dpkg" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH

TMP=$(mktemp -d /tmp/pirouterd-deb.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for arch in "${arches[@]}"; do
    case "$arch" in
        arm64) triple=aarch64-unknown-linux-musl ;;
        armhf) triple=armv7-unknown-linux-gnueabihf ;;
        *) echo "build-deb: unknown architecture $arch (arm64 or armhf)" >&2; exit 2 ;;
    esac
    bin=$DIST/pirouterd-$triple
    [ -x "$bin" ] || { echo "build-deb: $bin missing: run cross/build.sh --target $triple first" >&2; exit 1; }

    tree=$TMP/$arch
    install -d -m 0755 "$tree/DEBIAN" "$tree/usr/bin" "$tree/lib/systemd/system" \
        "$tree/usr/lib/sysusers.d" "$tree/lib/udev/rules.d" "$tree/etc/pirouterd" \
        "$tree/usr/share/doc/pirouterd/examples"
    install -m 0755 "$bin" "$tree/usr/bin/pirouterd"
    install -m 0644 "$ROOT/systemd/pirouterd.service" "$tree/lib/systemd/system/pirouterd.service"
    install -m 0644 "$ROOT/systemd/pirouterd.toml" "$tree/etc/pirouterd/pirouterd.toml.example"
    install -m 0644 "$ROOT/systemd/jool-nat64.service" "$ROOT/systemd/final-ra.conf" \
        "$tree/usr/share/doc/pirouterd/examples/"
    install -m 0644 "$DEB/pirouterd.sysusers" "$tree/usr/lib/sysusers.d/pirouterd.conf"
    install -m 0644 "$DEB/60-pirouterd-gpio.rules" "$tree/lib/udev/rules.d/60-pirouterd-gpio.rules"
    if [ -f "$ROOT/README.md" ]; then
        install -m 0644 "$ROOT/README.md" "$tree/usr/share/doc/pirouterd/README.md"
    fi
    # The Prometheus scrape config, rules and Grafana dashboard, for the monitoring host.
    install -d -m 0755 "$tree/usr/share/doc/pirouterd/examples/monitoring"
    for f in prometheus.yml pirouterd-rules.yml grafana-pirouterd.json; do
        install -m 0644 "$ROOT/monitoring/$f" "$tree/usr/share/doc/pirouterd/examples/monitoring/$f"
    done
    cat >"$tree/usr/share/doc/pirouterd/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pirouterd

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) the pirouterd developers
License: GPL-3.0-or-later
 On Debian systems, the full text of the GNU General Public License version 3 can be
 found in /usr/share/common-licenses/GPL-3.
EOF
    chmod 0644 "$tree/usr/share/doc/pirouterd/copyright"
    # A native package's changelog; gzip -n keeps no name or time, so the .deb stays
    # reproducible.
    {
        echo "pirouterd ($version) unstable; urgency=medium"
        echo
        echo "  * Built from commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)."
        echo
        echo " -- pirouterd developers <pirouterd@localhost>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n >"$tree/usr/share/doc/pirouterd/changelog.gz"
    chmod 0644 "$tree/usr/share/doc/pirouterd/changelog.gz"

    for s in postinst prerm postrm; do
        install -m 0755 "$DEB/$s" "$tree/DEBIAN/$s"
    done
    install -m 0644 "$DEB/conffiles" "$tree/DEBIAN/conffiles"
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
        "$DEB/control.in" >"$tree/DEBIAN/control"
    chmod 0644 "$tree/DEBIAN/control"
    (cd "$tree" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z |
        xargs -0 md5sum >DEBIAN/md5sums)
    chmod 0644 "$tree/DEBIAN/md5sums"

    find "$tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    out=$DIST/pirouterd_${version}_${arch}.deb
    dpkg-deb --root-owner-group -Zxz --build "$tree" "$out" >/dev/null
    echo "$out $(stat -c %s "$out") bytes sha256 $(sha256sum "$out" | cut -d' ' -f1)"
done
