#!/usr/bin/env bash
# Installs, reinstalls, removes and purges the Debian packages with the real dpkg in throwaway
# roots (`dpkg --root`, maintainer scripts run chrootless with DPKG_ROOT set), and checks the
# files, owners, modes, the user and group, the token, that nothing is started before the
# config exists, and that purge leaves the root exactly as it was.
#
#   packaging/check.sh [arm64|armhf]...   default both; builds the .debs from target/dist
#
# Needs root (chown to the package's user), dpkg, systemd (systemd-sysusers, systemctl),
# passwd (userdel, groupdel), qemu-user-static.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST=$ROOT/target/dist
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

[ "$(id -u)" = 0 ] || { echo "packaging/check.sh: needs root (the package chowns to its own user)" >&2; exit 1; }
for tool in dpkg dpkg-deb systemd-sysusers systemctl userdel groupdel; do
    command -v "$tool" >/dev/null || { echo "packaging/check.sh: $tool missing (apt: dpkg systemd passwd)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/pirouterd-debtest.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
checks=0
fail() { echo "packaging/check.sh: FAIL [$arch/$flow]: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); }

# A root that looks like a fresh Debian/Pi OS to dpkg and the account tools: a dpkg database
# in which systemd and passwd count as installed (their tools come from the host, as
# chrootless scripts run there), account files with the usual backups and lock, and
# /etc/systemd/system. With `pi` as 2nd arg: Raspberry Pi OS, whose gpio group exists already,
# with the pi user in it.
make_root() {
    local r=$1 flavour=$2
    mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" "$r/var/lib/dpkg/triggers" \
        "$r/etc/systemd/system" "$r/var/lib"
    : >"$r/var/lib/dpkg/available"
    local p
    for p in systemd passwd; do
        printf 'Package: %s\nStatus: install ok installed\nVersion: 1\nArchitecture: %s\nMaintainer: host\nDescription: provided by the host\n\n' \
            "$p" "$arch" >>"$r/var/lib/dpkg/status"
        : >"$r/var/lib/dpkg/info/$p.list"
    done
    dpkg --root="$r" --add-architecture "$arch"
    printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
    printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$r/etc/shadow"
    printf 'root:*::\nnogroup:*::\n' >"$r/etc/gshadow"
    if [ "$flavour" = pi ]; then
        echo 'pi:x:1000:1000:,,,:/home/pi:/bin/bash' >>"$r/etc/passwd"
        printf 'pi:x:1000:\ngpio:x:997:pi\n' >>"$r/etc/group"
        echo 'pi:*:19000:0:99999:7:::' >>"$r/etc/shadow"
        printf 'pi:!::\ngpio:!::pi\n' >>"$r/etc/gshadow"
    fi
    chmod 0640 "$r/etc/shadow" "$r/etc/gshadow"
    local f
    for f in passwd group shadow gshadow; do cp -p "$r/etc/$f" "$r/etc/$f-"; done
    : >"$r/etc/.pwd.lock"
    chmod 0600 "$r/etc/.pwd.lock"
}

# Everything in the root but dpkg's own database and the account backups' contents: path,
# type, mode, owner, and content hash for files.
snapshot() {
    local r=$1
    (cd "$r" && find . -path ./var/lib/dpkg -prune -o -printf '%p %y %m %U:%G\n' | sort)
    local f
    for f in passwd group shadow gshadow; do
        echo "== etc/$f"
        cat "$r/etc/$f"
    done
}

dpkg_in() {
    local r=$1
    shift
    dpkg --root="$r" --force-script-chrootless --log=/dev/null "$@" >>"$TMP/dpkg.log" 2>&1 ||
        { cat "$TMP/dpkg.log" >&2; fail "dpkg $* failed"; }
}

field() { awk -F: -v n="$2" -v f="$3" '$1 == n { print $f }' "$1"; }

# After install: everything in place, owned and moded as the product needs.
check_installed() {
    local r=$1 flavour=$2 bin=$3 qemu=$4
    local f
    for f in usr/bin/pirouterd lib/systemd/system/pirouterd.service etc/pirouterd/pirouterd.toml.example \
        usr/lib/sysusers.d/pirouterd.conf lib/udev/rules.d/60-pirouterd-gpio.rules \
        usr/share/doc/pirouterd/copyright; do
        [ -f "$r/$f" ] || fail "/$f not installed"
        ok
    done
    [ "$(stat -c '%a %U' "$r/usr/bin/pirouterd")" = "755 root" ] || fail "/usr/bin/pirouterd not 0755 root"
    cmp -s "$bin" "$r/usr/bin/pirouterd" || fail "/usr/bin/pirouterd is not the cross-built binary"
    cmp -s "$ROOT/systemd/pirouterd.service" "$r/lib/systemd/system/pirouterd.service" || fail "unit differs from systemd/"
    cmp -s "$ROOT/systemd/pirouterd.toml" "$r/etc/pirouterd/pirouterd.toml.example" || fail "example config differs"
    ok
    # The installed binary runs on its architecture.
    local out
    out=$(timeout 60 "$qemu" "$r/usr/bin/pirouterd" --version) || fail "installed binary does not run"
    [ "$out" = "pirouterd $version" ] || fail "installed binary says '$out'"
    ok

    # The user: a system account without a login, in gpio.
    local uid gid shell
    uid=$(field "$r/etc/passwd" pirouterd 3)
    gid=$(field "$r/etc/passwd" pirouterd 4)
    shell=$(field "$r/etc/passwd" pirouterd 7)
    [ -n "$uid" ] || fail "no pirouterd user"
    [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "pirouterd uid $uid is not a system uid"
    [ "$shell" = /usr/sbin/nologin ] || fail "pirouterd has shell $shell"
    [ "$(field "$r/etc/group" pirouterd 3)" = "$gid" ] || fail "no pirouterd group"
    local members
    members=$(field "$r/etc/group" gpio 4)
    grep -qE '(^|,)pirouterd(,|$)' <<<"$members" || fail "pirouterd is not in gpio (members: $members)"
    if [ "$flavour" = pi ]; then
        [ "$(field "$r/etc/group" gpio 3)" = 997 ] || fail "the existing gpio group was replaced"
        grep -qE '(^|,)pi(,|$)' <<<"$members" || fail "pi was dropped from gpio"
    fi
    ok

    # The token: 64 hex digits, readable only by pirouterd.
    local tok=$r/etc/pirouterd/token
    [ -f "$tok" ] || fail "no token file"
    [ "$(stat -c '%a %u %g' "$tok")" = "400 $uid $gid" ] || fail "token is $(stat -c '%a %u:%g' "$tok"), want 400 $uid:$gid"
    grep -qxE '[0-9a-f]{64}' "$tok" || fail "token is not 64 hex digits"
    ok

    # State dir for the daemon, private to it.
    [ "$(stat -c '%a %u %g' "$r/var/lib/pirouterd")" = "750 $uid $gid" ] || fail "/var/lib/pirouterd ownership/mode"
    ok

    # Enabled, but nothing starts it before the admin writes the config: the package ships
    # no pirouterd.toml, and the unit is conditioned on it.
    [ -L "$r/etc/systemd/system/multi-user.target.wants/pirouterd.service" ] || fail "unit not enabled"
    [ ! -e "$r/etc/pirouterd/pirouterd.toml" ] || fail "the package installed a live config"
    grep -qx 'ConditionPathExists=/etc/pirouterd/pirouterd.toml' "$r/lib/systemd/system/pirouterd.service" ||
        fail "unit would start without a config"
    grep -q 'not started' "$TMP/dpkg.log" || fail "postinst did not tell the admin how to start it"
    ok
}

for arch in "${arches[@]}"; do
    case "$arch" in
        arm64) triple=aarch64-unknown-linux-musl qemu=qemu-aarch64-static ;;
        armhf) triple=armv7-unknown-linux-gnueabihf qemu=qemu-arm-static ;;
        *) echo "packaging/check.sh: unknown architecture $arch" >&2; exit 2 ;;
    esac
    "$ROOT/packaging/build-deb.sh" "$arch" >/dev/null
    deb=$DIST/pirouterd_${version}_${arch}.deb
    bin=$DIST/pirouterd-$triple

    # The package is reproducible: building it again gives the same bytes.
    flow=build
    sum1=$(sha256sum "$deb" | cut -d' ' -f1)
    "$ROOT/packaging/build-deb.sh" "$arch" >/dev/null
    [ "$sum1" = "$(sha256sum "$deb" | cut -d' ' -f1)" ] || fail "two builds of the .deb differ"
    ok

    for flavour in debian pi; do
        # Flow 1: install, install again (upgrade path: same token), purge.
        flow="$flavour: install, reinstall, purge"
        r=$TMP/$arch-$flavour-1
        : >"$TMP/dpkg.log"
        make_root "$r" "$flavour"
        before=$(snapshot "$r")
        dpkg_in "$r" -i "$deb"
        check_installed "$r" "$flavour" "$bin" "$qemu"
        tok=$(cat "$r/etc/pirouterd/token")
        uid=$(field "$r/etc/passwd" pirouterd 3)
        dpkg_in "$r" -i "$deb"
        [ "$(cat "$r/etc/pirouterd/token")" = "$tok" ] || fail "reinstall replaced the token"
        [ "$(field "$r/etc/passwd" pirouterd 3)" = "$uid" ] || fail "reinstall changed the uid"
        [ "$(grep -c '^pirouterd:' "$r/etc/passwd")" = 1 ] || fail "reinstall duplicated the user"
        ok
        # What the admin and the daemon add: the config, state files.
        cp "$r/etc/pirouterd/pirouterd.toml.example" "$r/etc/pirouterd/pirouterd.toml"
        echo '{}' >"$r/var/lib/pirouterd/relays.json"
        chown "$uid" "$r/var/lib/pirouterd/relays.json"
        dpkg_in "$r" --purge pirouterd
        after=$(snapshot "$r")
        if [ "$before" != "$after" ]; then
            diff <(echo "$before") <(echo "$after") >&2 || true
            fail "purge left the root different from before install"
        fi
        ok

        # Flow 2: install, remove (config, token, user, state stay; binary and unit go),
        # reinstall, admin disables, upgrade, purge.
        flow="$flavour: install, remove, reinstall, disable, upgrade, purge"
        r=$TMP/$arch-$flavour-2
        : >"$TMP/dpkg.log"
        make_root "$r" "$flavour"
        before=$(snapshot "$r")
        dpkg_in "$r" -i "$deb"
        dpkg_in "$r" --remove pirouterd
        [ ! -e "$r/usr/bin/pirouterd" ] || fail "remove left the binary"
        [ ! -e "$r/lib/systemd/system/pirouterd.service" ] || fail "remove left the unit"
        [ -f "$r/etc/pirouterd/token" ] || fail "remove (not purge) deleted the token"
        grep -q '^pirouterd:' "$r/etc/passwd" || fail "remove (not purge) deleted the user"
        ok
        # Reinstall after remove: enabled as before. Then the admin disables it: an upgrade
        # (same package again) must not enable it behind their back.
        dpkg_in "$r" -i "$deb"
        [ -L "$r/etc/systemd/system/multi-user.target.wants/pirouterd.service" ] || fail "reinstall after remove lost the enablement"
        systemctl --root="$r" --quiet disable pirouterd.service
        dpkg_in "$r" -i "$deb"
        [ ! -e "$r/etc/systemd/system/multi-user.target.wants/pirouterd.service" ] || fail "an upgrade re-enabled a disabled unit"
        ok
        dpkg_in "$r" --purge pirouterd
        after=$(snapshot "$r")
        if [ "$before" != "$after" ]; then
            diff <(echo "$before") <(echo "$after") >&2 || true
            fail "purge after remove left the root different from before install"
        fi
        ok
        rm -rf "$TMP/$arch-$flavour-1" "$TMP/$arch-$flavour-2"
    done
    echo "ok: $arch: $(basename "$deb") installs, reinstalls, removes and purges cleanly (Debian and Pi OS roots)"
done
echo "packaging/check.sh: $checks passed, 0 failed"
