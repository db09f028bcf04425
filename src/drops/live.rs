//! The drops area in the daemon: the NFLOG listener thread, `GET /api/v1/drops`, and the
//! `pirouterd_drops_total` / `pirouterd_nflog_lost_total` metrics.
//!
//! The listener thread owns the [`Aggregator`] (no lock on the packet path) and publishes an
//! immutable [`DropsView`] at most once a second; HTTP handlers and the metrics writer only
//! read that view. The socket lives in `sys::nflog`; this file is glue.

use crate::logging::error_chain as chain;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::aggregate::{Aggregator, LabelKey, NameKey, Ranked, RecentDrop, Window, WindowReport};
use super::rules::PrefixIndex;
use crate::app::App;
use crate::http::metrics::{Kind, MetricsWriter};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::sys::nflog::{NflogOptions, NflogSocket};

/// The component name in `/api/v1/status` and `pirouterd_component_up`.
pub const COMPONENT: &str = "drops";
/// Rows kept per top table in the published view (`?limit=` may ask for fewer).
pub const VIEW_TOP: usize = 25;
/// How often the view is republished while packets arrive.
const PUBLISH_EVERY_MS: u64 = 1000;
/// How long to wait before binding again after a failure.
const RETRY_MS: u64 = 10_000;

/// What the HTTP side sees: the listener thread's last published state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DropsView {
    /// The NFLOG groups configured.
    pub groups: Vec<u16>,
    /// Whether the groups are bound right now.
    pub listening: bool,
    /// Unix ms of this view.
    pub updated_ms: u64,
    /// Packets counted since start (exact).
    pub total_events: u64,
    pub total_bytes: u64,
    /// Packets the kernel logged that never reached pirouterd (socket buffer overflows).
    pub lost: u64,
    /// Times the socket buffer overflowed (ENOBUFS).
    pub overruns: u64,
    /// 5m, 1h, 24h.
    pub windows: Vec<WindowReport>,
    /// Newest first.
    pub recent: Vec<RecentDrop>,
    /// Exact counts per (proto, iface, prefix) since start, for the metrics.
    #[serde(skip)]
    pub labels: Vec<(LabelKey, u64)>,
}

impl DropsView {
    /// A view of `agg` as of `now_ms`.
    pub fn build(
        agg: &Aggregator,
        groups: &[u16],
        listening: bool,
        overruns: u64,
        now_ms: u64,
    ) -> Self {
        DropsView {
            groups: groups.to_vec(),
            listening,
            updated_ms: now_ms,
            total_events: agg.total_events(),
            total_bytes: agg.total_bytes(),
            lost: agg.lost(),
            overruns,
            windows: Window::ALL
                .iter()
                .map(|w| agg.window(*w, now_ms, VIEW_TOP))
                .collect(),
            recent: agg.recent().rev().cloned().collect(),
            labels: agg.label_totals(),
        }
    }
}

/// The start hook (`daemon::AREA_STARTS`).
pub fn start(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    let mut groups = app.config.drops.nflog_groups.clone();
    // Binding a group twice on one socket is refused by the kernel; once is what is meant.
    groups.sort_unstable();
    groups.dedup();
    app.components
        .register(COMPONENT, !groups.is_empty(), app.now_ms());
    if groups.is_empty() {
        return Vec::new();
    }
    let app = app.clone();
    let spawned = std::thread::Builder::new()
        .name("drops-nflog".into())
        .spawn(move || listen(&app, groups));
    match spawned {
        Ok(h) => vec![h],
        Err(e) => {
            log::error!("drops: cannot start the NFLOG thread: {e}");
            Vec::new()
        }
    }
}

fn listen(app: &App, groups: Vec<u16>) {
    let opts = NflogOptions {
        groups: groups.clone(),
        // Wake often enough to notice the daemon stopping.
        read_timeout: Duration::from_millis(200),
        ..NflogOptions::default()
    };
    let mut agg = Aggregator::default();
    let mut sock: Option<NflogSocket> = None;
    let mut retry_at = 0u64;
    let mut published_ms = 0u64;
    let mut dirty = true;
    let mut overruns_before = 0u64;
    let mut last_loss_log = 0u64;
    while !app.is_stopping() {
        let now = app.now_ms();
        if sock.is_none() && now >= retry_at {
            match NflogSocket::open(&opts) {
                Ok(s) => {
                    log::info!("drops: listening on NFLOG groups {groups:?}");
                    // Records that arrived while the later groups were being bound.
                    agg.record_lost(s.lost);
                    overruns_before = 0;
                    sock = Some(s);
                    dirty = true;
                }
                Err(e) => {
                    let msg = chain(&e);
                    log::warn!("drops: {msg}");
                    app.components.degraded(COMPONENT, now, msg);
                    retry_at = now + RETRY_MS;
                }
            }
        }
        match sock.as_mut() {
            Some(s) => {
                let now = app.now_ms();
                match s.recv_events(|ev| agg.record(ev, now)) {
                    Ok(stats) => {
                        if stats.packets > 0 || stats.lost > 0 || stats.overrun {
                            dirty = true;
                        }
                        if stats.lost > 0 {
                            agg.record_lost(stats.lost);
                            if now.saturating_sub(last_loss_log) > 60_000 {
                                log::warn!(
                                    "drops: the kernel dropped {} NFLOG records (socket buffer \
                                     full); {} lost since start",
                                    stats.lost,
                                    agg.lost()
                                );
                                last_loss_log = now;
                            }
                        }
                    }
                    Err(e) => {
                        let msg = chain(&e);
                        log::warn!("drops: {msg}; binding again in {} s", RETRY_MS / 1000);
                        app.components.degraded(COMPONENT, now, msg);
                        overruns_before += s.overruns;
                        sock = None;
                        retry_at = now + RETRY_MS;
                        dirty = true;
                    }
                }
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
        let now = app.now_ms();
        if dirty && now.saturating_sub(published_ms) >= PUBLISH_EVERY_MS
            || now.saturating_sub(published_ms) >= 10 * PUBLISH_EVERY_MS
        {
            let listening = sock.is_some();
            let overruns = overruns_before + sock.as_ref().map_or(0, |s| s.overruns);
            let view = DropsView::build(&agg, &groups, listening, overruns, now);
            if listening {
                app.components.up(
                    COMPONENT,
                    now,
                    json!({
                        "groups": groups,
                        "packets": view.total_events,
                        "lost": view.lost,
                        "last_5m": view.windows.first().map_or(0, |w| w.events),
                    }),
                );
            }
            app.drops.set(view);
            published_ms = now;
            dirty = false;
        }
    }
    if let Some(s) = sock {
        s.close();
    }
}

/// `GET /api/v1/drops?window=5m|1h|24h&limit=N` (`daemon`'s `AREA_ROUTES`).
pub fn route(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    if req.path != "/api/v1/drops" {
        return None;
    }
    if !matches!(req.method, Method::Get | Method::Head) {
        return Some(ApiResponse::method_not_allowed(
            &req.method,
            &["GET", "HEAD"],
        ));
    }
    let window = match req.query("window") {
        None => Window::FiveMinutes,
        Some(w) => match Window::parse(w) {
            Some(w) => w,
            None => {
                return Some(ApiResponse::error(
                    400,
                    "bad_query",
                    format!("?window= must be 5m, 1h or 24h, got {w:?}"),
                ))
            }
        },
    };
    let limit = match req.query_usize("limit", 10, VIEW_TOP) {
        Ok(n) => n,
        Err(r) => return Some(r),
    };
    let view = app.drops.get();
    Some(ApiResponse::json(
        200,
        &response_body(&view, window, limit, app),
    ))
}

fn response_body(view: &DropsView, window: Window, limit: usize, app: &App) -> serde_json::Value {
    let empty;
    let w = match view.windows.iter().find(|w| w.window == window.name()) {
        Some(w) => w,
        None => {
            empty = WindowReport {
                window: window.name(),
                from_ms: app.now_ms().saturating_sub(window.millis()),
                now_ms: app.now_ms(),
                events: 0,
                bytes: 0,
                sources: Vec::new(),
                destinations: Vec::new(),
                ports: Vec::new(),
                protocols: Vec::new(),
                interfaces: Vec::new(),
                prefixes: Vec::new(),
            };
            &empty
        }
    };
    let cut = |v: &[_]| -> serde_json::Value {
        serde_json::to_value(&v[..v.len().min(limit)]).unwrap_or_default()
    };
    json!({
        "window": w.window,
        "from_ms": w.from_ms,
        "now_ms": w.now_ms,
        "events": w.events,
        "bytes": w.bytes,
        "sources": cut_rows(&w.sources, limit),
        "destinations": cut_rows(&w.destinations, limit),
        "ports": cut_rows(&w.ports, limit),
        "protocols": cut_rows(&w.protocols, limit),
        "interfaces": cut_rows(&w.interfaces, limit),
        "prefixes": prefixes_with_rules(&w.prefixes[..w.prefixes.len().min(limit)], app),
        "recent": cut(&view.recent),
        "totals": {
            "events": view.total_events,
            "bytes": view.total_bytes,
            "lost": view.lost,
            "overruns": view.overruns,
        },
        "groups": view.groups,
        "listening": view.listening,
        "updated_ms": view.updated_ms,
    })
}

/// Each prefix row with the rules that log with that prefix (from the firewall snapshot;
/// empty until the first snapshot, or when no rule carries it any more), so the page can
/// link a drop to its rule.
fn prefixes_with_rules(rows: &[Ranked<NameKey>], app: &App) -> serde_json::Value {
    let fw = app.firewall.latest.get();
    let index = fw
        .snapshot
        .as_ref()
        .map(|s| PrefixIndex::build(s.rules.iter().map(|r| (r, r.text()))));
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let rules: Vec<serde_json::Value> = index
                .as_ref()
                .map(|i| i.rules_for(&row.key.name))
                .unwrap_or(&[])
                .iter()
                .map(|r| {
                    json!({
                        "family": r.family().to_string(),
                        "table": &**r.table(),
                        "chain": &**r.chain(),
                        "handle": r.handle,
                        "comment": r.comment(),
                    })
                })
                .collect();
            let mut v = json!({"name": row.key.name, "count": row.count, "rules": rules});
            if row.error > 0 {
                v["error"] = json!(row.error);
            }
            v
        })
        .collect();
    serde_json::Value::Array(rows)
}

fn cut_rows<T: Serialize>(v: &[T], limit: usize) -> serde_json::Value {
    serde_json::to_value(&v[..v.len().min(limit)]).unwrap_or_default()
}

/// `pirouterd_drops_total{proto,iface,prefix}` and `pirouterd_nflog_lost_total`
/// (`AREA_METRICS`). No per-address series: the label sets are bounded by the aggregator.
pub fn metrics(app: &App, w: &mut MetricsWriter) {
    let view = app.drops.get();
    w.family(
        "pirouterd_drops_total",
        Kind::Counter,
        "Dropped packets logged to NFLOG since pirouterd started, by protocol, interface and log prefix.",
    );
    for (k, n) in &view.labels {
        w.sample(
            "pirouterd_drops_total",
            &[
                ("proto", &k.proto),
                ("iface", &k.iface),
                ("prefix", &k.prefix),
            ],
            *n as f64,
        );
    }
    w.family(
        "pirouterd_nflog_lost_total",
        Kind::Counter,
        "NFLOG records the kernel could not deliver because pirouterd's socket buffer was full.",
    );
    w.sample("pirouterd_nflog_lost_total", &[], view.lost as f64);
}
