#!/usr/bin/env python3
"""Validates the Grafana dashboard and checks every metric the dashboard and the Prometheus
rules query against what pirouterd exports.

    check_dashboard.py DASHBOARD.json --rules RULES.yml [--metrics METRICS.txt] [--strict]

Structure: what Grafana needs to import the JSON (title, uid, schemaVersion, templating, panels
with unique ids, gridPos inside the 24-column grid and not overlapping, a Prometheus target
with a refId and an expression on every data panel, datasource through the ${datasource}
variable, every $variable defined). PromQL: every expression, variables substituted, parsed
by `promtool check rules`. Metrics: every pirouterd_* name queried must be one pirouterd
exports: in the /metrics text given with --metrics (a running daemon's real output), else in
the contract (DESIGN.md's list and the extensions below). Names only in the contract are
listed as PENDING; --strict makes them failures (use it once every area is merged).
Prints 'N passed, N failed'; exit 1 on any failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# DESIGN.md "Metrics (prefix pirouterd_)": the public contract.
DESIGN_METRICS = {
    "pirouterd_nft_rule_packets_total",
    "pirouterd_nft_rule_bytes_total",
    "pirouterd_nft_object_packets_total",
    "pirouterd_nft_object_bytes_total",
    "pirouterd_nft_set_elements",
    "pirouterd_nft_rules_never_hit",
    "pirouterd_jool_sessions",
    "pirouterd_jool_stat_total",
    "pirouterd_jool_up",
    "pirouterd_drops_total",
    "pirouterd_wan_up",
    "pirouterd_ra_block_active",
    "pirouterd_relay_on",
    "pirouterd_relay_switch_total",
    "pirouterd_component_up",
    "pirouterd_build_info",
}
# Beyond DESIGN.md, queried here, and who exports them.
EXTENSIONS = {
    "pirouterd_nft_rule_last_hit_timestamp_seconds": "firewall insight (rules idle for 30 days)",
    "pirouterd_relay_max_on_seconds": "relays (each relay's max_on, for the over-max alert)",
    "pirouterd_relay_fault": "relays (appliance did not follow, pin error)",
}
# The component (pirouterd_component_up{component=...}) whose area exports each contract
# metric. Once that component shows up in the real /metrics, its metrics must be there too: a
# missing one is a renamed or dropped metric, not a pending area. (nft_* metrics come from two
# areas sharing the nftables component, so they stay pending until --strict.)
OWNER = {
    "pirouterd_jool_sessions": "jool",
    "pirouterd_jool_stat_total": "jool",
    "pirouterd_jool_up": "jool",
    "pirouterd_drops_total": "drops",
    "pirouterd_wan_up": "wan",
    "pirouterd_ra_block_active": "wan",
    "pirouterd_relay_on": "gpio",
    "pirouterd_relay_switch_total": "gpio",
    "pirouterd_relay_fault": "gpio",
}
# Series Prometheus makes itself.
PROMETHEUS_METRICS = {"up"}

GRID_WIDTH = 24
DATA_PANELS = {"timeseries", "stat", "table", "bargauge", "state-timeline", "gauge", "barchart",
               "piechart", "heatmap", "status-history"}
ALL_PANELS = DATA_PANELS | {"row", "text"}
BUILTIN_VARS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
METRIC_RE = re.compile(r"\b(pirouterd_[a-z0-9_]+)\b")


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}")
        return ok


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def variables_in(expr):
    return set(re.findall(r"\$\{?(\w+)", expr))


def substitute(expr):
    """Grafana variables replaced by values PromQL accepts, for parsing."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    expr = expr.replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def rule_exprs(path):
    """The expr: values of a Prometheus rules file (block scalars included), without a YAML
    library: the rules file is ours and regular."""
    exprs, cur, indent = [], None, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if m:
            if cur is not None:
                exprs.append(" ".join(cur))
            cur, indent = None, None
            rest = m.group(2).strip()
            if rest in ("|", ">", "|-", ">-"):
                cur, indent = [], len(m.group(1))
            else:
                exprs.append(rest)
            continue
        if cur is not None:
            if line.strip() == "" or len(line) - len(line.lstrip()) > indent:
                cur.append(line.strip())
            else:
                exprs.append(" ".join(cur))
                cur = None
    if cur is not None:
        exprs.append(" ".join(cur))
    return exprs


def components(metrics_text):
    return set(re.findall(r'^pirouterd_component_up\{[^}]*component="([^"]+)"', metrics_text, re.M))


def exported_names(metrics_text):
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    # A histogram or summary family also answers to its _bucket/_sum/_count series.
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dashboard")
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--metrics")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    c = Checker()

    try:
        with open(args.dashboard, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL: {args.dashboard} is not JSON: {e}")
        print("0 passed, 1 failed")
        return 1

    # Top level: what an import needs.
    for key, kind in [("title", str), ("uid", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict), ("time", dict), ("tags", list)]:
        c.check(isinstance(d.get(key), kind), f"top-level {key} is a {kind.__name__}")
    c.check(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(d.get("uid", ""))) is not None,
            "uid is 1-40 of [A-Za-z0-9_-] (Grafana's limit)")
    c.check(d.get("schemaVersion", 0) >= 36, "schemaVersion >= 36 (Grafana 9+)")
    c.check("id" not in d or d["id"] is None, "no database id (an import must create its own)")

    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    c.check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
            "a Prometheus datasource variable named datasource")

    panels = list(walk_panels(d.get("panels", [])))
    ids = [p.get("id") for p in panels]
    c.check(len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), "panel ids unique ints")

    rects = []
    exprs = []
    for p in panels:
        name = f"panel {p.get('id')} {p.get('title')!r}"
        c.check(p.get("type") in ALL_PANELS, f"{name}: known panel type {p.get('type')}")
        c.check(bool(p.get("title")), f"{name}: has a title")
        g = p.get("gridPos", {})
        okg = all(isinstance(g.get(k), int) for k in "xywh")
        c.check(okg, f"{name}: gridPos has integer x, y, w, h")
        if okg:
            c.check(g["x"] >= 0 and g["y"] >= 0 and g["w"] >= 1 and g["h"] >= 1
                    and g["x"] + g["w"] <= GRID_WIDTH, f"{name}: inside the 24-column grid")
            rects.append((name, g))
        if p.get("type") not in DATA_PANELS:
            continue
        c.check(p.get("datasource", {}).get("uid") == "${datasource}",
                f"{name}: datasource is the ${{datasource}} variable")
        c.check(bool(p.get("description")), f"{name}: has a description")
        targets = p.get("targets", [])
        c.check(len(targets) >= 1, f"{name}: has targets")
        refs = [t.get("refId") for t in targets]
        c.check(len(refs) == len(set(refs)) and all(refs), f"{name}: refIds unique and set")
        for t in targets:
            e = t.get("expr", "")
            c.check(bool(e.strip()), f"{name}: target {t.get('refId')} has an expr")
            for v in variables_in(e):
                c.check(v in variables or v in BUILTIN_VARS, f"{name}: ${v} is defined")
            exprs.append((name, e))

    # No two panels on the same cells.
    for i, (n1, a) in enumerate(rects):
        for n2, b in rects[i + 1:]:
            overlap = (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                       and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
            c.check(not overlap, f"{n1} and {n2} do not overlap")

    # PromQL: parse every dashboard expression with promtool.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-exprs.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (_, e) in enumerate(exprs):
                f.write(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(substitute(e))}\n")
        r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        c.check(r.returncode == 0, f"promtool parses all {len(exprs)} dashboard expressions:\n{r.stdout}{r.stderr}")

    # Metric names.
    queried = {}
    for name, e in exprs:
        for m in METRIC_RE.findall(e):
            queried.setdefault(m, set()).add("dashboard")
    for rules in args.rules:
        for e in rule_exprs(rules):
            for m in METRIC_RE.findall(e):
                queried.setdefault(m, set()).add(os.path.basename(rules))
    exported = None
    present = set()
    if args.metrics:
        with open(args.metrics, encoding="utf-8") as f:
            text = f.read()
        exported = exported_names(text)
        present = components(text)
    contract = DESIGN_METRICS | set(EXTENSIONS)
    pending = []
    for m in sorted(queried):
        where = ", ".join(sorted(queried[m]))
        if exported is not None and m in exported:
            c.check(True, m)
        elif m in contract:
            if exported is None:
                c.check(True, m)
            elif OWNER.get(m) in present:
                c.check(False, f"{m} (queried by {where}) is missing from /metrics although its "
                               f"component {OWNER[m]} runs: renamed or dropped?")
            else:
                pending.append(m)
                c.check(not args.strict, f"{m} (queried by {where}) is not in the real /metrics")
        else:
            c.check(False, f"{m} (queried by {where}) is neither exported nor in the contract: a typo?")
    dashboard_metrics = {m for m, w in queried.items() if "dashboard" in w}
    for m in sorted(DESIGN_METRICS):
        c.check(m in dashboard_metrics or m in queried, f"DESIGN.md metric {m} is used by the dashboard or rules")
    if exported is not None and pending:
        print("PENDING (in the contract, not in this build's /metrics yet; --strict fails on these):")
        for m in pending:
            print(f"  {m}: {EXTENSIONS.get(m, 'DESIGN.md')}")
    source = "the real /metrics" if exported is not None else "the contract only (no --metrics)"
    print(f"metrics checked against {source}: {len(queried)} names queried, "
          f"{len(queried) - len(pending) if exported is not None else 0} seen exported")
    print(f"check_dashboard: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
