// pirouterd page: one file, no framework, no requests beyond pirouterd's own API.
// Each view reads the JSON API and updates the DOM in place (keyed rows, text set only when it
// changed), so refreshes neither flicker nor steal keyboard focus. Refresh pauses while the tab
// is hidden. Areas are asked for only when /api/v1/status lists their component; a 404 from an
// area this build lacks shows "not available" in its panel.
"use strict";
const $ = (s, r) => (r || document).querySelector(s);
const $$ = (s, r) => Array.from((r || document).querySelectorAll(s));
const SVGNS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "pirouterd-token";
const REFRESH_MS = 5000;

// ---------- DOM helpers ----------
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of kids) e.append(c);
  return e;
}
function setText(e, t) {
  t = t === null || t === undefined ? "" : String(t);
  if (e.textContent !== t) e.textContent = t;
}
function setAttr(e, k, v) {
  if (v === null || v === undefined || v === false) { if (e.hasAttribute(k)) e.removeAttribute(k); }
  else if (e.getAttribute(k) !== String(v)) e.setAttribute(k, v);
}
// Puts one node per item into `parent` in order, reusing the node with the same key.
function keyed(parent, items, keyOf, create, update) {
  const old = new Map();
  for (const c of parent.children) old.set(c.dataset.key, c);
  const nodes = items.map((it) => {
    const k = String(keyOf(it));
    let n = old.get(k);
    if (!n) { n = create(it); n.dataset.key = k; }
    old.delete(k);
    update(n, it);
    return n;
  });
  for (const n of old.values()) n.remove();
  nodes.forEach((n, i) => { if (parent.children[i] !== n) parent.insertBefore(n, parent.children[i] || null); });
}
// Fills a row's cells: strings become text; {node, sig} replaces the cell's content when sig changed.
function cells(tr, vals) {
  while (tr.children.length < vals.length) tr.append(h("td"));
  vals.forEach((v, i) => {
    const td = tr.children[i];
    if (v && typeof v === "object" && "node" in v) {
      if (td.dataset.sig !== v.sig) { td.replaceChildren(v.node()); td.dataset.sig = v.sig; }
      if (v.cls) setAttr(td, "class", v.cls);
    } else setText(td, v);
  });
}
function rows(tbody, items, keyOf, vals, extra) {
  keyed(tbody, items, keyOf, () => h("tr"), (tr, it) => { cells(tr, vals(it)); if (extra) extra(tr, it); });
}
function body(id) { return $("#" + id + " .body"); }

// ---------- formatting ----------
const nf = new Intl.NumberFormat();
function num(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? nf.format(n) : n.toFixed(a < 10 ? 2 : 1);
}
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + u[i];
}
function toMs(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return v;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}
function dur(ms) {
  if (ms === null || ms === undefined) return "–";
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + "d " + hh + "h";
  if (hh) return hh + "h " + String(m).padStart(2, "0") + "m";
  if (m) return m + "m " + String(s).padStart(2, "0") + "s";
  return s + "s";
}
function ago(t) { const ms = toMs(t); return ms === null ? "never" : dur(Date.now() - ms) + " ago"; }
function clock(t) { const ms = toMs(t); return ms === null ? "" : new Date(ms).toLocaleTimeString(); }
function arr(x, ...keys) {
  if (Array.isArray(x)) return x;
  for (const k of keys) if (x && Array.isArray(x[k])) return x[k];
  return [];
}

// ---------- inline SVG plots ----------
function sparkline(values, label) {
  const w = 120, hh = 24, n = values.length;
  const max = Math.max(...values, 0);
  const s = svg("svg", { viewBox: `0 0 ${w} ${hh}`, width: w, height: hh, class: "spark", role: "img", "aria-label": label });
  if (!n) return s;
  const x = (i) => (n === 1 ? w : (i * w) / (n - 1)).toFixed(1);
  const y = (v) => (max > 0 ? hh - 1 - (v / max) * (hh - 2) : hh - 1).toFixed(1);
  const pts = values.map((v, i) => x(i) + "," + y(v)).join(" ");
  s.append(svg("polygon", { points: `0,${hh} ${pts} ${w},${hh}`, class: "area" }));
  s.append(svg("polyline", { points: pts, class: "line" }));
  return s;
}
function bar(frac, label) {
  const w = 100;
  const s = svg("svg", { viewBox: `0 0 ${w} 8`, width: w, height: 8, class: "bar", role: "img", "aria-label": label });
  s.append(svg("rect", { x: 0, y: 0, width: w, height: 8, class: "track", rx: 2 }));
  s.append(svg("rect", { x: 0, y: 0, width: Math.max(1, Math.round(frac * w)), height: 8, rx: 2 }));
  return s;
}
function icon(kind) {
  // A power symbol for relays, a dot for states: drawn here, no icon font.
  const s = svg("svg", { viewBox: "0 0 24 24", width: 22, height: 22, class: "icon", "aria-hidden": "true" });
  if (kind === "power") {
    s.append(svg("path", { d: "M12 3v8", class: "stroke" }));
    s.append(svg("path", { d: "M7.1 6.3a7 7 0 1 0 9.8 0", class: "stroke" }));
  } else s.append(svg("circle", { cx: 12, cy: 12, r: 6 }));
  return s;
}

// ---------- API ----------
function token() { return localStorage.getItem(TOKEN_KEY) || ""; }
// Read paths that answered 404: an area this build lacks. Not asked again until reload, so
// the browser logs its failed load once, not every refresh.
const missing = new Set();
async function api(path, opts) {
  opts = opts || {};
  const bare = path.split("?")[0];
  if (!opts.method && missing.has(bare)) return { ok: false, status: 404, data: null, error: null };
  const headers = {};
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const r = await fetch(path, { method: opts.method || "GET", headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), cache: "no-store" });
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    if (r.status === 404 && !opts.method && !/\/sets\//.test(bare)) missing.add(bare);
    return { ok: r.ok, status: r.status, data, error: data && data.error ? data.error : null };
  } catch (e) {
    return { ok: false, status: 0, data: null, error: { code: "network", message: "cannot reach pirouterd: " + e.message } };
  }
}

// What a failed read shows in its panel.
function unavailable(res, what) {
  if (res.status === 404) return what + ": not available in this pirouterd";
  if (res.status === 401) return what + ": reading needs the token (enter it under Token)";
  return what + ": " + (res.error ? res.error.message : "HTTP " + res.status);
}

// A change: sends it with the token, shows the server's reason when refused.
async function change(method, path, payload, done) {
  const res = await api(path, { method, body: payload });
  if (res.ok) {
    showMsg(done || "done", "ok");
  } else {
    const reason = res.error ? res.error.message : "HTTP " + res.status;
    const lead = {
      401: token() ? "Refused: the token is wrong (401). Enter the right one under Token." : "Refused: changes need the token (401). Enter it under Token.",
      403: "Refused (403):",
      409: "Refused by a safety rule (409):",
    }[res.status] || "Failed (" + (res.status || "no answer") + "):";
    showMsg(lead + " " + reason, "bad");
    if (res.status === 401) openToken(true);
  }
  refresh();
  return res;
}
let msgTimer = null;
function showMsg(text, kind) {
  const m = $("#msg");
  m.replaceChildren(h("span", {}, text), h("button", { type: "button", class: "ghost", "aria-label": "dismiss message", onclick: () => { m.hidden = true; } }, "×"));
  m.className = kind;
  m.hidden = false;
  clearTimeout(msgTimer);
  if (kind === "ok") msgTimer = setTimeout(() => { m.hidden = true; }, 4000);
}

// ---------- token ----------
function openToken(focus) {
  const f = $("#token-form");
  f.hidden = false;
  $("#token-btn").setAttribute("aria-expanded", "true");
  if (focus) $("#token-input").focus();
}
function tokenState() {
  setText($("#token-state"), token() ? "a token is saved in this browser" : "no token saved");
  setText($("#token-btn"), token() ? "Token ✓" : "Token");
  setAttr($("#token-btn"), "aria-label", token() ? "token for changes (saved)" : "token for changes (none saved)");
}
$("#token-btn").addEventListener("click", () => {
  const f = $("#token-form");
  if (f.hidden) openToken(true);
  else { f.hidden = true; $("#token-btn").setAttribute("aria-expanded", "false"); }
});
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("#token-input").value.trim();
  if (v) localStorage.setItem(TOKEN_KEY, v);
  $("#token-input").value = "";
  tokenState();
  showMsg(v ? "Token saved in this browser." : "Nothing entered: the token was not changed.", v ? "ok" : "bad");
});
$("#token-forget").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); tokenState(); showMsg("Token forgotten.", "ok"); });

// ---------- state ----------
const S = { status: null, comps: {}, view: "overview", fwRules: [], fwData: null, openSets: new Map(), n64Offset: 0 };
const AREA = { firewall: "nftables", nat64: "jool", drops: "drops", wan: "wan", relays: "gpio" };
// Whether an area's panel should ask its API now; if not, the panel says why.
function gate(area, el, label) {
  const c = S.comps[AREA[area]];
  if (!c) naPanel(el, (label || area) + ": not available in this pirouterd (no " + AREA[area] + " component)");
  else if (c.state === "disabled") naPanel(el, (label || area) + ": turned off in the config");
  // Before its first reading an area answers 503; wait for it instead of asking.
  else if (c.state === "starting") naPanel(el, (label || area) + ": starting, first reading not done yet");
  return !!c && c.state !== "disabled" && c.state !== "starting";
}

// ---------- overview ----------
function renderComponents(s) {
  const list = Object.entries(s.components || {});
  rows($("#components tbody"), list, ([n]) => n, ([name, c]) => [
    name,
    { node: () => h("span", { class: "state-" + c.state }, icon("dot"), c.state), sig: c.state },
    c.state === "degraded" || (c.last_error && c.state !== "up") ? c.last_error || "" : detail(c.detail),
  ]);
}
function detail(d) {
  if (d === null || d === undefined) return "";
  if (typeof d !== "object") return String(d);
  return Object.entries(d).map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)).join(", ");
}
function naPanel(el, text) {
  let p = $(".na", el);
  if (!p) { p = h("p", { class: "na muted" }); el.prepend(p); }
  setText(p, text);
  p.hidden = false;
}
function okPanel(el) { const p = $(".na", el); if (p) p.hidden = true; }

// GET /api/v1/wan (WanStatus in src/wan/service.rs).
function wanInfo(w) {
  const ra = w.ra_block || {};
  return {
    iface: w.interface || "",
    state: String(w.state),
    since: w.since,
    active: !!ra.active,
    mode: ra.mode || "auto",
    reason: ra.reason || "",
    pending: w.pending || null,
    dropped: ra.dropped_packets,
    flap: !!w.demo_flap,
    link: w.link_usable,
  };
}
async function renderWan() {
  const b = body("ov-wan");
  if (!gate("wan", b, "WAN")) return;
  const res = await api("/api/v1/wan");
  if (!res.ok) { naPanel(b, unavailable(res, "WAN")); return; }
  okPanel(b);
  const w = wanInfo(res.data);
  let box = $(".wan", b);
  if (!box) {
    box = h("div", { class: "wan" },
      h("p", { class: "big" }, h("span", { "data-field": "state" }), " ", h("span", { class: "muted", "data-field": "since" })),
      h("p", {}, "RA block: ", h("strong", { "data-field": "ra-block" }), " ", h("span", { class: "muted", "data-field": "reason" })),
      h("div", { class: "seg", role: "group", "aria-label": "RA block mode" },
        ...["auto", "on", "off"].map((m) => h("button", { type: "button", "data-mode": m, "aria-label": "RA block mode " + m,
          onclick: () => change("POST", "/api/v1/wan/ra-block", { mode: m }, "RA block mode set to " + m) }, m))),
      h("p", { class: "muted", "data-field": "pending" }),
      h("button", { type: "button", class: "flap", hidden: true, onclick: (e) => {
        const up = e.currentTarget.dataset.up === "true";
        change("POST", "/api/v1/wan/demo/link", { up }, up ? "simulated WAN cable plugged back in" : "simulated WAN cable pulled");
      } }));
    b.append(box);
  }
  // The demo's simulated WAN can be "unplugged" from here, to watch the RA block engage.
  const flap = $(".flap", box);
  flap.hidden = !w.flap;
  flap.dataset.up = w.link === false ? "true" : "false";
  setText(flap, w.link === false ? "Plug the WAN back in (demo)" : "Pull the WAN cable (demo)");
  const st = $("[data-field=state]", box);
  setText(st, (w.iface ? w.iface + " " : "") + w.state);
  setAttr(st, "class", "state-" + (w.state === "up" ? "up" : w.state === "down" ? "degraded" : "starting"));
  setText($("[data-field=since]", box), w.since !== undefined && w.since !== null ? "since " + ago(w.since) : "");
  const ra = $("[data-field=ra-block]", box);
  setText(ra, w.active ? "active: router advertisements to the LAN are dropped" : "off");
  setAttr(ra, "class", w.active ? "state-degraded" : "state-up");
  setAttr(box, "data-ra-active", w.active ? "true" : "false");
  setText($("[data-field=reason]", box), "mode " + w.mode + (w.reason ? ", " + String(w.reason).replace(/_/g, " ") : ""));
  setText($("[data-field=pending]", box), (w.pending ? "turning " + w.pending.to + " in " + dur(toMs(w.pending.at) - Date.now()) + (w.dropped !== undefined ? "; " : "") : "") +
    (w.dropped !== undefined ? num(w.dropped) + " router advertisements dropped" : ""));
  for (const btn of $$("[data-mode]", box)) setAttr(btn, "aria-pressed", btn.dataset.mode === w.mode ? "true" : "false");
}

async function renderRelays() {
  const b = body("ov-relays");
  if (!gate("relays", b)) return;
  const res = await api("/api/v1/relays");
  if (!res.ok) { naPanel(b, unavailable(res, "relays")); return; }
  const list = arr(res.data, "relays");
  if (!list.length) { naPanel(b, "no relays configured ([[relay]] in the config)"); } else okPanel(b);
  let box = $(".relays", b);
  if (!box) {
    box = h("div", { class: "relays" });
    b.append(box, h("label", { class: "muted for" }, "Turn on for ", h("select", { id: "relay-for" },
      ...[["", "until its auto-off"], ["15m", "15 min"], ["30m", "30 min"], ["1h", "1 hour"], ["2h", "2 hours"]].map(([v, t]) => h("option", { value: v }, t)))));
  }
  keyed(box, list, (r) => r.name, (r) => {
    const btn = h("button", { type: "button", class: "relay", "data-relay": r.name },
      icon("power"), h("span", { class: "name" }), h("span", { class: "st" }), h("span", { class: "timer muted" }));
    btn.addEventListener("click", () => {
      const on = btn.getAttribute("aria-pressed") === "true";
      const body = { on: !on }, f = $("#relay-for").value;
      if (!on && f) body.for = f;
      change("POST", "/api/v1/relays/" + encodeURIComponent(r.name), body, r.name + " turned " + (on ? "off" : "on" + (body.for ? " for " + f : "")));
    });
    return btn;
  }, (btn, r) => {
    setAttr(btn, "aria-pressed", r.on ? "true" : "false");
    setAttr(btn, "aria-label", r.name + ": " + (r.on ? "on, press to turn off" : "off, press to turn on"));
    setText($(".name", btn), r.name);
    setText($(".st", btn), r.fault ? "fault" : r.changing_to !== null && r.changing_to !== undefined ? "turning " + (r.changing_to ? "on" : "off") + "…" : r.on ? "on" : "off");
    btn.dataset.since = toMs(r.since) || "";
    btn.dataset.autoOff = toMs(r.auto_off_at) || "";
    btn.dataset.minOff = r.min_off_remaining_ms ? Date.now() + r.min_off_remaining_ms : "";
    btn.dataset.src = r.source ? (typeof r.source === "object" ? JSON.stringify(r.source) : r.source) : "";
    btn.title = r.fault ? String(r.fault) : "";
    tickRelay(btn);
  });
}
function tickRelay(btn) {
  const now = Date.now();
  const on = btn.getAttribute("aria-pressed") === "true";
  const parts = [];
  if (btn.dataset.since) parts.push((on ? "on for " : "off for ") + dur(now - Number(btn.dataset.since)));
  if (on && btn.dataset.autoOff) parts.push("auto-off in " + dur(Number(btn.dataset.autoOff) - now));
  if (!on && btn.dataset.minOff && Number(btn.dataset.minOff) > now) parts.push("can turn on in " + dur(Number(btn.dataset.minOff) - now));
  setText($(".timer", btn), parts.join(", "));
}

function nat64Instances(d) { return arr(d, "instances"); }
function instState(i) { const s = i.status; return s && typeof s === "object" ? s.state : s || "unknown"; }
async function renderNat64Overview() {
  const b = body("ov-nat64");
  if (!gate("nat64", b, "NAT64")) return;
  const res = await api("/api/v1/nat64");
  if (!res.ok) { naPanel(b, unavailable(res, "NAT64")); return; }
  okPanel(b);
  S.nat64 = res.data;
  let ul = $("ul", b);
  if (!ul) { ul = h("ul", { class: "plain" }); b.append(ul); }
  const insts = nat64Instances(res.data);
  const probs = arr(res.data, "problems").slice();
  if (res.data && res.data.up === false && res.data.reason && !probs.length && !insts.some((i) => arr(i, "problems").length)) probs.push({ message: res.data.reason });
  const items = insts.map((i) => ({ k: "i" + i.name, i })).concat(probs.map((p, n) => ({ k: "p" + n, p })));
  keyed(ul, items, (x) => x.k, () => h("li"), (li, x) => {
    if (x.p) { setText(li, x.p.message); setAttr(li, "class", "state-degraded"); return; }
    const i = x.i, st = instState(i), sum = i.summary || {};
    const byp = arr(sum, "by_proto").map((p) => p.proto + " " + num(p.sessions)).join(", ");
    setText(li, i.name + ": " + st + ", " + num(sum.total) + " sessions" + (byp ? " (" + byp + ")" : "") + (arr(i, "problems").length ? "; " + i.problems[0].message : ""));
    setAttr(li, "class", st === "running" ? "" : "state-degraded");
  });
  if (res.data && res.data.sample_data) naPanel(b, "recorded sample data (demo)");
}

async function renderDropsOverview() {
  const b = body("ov-drops");
  if (!gate("drops", b)) return;
  const res = await api("/api/v1/drops?window=5m");
  if (!res.ok) { naPanel(b, unavailable(res, "drops")); return; }
  okPanel(b);
  const r = res.data || {};
  let box = $(".drops", b);
  if (!box) { box = h("div", { class: "drops" }, h("p", { class: "big" }), h("table", { class: "tops" }, h("tbody"))); b.append(box); }
  setText($(".big", box), num(r.events || 0) + " packets, " + bytes(r.bytes || 0));
  topRows($("tbody", box), arr(r, "sources").slice(0, 3), "source");
}
function topLabel(x) {
  if (x.addr !== undefined) return String(x.addr);
  if (x.port !== undefined) return (x.proto ? x.proto + "/" : "") + x.port;
  return String(x.name !== undefined ? x.name : x.key !== undefined ? x.key : "?");
}
function topRows(tbody, list, what, link) {
  const max = Math.max(1, ...list.map((x) => x.count || 0));
  rows(tbody, list, topLabel, (x) => [
    link ? { node: () => link(x), sig: topLabel(x) + "|" + arr(x, "rules").map((r) => r.chain).join(",") } : topLabel(x),
    num(x.count) + (x.error ? " (±" + num(x.error) + ")" : ""),
    { node: () => bar((x.count || 0) / max, what + " " + topLabel(x) + ": " + x.count), sig: (x.count || 0) + "/" + max },
  ]);
}

async function renderHot() {
  const b = body("ov-hot");
  if (!gate("firewall", b)) return;
  const res = await api("/api/v1/firewall/rules?sort=hot&limit=5&sparkline=1");
  if (!res.ok) { naPanel(b, unavailable(res, "rules")); return; }
  okPanel(b);
  let t = $("table", b);
  if (!t) { t = h("table", { class: "rules" }, h("tbody")); b.append(t); }
  ruleRows($("tbody", t), arr(res.data, "rules"), true);
}

// ---------- firewall ----------
function ruleKey(r) { return [r.family, r.table, r.chain, r.id || r.handle].join("/"); }
function chainOf(r) { return r.family + " " + r.table + " " + r.chain; }
function rateOf(r) { return r.rate_pps !== undefined && r.rate_pps !== null ? r.rate_pps : r.rates ? r.rates.pps_1m : null; }
function ruleRows(tbody, list, compact) {
  rows(tbody, list, ruleKey, (r) => {
    let sp = r.sparkline && Array.isArray(r.sparkline.packets) ? r.sparkline.packets : null;
    // Minutes from before the daemon started hold no data, not zeros: leave them out.
    const st = S.status && S.status.started, from = r.sparkline && r.sparkline.start_ms;
    if (sp && st && from) {
      // The last point is the current, partial minute: scale it to a whole minute.
      const el = st + S.status.uptime_s * 1000 - (from + (sp.length - 1) * 60000);
      if (el > 0 && el < 60000) { sp = sp.slice(); sp[sp.length - 1] *= 60000 / Math.max(el, 10000); }
      if (st > from) sp = sp.slice(Math.min(Math.floor((st - from) / 60000), sp.length));
    }
    if (sp && sp.length < 2) sp = null;
    const rate = rateOf(r);
    const text = { node: () => h("div", {}, h("code", {}, r.text || ""), r.comment ? h("div", { class: "muted" }, "# " + r.comment) : null,
      r.never_hit ? h("span", { class: "badge dead" }, "never hit") : null, r.measurable === false || r.has_counter === false ? h("span", { class: "badge", title: r.hint || "" }, "no counter") : null),
    sig: [r.text, r.comment, r.never_hit, r.measurable, r.has_counter].join("|") };
    const spark = { node: () => (sp ? sparkline(sp, "packets per minute over the last hour, peak " + num(Math.max(...sp, 0))) : h("span", { class: "muted" }, "–")), sig: sp ? sp.join(",") : "" };
    const rateTxt = rate === null ? "–" : num(rate) + "/s";
    if (compact) return [{ node: () => h("span", { class: "muted" }, r.chain), sig: r.chain }, text, rateTxt, spark];
    return [chainOf(r), text, num(r.packets), bytes(r.bytes), rateTxt, spark];
  }, (tr, r) => { setAttr(tr, "data-never-hit", r.never_hit ? "true" : "false"); });
}

function fwChains(d) { return arr(d, "chains"); }
function hookOf(c) {
  return c.hook ? { name: c.hook, priority: c.priority, policy: c.policy, type: c.type } : null;
}
function renderFwTables(d) {
  const box = $("#fw-tables");
  const tables = arr(d, "tables");
  const chains = fwChains(d);
  keyed(box, tables, (t) => t.family + " " + t.name, (t) => h("details", { class: "table", open: true },
    h("summary", {}, h("code", {}, "table " + t.family + " " + t.name)), h("ul", { class: "plain chains" })), (el, t) => {
    const mine = chains.filter((c) => c.family === t.family && c.table === t.name);
    keyed($("ul", el), mine, (c) => c.name, () => h("li"), (li, c) => {
      const hk = hookOf(c);
      const n = c.rule_count !== undefined ? c.rule_count : c.rules !== undefined ? (Array.isArray(c.rules) ? c.rules.length : c.rules) : null;
      setText(li, "chain " + c.name + (hk ? " — " + (hk.type ? "type " + hk.type + " " : "") + "hook " + hk.name + " priority " + hk.priority + "; policy " + hk.policy : " (regular)") + (n !== null ? " · " + n + (n === 1 ? " rule" : " rules") : ""));
    });
  });
  const sel = $("#fw-chain");
  const opts = [""].concat(chains.map((c) => c.family + " " + c.table + " " + c.name));
  if (sel.options.length !== opts.length || opts.some((o, i) => sel.options[i].value !== o)) {
    const cur = sel.value;
    sel.replaceChildren(...opts.map((o) => h("option", { value: o }, o || "all")));
    sel.value = opts.includes(cur) ? cur : "";
  }
}

function drawRules() {
  const q = $("#fw-search").value.trim().toLowerCase();
  const chain = $("#fw-chain").value;
  let list = S.fwRules.filter((r) => (!chain || chainOf(r) === chain) &&
    (!q || [r.text, r.comment, chainOf(r), Object.entries(r.labels || {}).map((e) => e.join("=")).join(" ")].join(" ").toLowerCase().includes(q)));
  if ($("#fw-sort").value === "chain") list = list.slice().sort((a, b) => chainOf(a).localeCompare(chainOf(b)));
  const LIMIT = 300;
  setText($("#fw-count"), (list.length > LIMIT ? "showing " + LIMIT + " of " : "") + list.length + " rules" + (q || chain ? " match" : "") +
    (list.length > LIMIT ? ": narrow the search to see the rest" : "") + " · " + S.fwRules.filter((r) => r.never_hit).length + " never hit" +
    (S.fwRules.length > BIG ? " · large ruleset: read every 30 s" : ""));
  ruleRows($("#fw-rules tbody"), list.slice(0, LIMIT), false);
}

// Big rulesets (thousands of rules) make each read megabytes: read them every 30 s, not 5 s,
// and without sparklines, unless the user changed something.
const BIG = 2000;
async function renderFirewall() {
  const sec = $("#firewall");
  if (!gate("firewall", sec)) return;
  const sort = $("#fw-sort").value;
  const big = S.fwRules.length > BIG;
  if (big && !S.fwForce && Date.now() - (S.fwAt || 0) < 30000) return;
  S.fwForce = false;
  S.fwAt = Date.now();
  // Rules come from /rules (rates, ids); the snapshot is fetched without them.
  const [fw, rules] = await Promise.all([api("/api/v1/firewall?rules=0"),
    api("/api/v1/firewall/rules?sparkline=" + (big ? "0" : "1") + (sort !== "ruleset" && sort !== "chain" ? "&sort=" + sort : ""))]);
  if (!fw.ok && !rules.ok) { naPanel(sec, unavailable(fw, "firewall")); return; }
  okPanel(sec);
  if (fw.ok) { S.fwData = fw.data; renderFwTables(fw.data); renderSets(fw.data); renderObjects(fw.data); }
  if (rules.ok) { S.fwRules = arr(rules.data, "rules"); drawRules(); }
  else if (fw.ok) {
    const full = await api("/api/v1/firewall");
    if (full.ok) { S.fwRules = arr(full.data, "rules"); drawRules(); }
  }
}

function renderObjects(d) {
  const objs = arr(d, "counters").map((c) => ({ k: "counter " + c.family + " " + c.table + " " + c.name, v: num(c.packets) + " packets, " + bytes(c.bytes) }))
    .concat(arr(d, "quotas").map((q) => ({ k: "quota " + q.family + " " + q.table + " " + q.name, v: bytes(q.used) + " of " + bytes(q.bytes) + (q.over ? " (over)" : "") })));
  $("#fw-objects-h").hidden = !objs.length;
  rows($("#fw-objects tbody"), objs, (o) => o.k, (o) => [o.k, o.v]);
}
function setPath(s) { return [s.family, s.table, s.name].map(encodeURIComponent).join("/"); }
function setId(s) { return s.family + "/" + s.table + "/" + s.name; }
function flagsOf(s) {
  const f = s.flags;
  if (Array.isArray(f)) return f.join(",");
  if (f && typeof f === "object") return Object.entries(f).filter(([k, v]) => v === true && k !== "anonymous").map(([k]) => k).join(",");
  return f ? String(f) : "";
}
function renderSets(d) {
  const sets = arr(d, "sets").filter((s) => !(s.flags && s.flags.anonymous));
  keyed($("#fw-sets"), sets, setId, (s) => {
    const id = setId(s);
    const el = h("article", { class: "set", "data-set": id },
      h("h3", {}, h("code", {}, "set " + s.name), " ", h("span", { class: "muted info" })),
      h("button", { type: "button", class: "show-elements", "aria-expanded": "false", "aria-label": "show elements of " + id }, "Show elements"),
      h("div", { class: "elements", hidden: true }, h("ul", { class: "plain el-list" })));
    const add = h("form", { class: "add-element", "aria-label": "add to " + id },
      h("input", { name: "element", required: true, "aria-label": "element to add to " + id, placeholder: "192.0.2.7" }),
      h("input", { name: "timeout", "aria-label": "timeout for the new element (e.g. 1h, empty for the set's default)", placeholder: "timeout, e.g. 1h", size: 8 }),
      h("button", { type: "submit" }, "Add"));
    add.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = add.element.value.trim(), t = add.timeout.value.trim();
      if (!v) return;
      const payload = { elements: [v] };
      if (t) payload.timeout = t;
      const r = await change("POST", "/api/v1/firewall/sets/" + setPath(s) + "/elements", payload, v + " added to " + s.name);
      if (r.ok) { add.element.value = ""; S.openSets.set(id, s); loadSet(el, s); }
    });
    $(".elements", el).append(add);
    $(".show-elements", el).addEventListener("click", (e) => {
      const b = e.currentTarget, open = b.getAttribute("aria-expanded") !== "true";
      b.setAttribute("aria-expanded", String(open));
      setText(b, open ? "Hide elements" : "Show elements");
      $(".elements", el).hidden = !open;
      if (open) { S.openSets.set(id, s); loadSet(el, s); } else S.openSets.delete(id);
    });
    return el;
  }, (el, s) => {
    const cnt = s.elements;
    setText($(".info", el), (s.key_type || s.type || "") + (flagsOf(s) ? " · " + flagsOf(s) : "") + " · " + (cnt === null || cnt === undefined ? "?" : num(cnt)) + (cnt === 1 ? " element" : " elements") + (s.managed ? " · managed" : ""));
    if (S.openSets.has(setId(s))) loadSet(el, s);
  });
}
async function loadSet(el, s) {
  const res = await api("/api/v1/firewall/sets/" + setPath(s));
  const ul = $(".el-list", el);
  if (!res.ok) { ul.replaceChildren(h("li", { class: "muted" }, unavailable(res, "elements"))); return; }
  const got = Date.now();
  const list = arr(res.data, "items", "elements");
  if (!list.length) { keyed(ul, [{ key: "" }], () => "-", () => h("li", { class: "muted" }, "empty"), () => {}); return; }
  keyed(ul, list, (x) => x.key, (x) => {
    const li = h("li", {}, h("code", {}, x.key), " ", h("span", { class: "exp muted" }), " ",
      h("button", { type: "button", class: "ghost small", "aria-label": "remove " + x.key + " from " + s.name }, "Remove"));
    $("button", li).addEventListener("click", () => change("DELETE", "/api/v1/firewall/sets/" + setPath(s) + "/elements", { elements: [x.key] }, x.key + " removed from " + s.name).then(() => loadSet(el, s)));
    return li;
  }, (li, x) => {
    const exp = x.expires_ms !== undefined && x.expires_ms !== null ? x.expires_ms : x.expires;
    li.dataset.expiresAt = typeof exp === "number" ? got + exp : "";
    li.dataset.extra = [x.data ? "→ " + x.data : "", x.comment ? "# " + x.comment : "", x.counter ? num(x.counter.packets) + " packets" : ""].filter(Boolean).join(" ");
    tickExpiry(li);
  });
}
function tickExpiry(li) {
  const at = Number(li.dataset.expiresAt);
  setText($(".exp", li), (li.dataset.expiresAt ? "expires in " + dur(at - Date.now()) : "") + (li.dataset.extra ? " " + li.dataset.extra : ""));
}
$("#fw-sort").addEventListener("change", () => { S.fwForce = true; refresh(); });
$("#fw-search").addEventListener("input", drawRules);
$("#fw-chain").addEventListener("change", drawRules);

// ---------- drops ----------
function ruleLink(x) {
  const p = topLabel(x), rules = arr(x, "rules");
  const where = rules.map((r) => r.family + " " + r.table + " " + r.chain + (r.comment ? " (" + r.comment + ")" : "")).join("; ");
  return h("span", {}, h("a", { href: "#firewall?q=" + encodeURIComponent('prefix "' + p), title: where || "the rules that log with this prefix" }, p),
    rules.length ? h("span", { class: "muted" }, " → " + Array.from(new Set(rules.map((r) => r.chain))).join(", ")) : null);
}
async function renderDrops() {
  const sec = $("#drops");
  if (!gate("drops", sec)) return;
  const win = $("#dr-window").value;
  const res = await api("/api/v1/drops?window=" + encodeURIComponent(win));
  if (!res.ok) { naPanel(sec, unavailable(res, "drops")); return; }
  okPanel(sec);
  const r = res.data || {};
  setText($("#dr-totals"), num(r.events || 0) + " packets dropped, " + bytes(r.bytes || 0) + " in the " + $("#dr-window").selectedOptions[0].text);
  const tops = [["sources", "Top sources"], ["ports", "Top ports"], ["protocols", "Protocols"], ["interfaces", "Interfaces"], ["prefixes", "Log prefixes (rules)"], ["destinations", "Destinations"]];
  keyed($("#dr-tops"), tops.filter(([k]) => Array.isArray(r[k])), ([k]) => k, ([k, title]) => h("article", { "aria-label": title },
    h("h3", {}, title), h("table", { class: "tops" }, h("tbody"))), (el, [k]) => {
    topRows($("tbody", el), r[k].slice(0, 10), k, k === "prefixes" ? ruleLink : null);
  });
  const recent = arr(res.data, "recent").slice(0, 50); // newest first
  const hp = (a, p) => (a === null || a === undefined ? "" : p !== undefined && p !== null ? (String(a).includes(":") ? "[" + a + "]:" : a + ":") + p : String(a));
  rows($("#dr-recent tbody"), recent, (e) => [e.time_ms, e.src, e.sport, e.dport, e.len].join("|"), (e) => [
    clock(e.time_ms), e.prefix || "", e.in_iface || "", hp(e.src, e.sport), hp(e.dst, e.dport), e.proto || "", num(e.len)]);
}
$("#dr-window").addEventListener("change", () => refresh());

// ---------- NAT64 ----------
function validV6(t) {
  const [a, len] = t.split("/");
  if (len !== undefined && !(/^\d{1,3}$/.test(len) && Number(len) <= 128)) return false;
  try { return a.includes(":") && new URL("http://[" + a + "]/").hostname.length > 2; } catch (_) { return false; }
}
async function renderNat64() {
  const sec = $("#nat64");
  if (!gate("nat64", sec, "NAT64")) return;
  const p = $("#n64-proto").value, typed = $("#n64-client").value.trim(), lim = 50;
  // Only a whole IPv6 address or prefix is sent (the browser's URL parser checks it), so
  // half-typed input never earns a 400.
  const c = typed && validV6(typed) ? typed : "";
  setAttr($("#n64-client"), "aria-invalid", typed && !c ? "true" : null);
  const q = "?limit=" + lim + "&offset=" + S.n64Offset + (p ? "&proto=" + p : "") + (c ? "&client=" + encodeURIComponent(c) : "");
  const [st, ss] = await Promise.all([api("/api/v1/nat64"), api("/api/v1/nat64/sessions" + q)]);
  if (!st.ok) { naPanel(sec, unavailable(st, "NAT64")); return; }
  okPanel(sec);
  if (st.data && st.data.sample_data) naPanel(sec, "recorded sample data (demo), not this machine's Jool");
  const insts = nat64Instances(st.data);
  keyed($("#n64-instances"), insts, (i) => i.name, (i) => h("article", { class: "inst" }, h("h2", {}), h("p", { class: "st" }),
    h("div", { class: "grid" },
      h("div", {}, h("h3", {}, "By protocol"), h("table", { class: "tops by-proto" }, h("tbody"))),
      h("div", {}, h("h3", {}, "By state"), h("table", { class: "tops by-state" }, h("tbody"))),
      h("div", {}, h("h3", {}, "Top clients"), h("table", { class: "tops clients" }, h("tbody"))),
      h("div", {}, h("h3", {}, "Pool4 ports in use"), h("table", { class: "tops pool4" }, h("tbody"))))), (el, i) => {
    const sum = i.summary || {};
    setText($("h2", el), "Instance " + i.name);
    const probs = arr(i, "problems").map((x) => x.message).join("; ");
    setText($(".st", el), instState(i) + " · " + num(sum.total) + " sessions" + (probs ? " · " + probs : ""));
    setAttr($(".st", el), "class", "st " + (instState(i) === "running" ? "state-up" : "state-degraded"));
    topRows($(".by-proto tbody", el), arr(sum, "by_proto").map((x) => ({ name: x.proto, count: x.sessions })), "sessions");
    topRows($(".by-state tbody", el), arr(sum, "by_state").map((x) => ({ name: x.proto + " " + (x.state || "–"), count: x.sessions })), "sessions");
    topRows($(".clients tbody", el), arr(sum, "top_clients").slice(0, 10).map((x) => ({ addr: x.address, count: x.sessions })), "client");
    const pool = arr(sum, "pool4");
    rows($(".pool4 tbody", el), pool, (x) => x.proto, (x) => [x.proto, num(x.ports_used) + (x.ports_total ? " of " + num(x.ports_total) : " (no pool4 range)"),
      { node: () => bar(x.used_ratio || 0, x.proto + " pool4 " + Math.round((x.used_ratio || 0) * 100) + "% used"), sig: String(x.used_ratio) }]);
    $(".pool4", el).parentElement.hidden = !pool.length;
  });
  const stats = insts.flatMap((i) => arr(i, "stats").map((s) => ({ ...s, inst: i.name })));
  stats.sort((a, b) => (b.value > 0) - (a.value > 0) || String(a.name).localeCompare(String(b.name)));
  rows($("#n64-stats tbody"), stats, (s) => s.inst + "/" + s.name, (s) => [(insts.length > 1 ? s.inst + " " : "") + s.name, num(s.value)], (tr, s) => { tr.title = s.explanation || ""; });
  if (!ss.ok) { setText($("#n64-page"), unavailable(ss, "sessions")); rows($("#n64-sessions tbody"), [], () => "", () => []); return; }
  const page = ss.data || {};
  const list = arr(page, "sessions");
  const ep = (a, p) => (String(a).includes(":") ? "[" + a + "]#" : a + "#") + p;
  rows($("#n64-sessions tbody"), list, (s) => [s.proto, s.ipv6_client, s.ipv6_client_id, s.ipv4_server, s.ipv4_server_id].join("|"), (s) => [
    s.proto, ep(s.ipv6_client, s.ipv6_client_id), ep(s.ipv6_server, s.ipv6_server_id), ep(s.ipv4_local, s.ipv4_local_id), ep(s.ipv4_server, s.ipv4_server_id), s.state || "", s.expires_in || dur(s.expires_in_ms)]);
  const total = page.total !== undefined ? page.total : list.length;
  setText($("#n64-page"), total ? "sessions " + (S.n64Offset + 1) + "–" + (S.n64Offset + list.length) + " of " + num(total) : "no sessions match");
  $("#n64-prev").disabled = S.n64Offset === 0;
  $("#n64-next").disabled = S.n64Offset + lim >= total;
}
$("#n64-prev").addEventListener("click", () => { S.n64Offset = Math.max(0, S.n64Offset - 50); refresh(); });
$("#n64-next").addEventListener("click", () => { S.n64Offset += 50; refresh(); });
$("#n64-proto").addEventListener("change", () => { S.n64Offset = 0; refresh(); });
let clientTimer = null;
$("#n64-client").addEventListener("input", () => { clearTimeout(clientTimer); clientTimer = setTimeout(() => { S.n64Offset = 0; refresh(); }, 300); });

// ---------- events ----------
async function renderEvents() {
  const res = await api("/api/v1/events?limit=200");
  if (!res.ok) return;
  const evs = arr(res.data, "events").slice().reverse();
  const sel = $("#ev-kind");
  const kinds = Array.from(new Set(evs.map((e) => e.kind))).sort();
  for (const k of kinds) if (!$$("option", sel).some((o) => o.value === k)) sel.append(h("option", { value: k }, k));
  const shown = evs.filter((e) => !sel.value || e.kind === sel.value);
  keyed($("#ev-list"), shown, (e) => e.id, (e) => h("li", {}, h("time", { datetime: Number.isFinite(e.time) ? new Date(e.time).toISOString() : null }, clock(e.time)), " ",
    h("span", { class: "badge kind" }, e.kind), " ", e.message, " ", h("span", { class: "muted" }, e.source || "")), () => {});
}
$("#ev-kind").addEventListener("change", () => refresh());

// ---------- views, refresh ----------
const VIEWS = {
  overview: () => Promise.all([renderWan(), renderRelays(), renderNat64Overview(), renderDropsOverview(), renderHot()]),
  firewall: renderFirewall, drops: renderDrops, nat64: renderNat64, events: renderEvents,
};
function route(init) {
  const [v, q] = location.hash.slice(1).split("?");
  S.view = VIEWS[v] ? v : "overview";
  for (const name of Object.keys(VIEWS)) {
    $("#" + name).hidden = name !== S.view;
    const tab = $("#tab-" + name);
    tab.setAttribute("aria-selected", String(name === S.view));
    tab.tabIndex = name === S.view ? 0 : -1;
  }
  const m = /(?:^|&)q=([^&]*)/.exec(q || "");
  if (S.view === "firewall" && m) { $("#fw-search").value = decodeURIComponent(m[1]); }
  S.fwForce = true;
  if (init !== true) refresh();
}
for (const tab of $$("[role=tab]")) {
  // pushState, not location.hash: a fragment navigation would move focus off the tab.
  tab.addEventListener("click", () => { history.pushState(null, "", "#" + tab.getAttribute("aria-controls")); route(); });
  tab.addEventListener("keydown", (e) => {
    const tabs = $$("[role=tab]"), i = tabs.indexOf(tab);
    const j = e.key === "ArrowRight" ? (i + 1) % tabs.length : e.key === "ArrowLeft" ? (i + tabs.length - 1) % tabs.length : -1;
    if (j >= 0) { e.preventDefault(); tabs[j].focus(); tabs[j].click(); }
  });
}
window.addEventListener("hashchange", () => route());
window.addEventListener("popstate", () => route());

let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const st = await api("/api/v1/status");
    if (st.ok) {
      S.status = st.data;
      S.comps = st.data.components || {};
      setText($("#version"), "v" + st.data.version + " · up " + dur(st.data.uptime_s * 1000));
      $("#demo-badge").hidden = !st.data.demo;
      renderComponents(st.data);
      await VIEWS[S.view]();
      setText($("#updated"), "updated " + new Date().toLocaleTimeString());
      // For the load-time bench: the first moment the page shows the daemon's data.
      if (!S.shown) { S.shown = true; performance.mark("pirouterd-first-data"); }
    } else {
      setText($("#updated"), st.status === 401 ? "reading needs the token: enter it under Token" : st.error ? st.error.message : "pirouterd answered HTTP " + st.status);
      if (st.status === 401) openToken(false);
    }
  } catch (e) {
    // A bug in a renderer must not stop the refresh loop; say so where people look.
    setText($("#updated"), "page error: " + e.message);
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}
let timer = null;
function schedule() {
  clearInterval(timer);
  timer = null;
  if (!document.hidden) { refresh(); timer = setInterval(refresh, REFRESH_MS); }
}
// Countdowns tick every second between refreshes, without asking the server.
setInterval(() => {
  if (document.hidden) return;
  $$("button.relay").forEach(tickRelay);
  $$("li[data-expires-at]").forEach(tickExpiry);
}, 1000);
document.addEventListener("visibilitychange", schedule);
tokenState();
route(true);
schedule();
