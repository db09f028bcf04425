#!/usr/bin/env bash
# Smoke-tests one cross-built pirouterd under qemu-user: --version, check-config on the example
# config (and on a broken copy, which must fail naming its line), then `serve` with simulated
# backends on a unix socket, /healthz and /metrics over it, and a clean SIGTERM shutdown.
#
#   cross/smoke.sh QEMU BINARY VERSION      e.g. cross/smoke.sh qemu-aarch64-static \
#                                                 target/dist/pirouterd-aarch64-unknown-linux-musl 0.1.0
#
# Also plays systemd's notify socket (READY=1, WATCHDOG=1, STOPPING=1) and runs the unit's
# ExecStopPost= command (`relays off`). Needs qemu-user-static, curl, python3.
set -euo pipefail
for t in curl python3 promtool; do
    command -v "$t" >/dev/null || { echo "smoke: $t missing (apt: curl python3 prometheus)" >&2; exit 1; }
done

QEMU=${1:?usage: cross/smoke.sh QEMU BINARY VERSION}
BIN=${2:?usage: cross/smoke.sh QEMU BINARY VERSION}
VERSION=${3:?usage: cross/smoke.sh QEMU BINARY VERSION}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

TMP=$(mktemp -d /tmp/pirouterd-smoke.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "${NOTIFY_PID:-}" ] && kill -0 "$NOTIFY_PID" 2>/dev/null; then
        kill "$NOTIFY_PID" 2>/dev/null || true
        wait "$NOTIFY_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "smoke: FAIL: $*" >&2
    for f in "$TMP"/*.log; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
    done
    exit 1
}

# 1. --version: the emulated binary runs at all and is the version Cargo.toml says.
out=$(timeout 60 "$QEMU" "$BIN" --version) || fail "--version exited $?"
[ "$out" = "pirouterd $VERSION" ] || fail "--version printed '$out', expected 'pirouterd $VERSION'"
echo "ok: --version: $out"

# The example config points at machine paths; the copies used here point into $TMP instead.
# The token file must exist and not be world-readable, like on a router.
head -c 32 /dev/urandom | base64 >"$TMP/token"
chmod 600 "$TMP/token"
example=$ROOT/systemd/pirouterd.toml
sed -e "s|^token_file = .*|token_file = \"$TMP/token\"|" \
    -e "s|^dir = \"/var/lib/pirouterd\"|dir = \"$TMP/state\"|" "$example" >"$TMP/example.toml"
mkdir -p "$TMP/state"

# 2. check-config: the example is valid; a broken copy is refused with the line of the problem.
timeout 60 "$QEMU" "$BIN" check-config "$TMP/example.toml" >"$TMP/check.log" 2>&1 ||
    fail "check-config rejected the example config systemd/pirouterd.toml"
echo "ok: check-config systemd/pirouterd.toml"
# An unknown key on a known line must be reported with that line, exit 1.
awk '{ print } /^\[wan\]/ { print "interfcae = \"wan0\""; exit }' "$TMP/example.toml" >"$TMP/broken.toml"
bad_line=$(grep -n '^interfcae' "$TMP/broken.toml" | cut -d: -f1)
rc=0
timeout 60 "$QEMU" "$BIN" check-config "$TMP/broken.toml" >"$TMP/broken.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "check-config on a broken config exited $rc, expected 1"
grep -q "broken.toml:$bad_line: wan.interfcae" "$TMP/broken.log" ||
    fail "check-config did not name line $bad_line and the key wan.interfcae"
echo "ok: check-config refuses a typo with its line ($bad_line)"

# 3. serve on a unix socket with simulated GPIO, no Jool, no WAN watch; nftables is read
# where it can be: qemu-user refuses NETLINK_NETFILTER sockets, so that component may be
# degraded here, which /healthz reports and must not stop the server.
sock=$TMP/http.sock
cat >"$TMP/serve.toml" <<EOF
[http]
listen = ["unix:$sock"]
token_file = "$TMP/token"

[state]
dir = "$TMP/state"

[nat64]
enabled = false

[gpio]
backend = "sim"

[[relay]]
name = "smoke"
pin = 5
max_on = "1m"
EOF
# A stand-in for systemd's notify socket (what Type=notify and WatchdogSec= read): every
# datagram the daemon sends goes to notify.log, one per line.
python3 - "$TMP/notify.sock" "$TMP/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "w") as out:
    while True:
        try:
            msg = s.recv(4096).decode(errors="replace")
        except socket.timeout:
            break
        out.write(msg.replace("\n", " ") + "\n")
        out.flush()
        if "STOPPING=1" in msg:
            break
PY
NOTIFY_PID=$!
for _ in $(seq 1 100); do [ -S "$TMP/notify.sock" ] && break; sleep 0.05; done
# WATCHDOG_USEC=2 s: the daemon must ping every second.
NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=2000000 \
    "$QEMU" "$BIN" serve --config "$TMP/serve.toml" >"$TMP/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    [ -S "$sock" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "serve exited before listening"
    sleep 0.1
done
[ -S "$sock" ] || fail "serve did not create $sock within 30 s"
code=$(curl -sS --max-time 20 --unix-socket "$sock" -o "$TMP/healthz.out" -w '%{http_code}' http://pirouterd/healthz) ||
    fail "GET /healthz over $sock failed"
[ "$code" = 200 ] || fail "/healthz answered $code: $(cat "$TMP/healthz.out")"
echo "ok: /healthz 200: $(head -c 200 "$TMP/healthz.out" | tr '\n' ' ')"
code=$(curl -sS --max-time 20 --unix-socket "$sock" -o "$TMP/metrics.out" -w '%{http_code}' http://pirouterd/metrics) ||
    fail "GET /metrics over $sock failed"
[ "$code" = 200 ] || fail "/metrics answered $code"
grep -q "^pirouterd_build_info{.*version=\"$VERSION\"" "$TMP/metrics.out" ||
    fail "/metrics has no pirouterd_build_info with version $VERSION"
grep -q '^pirouterd_component_up{' "$TMP/metrics.out" || fail "/metrics has no pirouterd_component_up"
promtool check metrics <"$TMP/metrics.out" >"$TMP/promtool.log" 2>&1 ||
    fail "promtool check metrics rejected the emulated binary's /metrics"
echo "ok: /metrics $(grep -c '^pirouterd_' "$TMP/metrics.out") samples, build_info and component_up present"
grep -qx 'READY=1' "$TMP/notify.log" || fail "no READY=1 on NOTIFY_SOCKET (Type=notify would time out)"
# Pings are due every second; emulation on a busy machine gets some slack, not 10x.
for _ in $(seq 1 50); do
    [ "$(grep -cx 'WATCHDOG=1' "$TMP/notify.log")" -ge 3 ] && break
    sleep 0.1
done
[ "$(grep -cx 'WATCHDOG=1' "$TMP/notify.log")" -ge 3 ] ||
    fail "fewer than 3 WATCHDOG=1 with WATCHDOG_USEC=2000000 (WatchdogSec= would kill it)"
echo "ok: sd_notify: READY=1, then WATCHDOG=1 pings"
# SIGTERM: a clean, prompt exit (systemd then runs `relays off`).
kill -TERM "$SERVER_PID"
rc=0
for _ in $(seq 1 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$SERVER_PID" 2>/dev/null && fail "serve still running 20 s after SIGTERM"
wait "$SERVER_PID" || rc=$?
SERVER_PID=
[ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
wait "$NOTIFY_PID" || true
grep -qx 'STOPPING=1' "$TMP/notify.log" || fail "no STOPPING=1 on SIGTERM"
echo "ok: SIGTERM: serve sent STOPPING=1 and exited 0"
# What the unit's ExecStopPost= runs after every exit.
rc=0
timeout 60 "$QEMU" "$BIN" relays off --config "$TMP/serve.toml" >"$TMP/relays-off.log" 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
    echo "ok: relays off (the unit's ExecStopPost=) exited 0"
else
    fail "relays off exited $rc (the unit's ExecStopPost= would fail)"
fi

