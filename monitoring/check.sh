#!/usr/bin/env bash
# Checks the monitoring examples:
#   - prometheus.yml with `promtool check config` (rule files included),
#   - pirouterd-rules.yml with `promtool check rules` and its unit tests (`promtool test rules`:
#     each alert fires on the history it is for, when it should, and not before),
#   - the Grafana dashboard's structure and PromQL, and that every metric the dashboard and the
#     rules query is one pirouterd exports: the real /metrics of `pirouterd demo` (started
#     here, as root, on a unix socket), which must also pass `promtool check metrics`.
#
#   monitoring/check.sh [--strict]     --strict: a contract metric the demo does not export
#                                      yet is a failure, not PENDING
# Needs: prometheus (promtool), python3, curl, cargo; root for the demo's namespaces.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MON=$ROOT/monitoring
strict=()
[ "${1:-}" = --strict ] && strict=(--strict)

for t in promtool python3 curl cargo; do
    command -v "$t" >/dev/null || { echo "monitoring/check.sh: $t missing (apt: prometheus python3 curl)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/pirouterd-mon.XXXXXX)
DEMO_PID=
cleanup() {
    if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
        kill -TERM "$DEMO_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DEMO_PID" 2>/dev/null || true
        wait "$DEMO_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "monitoring/check.sh: FAIL: $*" >&2; exit 1; }

# 1. Scrape config. promtool insists the bearer-token file exists: point it at a scratch one.
cp "$MON/prometheus.yml" "$MON/pirouterd-rules.yml" "$TMP/"
echo "example-token" >"$TMP/token"
sed -i "s|credentials_file: .*|credentials_file: $TMP/token|" "$TMP/prometheus.yml"
promtool check config "$TMP/prometheus.yml" >"$TMP/config.log" 2>&1 || { cat "$TMP/config.log" >&2; fail "promtool check config"; }
echo "ok: promtool check config prometheus.yml (and its rule file)"

# 2. Rules and their unit tests.
promtool check rules "$MON/pirouterd-rules.yml" >"$TMP/rules.log" 2>&1 || { cat "$TMP/rules.log" >&2; fail "promtool check rules"; }
echo "ok: promtool check rules: $(grep -o '[0-9]* rules found' "$TMP/rules.log")"
(cd "$MON" && promtool test rules rules-test.yml rules-test-30d.yml) >"$TMP/test.log" 2>&1 ||
    { cat "$TMP/test.log" >&2; fail "promtool test rules"; }
echo "ok: promtool test rules: $(grep -c '^  SUCCESS' "$TMP/test.log") test files pass"

# 3. Real /metrics from the demo: every area's sampler runs there on sample data.
(cd "$ROOT" && cargo build --locked --quiet --bin pirouterd)
bin=$ROOT/target/debug/pirouterd
sock=$TMP/demo.sock
"$bin" demo --listen "unix:$sock" >"$TMP/demo.out" 2>"$TMP/demo.err" &
DEMO_PID=$!
for _ in $(seq 1 300); do
    [ -S "$sock" ] && break
    kill -0 "$DEMO_PID" 2>/dev/null || { cat "$TMP/demo.err" >&2; fail "the demo exited before serving"; }
    sleep 0.1
done
[ -S "$sock" ] || fail "the demo did not serve on $sock within 30 s"
# Let the samplers publish (nftables every 5 s in the demo, traffic moving counters).
sleep "${DEMO_SETTLE_SECONDS:-8}"
curl -sS --max-time 20 --unix-socket "$sock" -o "$TMP/metrics.txt" http://pirouterd/metrics || fail "GET /metrics from the demo"
promtool check metrics <"$TMP/metrics.txt" >"$TMP/metrics.log" 2>&1 ||
    { cat "$TMP/metrics.log" >&2; fail "promtool check metrics rejected the demo's /metrics"; }
echo "ok: demo /metrics: $(grep -c '^# TYPE' "$TMP/metrics.txt") families, promtool check metrics clean"
kill -TERM "$DEMO_PID"
wait "$DEMO_PID" || true
DEMO_PID=

# 4. Dashboard: structure, PromQL, metric names against the demo's real output.
python3 "$MON/check_dashboard.py" "$MON/grafana-pirouterd.json" --rules "$MON/pirouterd-rules.yml" \
    --metrics "$TMP/metrics.txt" "${strict[@]}"

# 5. The checker can fail: a copy with a misspelt metric, two panels on the same cells and an
# unbalanced parenthesis must be refused, each for its own reason.
python3 - "$MON/grafana-pirouterd.json" "$TMP/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
data = [p for p in d["panels"] if p["type"] != "row"]
data[0]["targets"][0]["expr"] = 'pirouterd_wan_upp{instance=~"$instance"}'
data[1]["gridPos"] = dict(data[0]["gridPos"])
data[2]["targets"][0]["expr"] = "sum(rate(pirouterd_jool_up[5m])"
json.dump(d, open(sys.argv[2], "w"))
PY
rc=0
python3 "$MON/check_dashboard.py" "$TMP/broken.json" --rules "$MON/pirouterd-rules.yml" >"$TMP/broken.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "check_dashboard.py accepted a broken dashboard"
for why in "pirouterd_wan_upp (queried by dashboard) is neither exported" "do not overlap" "unclosed left parenthesis"; do
    grep -q "$why" "$TMP/broken.log" || { cat "$TMP/broken.log" >&2; fail "check_dashboard.py missed: $why"; }
done
echo "ok: check_dashboard.py refuses a broken dashboard (typo, overlap, bad PromQL)"
