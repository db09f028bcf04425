// pirouterd page: reads the JSON API and redraws without flicker; pauses while hidden.
"use strict";
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: authHeaders() });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function authHeaders() {
  const t = localStorage.getItem("pirouterd-token");
  return t ? { Authorization: "Bearer " + t } : {};
}

function detail(d) {
  if (d === null || d === undefined) return "";
  if (typeof d !== "object") return String(d);
  return Object.entries(d).map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)).join(", ");
}

function renderStatus(s) {
  $("#version").textContent = "v" + s.version + ", up " + Math.floor(s.uptime_s / 60) + " min";
  $("#demo-badge").hidden = !s.demo;
  const rows = Object.entries(s.components).map(([name, c]) =>
    el("tr", { "data-component": name },
      el("td", {}, name),
      el("td", { class: "state-" + c.state }, c.state),
      el("td", {}, c.last_error && c.state !== "up" ? c.last_error : detail(c.detail))));
  $("#components tbody").replaceChildren(...rows);
}

function renderEvents(ev) {
  const items = ev.events.slice().reverse().map((e) =>
    el("li", {}, new Date(e.time).toLocaleTimeString() + " " + e.kind + ": " + e.message));
  $("#events").replaceChildren(...items);
}

async function refresh() {
  try {
    const [s, ev] = await Promise.all([getJSON("/api/v1/status"), getJSON("/api/v1/events?limit=50")]);
    renderStatus(s);
    renderEvents(ev);
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("#updated").textContent = "cannot reach pirouterd: " + e.message;
  }
}

let timer = null;
function schedule() {
  clearInterval(timer);
  if (!document.hidden) { refresh(); timer = setInterval(refresh, 5000); }
}
document.addEventListener("visibilitychange", schedule);
schedule();
