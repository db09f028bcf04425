#!/usr/bin/env bash
# Runs `pirouterd serve` with exactly the privileges pirouterd.service grants: a non-root user,
# no supplementary groups but one, CAP_NET_ADMIN as the only ambient, inheritable and bounding
# capability, no_new_privs. It runs in a throwaway network namespace holding a small nftables
# ruleset and a WAN veth, and every component that reads the kernel (nftables over netlink,
# NFLOG, rtnetlink link state) must come up: proof that the README's permission table is
# enough, without systemd. It then writes (the RA block's own table, a managed-set element)
# and, with systemd/final-ra.conf's CAP_NET_RAW added, captures the final RA on a LAN veth.
# Components whose area is not merged yet are listed as such.
#
#   systemd/check-privileges.sh   (root; apt: util-linux (setpriv), iproute2, nftables, curl,
#                                  strace, procps, systemd)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "check-privileges: needs root (netns, setpriv)" >&2; exit 1; }
for t in setpriv ip nft curl python3 cargo strace pgrep; do
    command -v "$t" >/dev/null || { echo "check-privileges: $t missing" >&2; exit 1; }
done

NS=pirouterd-priv-$$
TMP=$(mktemp -d /tmp/pirouterd-priv.XXXXXX)
PID=
DAEMON=
CAP_PID=
cleanup() {
    local p
    for p in "$DAEMON" "$PID" "$CAP_PID"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    for p in "$PID" "$CAP_PID"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "check-privileges: FAIL: $*" >&2
    [ -s "$TMP/serve.log" ] && tail -n 30 "$TMP/serve.log" >&2
    exit 1
}

(cd "$ROOT" && cargo build --locked --quiet --bin pirouterd)
# A copy the unprivileged user can reach whatever the checkout's permissions.
install -m 0755 "$ROOT/target/debug/pirouterd" "$TMP/pirouterd"

# The namespace: lo, a veth pair standing in for the WAN, a ruleset with a counter, a set
# and a drop rule that logs to NFLOG group 7.
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add wan0 type veth peer name wan0-peer
ip -n "$NS" link set wan0 up
ip -n "$NS" link set wan0-peer up
ip netns exec "$NS" nft -f - <<'EOF'
table inet privtest {
    set blocklist { type ipv4_addr; }
    counter probes { }
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr @blocklist counter log group 7 drop comment "blocked"
        tcp dport 9 counter name probes drop
    }
}
EOF

# The daemon's user: nobody, owning its state dir, token and socket dir, like pirouterd.
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
install -d -o "$NOBODY" -g "$NOGROUP" -m 0750 "$TMP/state" "$TMP/run"
chmod 0755 "$TMP"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/token"
chown "$NOBODY:$NOGROUP" "$TMP/token"
chmod 0400 "$TMP/token"
sock=$TMP/run/http.sock
cat >"$TMP/pirouterd.toml" <<EOF
[http]
listen = ["unix:$sock"]
token_file = "$TMP/token"

[state]
dir = "$TMP/state"

[firewall]
interval = "1s"
managed_sets = ["inet/privtest/blocklist"]

[nat64]
enabled = false

[drops]
nflog_groups = [7]

[wan]
interface = "wan0"
down_after = "1s"
up_after = "1s"
# Block now, WAN or not: creating the daemon's own table is a netlink write.
ra_block = "on"

[gpio]
backend = "sim"
EOF

# start CAPS CONFIG: serve as pirouterd.service runs it: User= (nobody here),
# SupplementaryGroups= (none to spare here), AmbientCapabilities= = CapabilityBoundingSet= =
# CAPS, NoNewPrivileges=yes.
start() {
    rm -f "$sock"
    ip netns exec "$NS" $TRACE setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups \
        --inh-caps="-all,$1" --ambient-caps="-all,$1" --bounding-set="-all,$1" \
        --no-new-privs "$TMP/pirouterd" serve --config "$2" >"$TMP/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 300); do
        [ -S "$sock" ] && break
        kill -0 "$PID" 2>/dev/null || fail "serve exited before listening"
        sleep 0.1
    done
    [ -S "$sock" ] || fail "serve did not listen within 30 s"
    # $PID is setpriv's (it execs the daemon) or, traced, strace's: signal the daemon itself.
    DAEMON=$(pgrep -n -f -x "$TMP/pirouterd serve --config $2" || true)
    [ -n "$DAEMON" ] || fail "cannot find the daemon process"
}
stop() {
    kill -TERM "$DAEMON"
    local rc=0
    wait "$PID" || rc=$?
    PID= DAEMON=
    [ "$rc" = 0 ] || fail "serve exited $rc on SIGTERM"
}
# Traced, to hold every system call it makes against the unit's SystemCallFilter=.
TRACE="strace -f -qq -o $TMP/strace-1.log"
start +net_admin "$TMP/pirouterd.toml"

# The process really has what the unit gives and nothing more.
status=/proc/$DAEMON/status
[ "$(awk '/^Uid:/ { print $2 }' "$status")" = "$NOBODY" ] || fail "not running as nobody"
capeff=$(awk '/^CapEff:/ { print $2 }' "$status")
[ "$capeff" = 0000000000001000 ] || fail "effective capabilities $capeff, want CAP_NET_ADMIN only (0x1000)"
echo "ok: serve runs as uid $NOBODY with CapEff=$capeff (CAP_NET_ADMIN only)"

# Every kernel-reading component that exists must come up within 15 s.
python3 - "$sock" "$TMP/components" <<'PY' || fail "a component did not come up with the unit's privileges"
import json, socket, sys, time
path = sys.argv[1]
def status():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: pirouterd\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    body = data.split(b"\r\n\r\n", 1)[1]
    return json.loads(body)["components"]
# Component names per docs/INTEGRATION.md; gpio runs on sim pins here, jool is off.
kernel = ["nftables", "drops", "wan"]
deadline = time.time() + 15
while True:
    comps = status()
    waiting = [c for c in kernel if c in comps and comps[c].get("state") != "up"]
    if not waiting or time.time() > deadline:
        break
    time.sleep(0.5)
open(sys.argv[2], "w").write("\n".join(sorted(comps)) + "\n")
bad = False
for c in kernel:
    if c not in comps:
        print(f"FAIL: component {c} is not registered by this build")
        bad = True
    elif comps[c].get("state") == "up":
        print(f"ok: {c} up as non-root with CAP_NET_ADMIN only")
    else:
        print(f"FAIL: {c} is {comps[c].get('state')}: {comps[c].get('last_error')}")
        bad = True
sys.exit(1 if bad else 0)
PY

# Writes, not just reads: the RA block's own table (WAN area) and a managed set's elements
# (firewall area), both over nf_tables netlink with CAP_NET_ADMIN only.
grep -qx wan "$TMP/components" || fail "no wan component: the RA block cannot be checked"
for _ in $(seq 1 100); do
    ip netns exec "$NS" nft list table inet pirouterd >"$TMP/ra.nft" 2>/dev/null && break
    sleep 0.1
done
grep -q 'nd-router-advert' "$TMP/ra.nft" 2>/dev/null ||
    fail "ra_block = on, but no table inet pirouterd dropping nd-router-advert appeared"
echo "ok: RA block table inet pirouterd created as non-root with CAP_NET_ADMIN only"
code=$(curl -sS --max-time 10 --unix-socket "$sock" -o "$TMP/set.out" -w '%{http_code}' \
    -H "Authorization: Bearer $(cat "$TMP/token")" -H 'Content-Type: application/json' \
    -d '{"elements": ["192.0.2.7"]}' http://pirouterd/api/v1/firewall/sets/inet/privtest/blocklist/elements) ||
    fail "POST to the managed set failed"
case "$code" in
    2??)
        # Into a file first: `nft ... | grep -q` under pipefail fails at random when grep exits
        # before nft has written everything (SIGPIPE).
        ip netns exec "$NS" nft list set inet privtest blocklist >"$TMP/set.nft"
        grep -q '192\.0\.2\.7' "$TMP/set.nft" || fail "the API answered $code but 192.0.2.7 is not in the set"
        echo "ok: managed set element added as non-root with CAP_NET_ADMIN only"
        ;;
    *) fail "adding a managed-set element answered $code: $(cat "$TMP/set.out")" ;;
esac

stop
echo "ok: clean exit on SIGTERM"


# The final RA (wan.lan_interfaces) needs CAP_NET_RAW, which systemd/final-ra.conf adds: with
# it, one RA with router lifetime 0 and hop limit 255 must leave on the LAN veth.
ip netns exec "$NS" sysctl -qw net.ipv6.conf.default.accept_dad=0
ip -n "$NS" link add lan0 type veth peer name lan0-peer
ip -n "$NS" link set lan0 up
ip -n "$NS" link set lan0-peer up
sed 's/^ra_block = "on"$/ra_block = "on"\nlan_interfaces = ["lan0"]/' "$TMP/pirouterd.toml" >"$TMP/final-ra.toml"
ip netns exec "$NS" python3 - lan0-peer "$TMP/ra.txt" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
s.bind((sys.argv[1], 0))
s.settimeout(1)
open(sys.argv[2] + ".ready", "w").close()
end = time.time() + 20
while time.time() < end:
    try:
        ip6 = s.recv(2048)[14:]  # past the Ethernet header
    except socket.timeout:
        continue
    # IPv6 header (40 bytes), next header ICMPv6 (58), type 134 = router advertisement;
    # router lifetime at ICMPv6 offset 6.
    if len(ip6) >= 48 and ip6[6] == 58 and ip6[40] == 134:
        open(sys.argv[2], "w").write(f"{ip6[7]} {int.from_bytes(ip6[46:48], 'big')}\n")
        break
PY
CAP_PID=$!
for _ in $(seq 1 50); do [ -e "$TMP/ra.txt.ready" ] && break; sleep 0.1; done
TRACE="strace -f -qq -o $TMP/strace-2.log"
start +net_admin,+net_raw "$TMP/final-ra.toml"
wait "$CAP_PID" || true
stop
[ -s "$TMP/ra.txt" ] || fail "no router advertisement left lan0 (final RA, CAP_NET_ADMIN + CAP_NET_RAW)"
read -r hop lifetime <"$TMP/ra.txt"
[ "$hop" = 255 ] && [ "$lifetime" = 0 ] || fail "final RA had hop limit $hop, router lifetime $lifetime"
echo "ok: final RA (router lifetime 0, hop limit 255) sent with final-ra.conf's CAP_NET_RAW added"

# Every system call the daemon made (after setpriv exec'd it; setpriv itself needs capset and
# setresuid) must pass the unit's filter: @system-service minus @privileged and @resources.
python3 - "$TMP/pirouterd" "$TMP"/strace-*.log <<'PY' || fail "the daemon used system calls the unit's SystemCallFilter= refuses"
import re, subprocess, sys
out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                     check=True).stdout
groups, cur = {}, None
for line in out.splitlines():
    if re.match(r"^@\S+", line):
        cur = line.split()[0]
        groups[cur] = []
    elif cur and line.strip() and not line.strip().startswith("#"):
        groups[cur].append(line.strip())
def expand(g, seen):
    res = set()
    for x in groups.get(g, []):
        if x.startswith("@"):
            if x not in seen:
                seen.add(x)
                res |= expand(x, seen)
        else:
            res.add(x)
    return res
allowed = expand("@system-service", set()) - expand("@privileged", set()) - expand("@resources", set())
used = set()
for log in sys.argv[2:]:
    started = False
    for line in open(log, encoding="utf-8", errors="replace"):
        if not started:
            started = f'execve("{sys.argv[1]}"' in line
            continue
        m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
        if m and m.group(1) not in ("exited", "killed"):
            used.add(m.group(1))
    if not started:
        sys.exit(f"strace never saw the daemon start in {log}")
bad = sorted(used - allowed)
if bad:
    print("refused by SystemCallFilter=@system-service ~@privileged ~@resources:", ", ".join(bad))
    sys.exit(1)
print(f"ok: all {len(used)} distinct system calls the daemon made ({len(sys.argv) - 2} run(s)) "
      "pass the unit's SystemCallFilter=")
PY
