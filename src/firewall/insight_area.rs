//! Firewall insight in the daemon: the glue between [`Insight`] (pure) and the app.
//!
//! - [`InsightArea`] is the `App` field: the insight state behind a lock (scrapes and API
//!   reads share it; a sample takes it for writing), and the nf_tables socket for managed
//!   sets. Metrics are written straight into the scrape from label blocks built once per
//!   ruleset shape (2.3 ms at 10k rules): keeping a rendered copy would cost more memory
//!   than the rendering costs time.
//! - [`feed`] takes one ruleset sample: identity, rates, reload and table events, metrics,
//!   and a periodic save of first-seen/last-hit times.
//! - [`route`]: `GET /api/v1/firewall/rules` and `POST`/`DELETE
//!   /api/v1/firewall/sets/{family}/{table}/{set}/elements`.
//! - [`metrics`], [`start`] (restores persisted state) and [`stop`] (saves it).

use crate::logging::error_chain;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::identity::{Counter, ReloadDiff, RuleSample, RulesetSample, TableRef};
use super::insight::{Insight, RuleView, RulesQuery, Sort};
use super::metrics::{NamedCounterSample, SetSample};
use super::persist;
use super::{Family, RulesetSnapshot};
use crate::app::{lock, App};
use crate::http::metrics::MetricsWriter;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::sys::nft_sets::{NftSets, Op, SetError};

/// The insight state the daemon shares between its sampler and its HTTP workers.
#[derive(Debug, Default)]
pub struct InsightArea {
    insight: RwLock<Insight>,
    /// Bytes of the last nft metrics written, to size the next scrape's buffer at once.
    metrics_len: std::sync::atomic::AtomicUsize,
    /// Kept open across requests; reopened after an I/O error.
    sets: Mutex<Option<NftSets>>,
    saved: Mutex<SaveState>,
}

#[derive(Debug, Default)]
struct SaveState {
    last_ms: u64,
    samples: u64,
}

impl InsightArea {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Insight> {
        self.insight.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Insight> {
        self.insight.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        lock(&self.saved).samples
    }

    /// The rules, sorted and limited, at `now_ms`.
    pub fn rules(&self, q: &RulesQuery, now_ms: u64) -> Vec<RuleView> {
        self.read().rules(q, now_ms)
    }

    /// Renders the nft families from the current state (what each sample does once).
    pub fn render_now(&self, out: &mut String) {
        self.read().render_metrics(out);
    }

    /// Rules with coarse history and with fine history.
    pub fn history_len(&self) -> (usize, usize) {
        self.read().history().len()
    }
}

/// Least time between two saves caused by reloads: a script reloading in a loop makes at
/// most one write a second.
const SAVE_AFTER_RELOAD_GAP_MS: u64 = 1_000;

/// How often the insight thread looks for a new ruleset snapshot.
const POLL: Duration = Duration::from_millis(200);

/// Start hook: restores first-seen and last-hit times from the state directory, then
/// starts the thread that feeds every new nftables snapshot (published by the nftables
/// sampler on `app.firewall.latest`) into [`feed`].
pub fn start(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    restore(app);
    let app = app.clone();
    match std::thread::Builder::new()
        .name("insight".into())
        .spawn(move || run(&app))
    {
        Ok(h) => vec![h],
        Err(e) => {
            log::error!("cannot start the firewall insight thread: {e}");
            Vec::new()
        }
    }
}

fn run(app: &App) {
    let mut last: Option<Arc<RulesetSnapshot>> = None;
    while !app.is_stopping() {
        let view = app.firewall.latest.get();
        if let Some(snap) = &view.snapshot {
            if !last.as_ref().is_some_and(|l| Arc::ptr_eq(l, snap)) {
                let (sample, counters, sets) = from_snapshot(snap);
                feed(app, sample, counters, sets, view.taken_ms);
                last = Some(snap.clone());
            }
        }
        std::thread::sleep(POLL);
    }
}

/// What insight needs of a ruleset snapshot. Table and chain names are shared, not copied.
pub fn from_snapshot(
    snap: &RulesetSnapshot,
) -> (RulesetSample, Vec<NamedCounterSample>, Vec<SetSample>) {
    let families: HashMap<Family, Arc<str>> = snap
        .tables
        .iter()
        .map(|t| (t.family, Arc::from(t.family.to_string())))
        .collect();
    let fam = |f: Family| -> Arc<str> {
        families
            .get(&f)
            .cloned()
            .unwrap_or_else(|| Arc::from(f.to_string()))
    };
    let table_handles: HashMap<(Family, &str), u64> = snap
        .tables
        .iter()
        .map(|t| ((t.family, &*t.name), t.handle))
        .collect();
    let sample = RulesetSample {
        tables: snap
            .tables
            .iter()
            .map(|t| TableRef {
                family: t.family.to_string(),
                name: t.name.to_string(),
            })
            .collect(),
        rules: snap
            .rules
            .iter()
            .map(|r| RuleSample {
                family: fam(r.family()),
                table: r.table().clone(),
                chain: r.chain().clone(),
                table_handle: table_handles
                    .get(&(r.family(), &**r.table()))
                    .copied()
                    .unwrap_or(0),
                handle: r.handle,
                comment: r.comment().map(str::to_string),
                text: r.text().to_string(),
                counter: r.has_counter().then_some(Counter {
                    packets: r.counter.packets,
                    bytes: r.counter.bytes,
                }),
            })
            .collect(),
    };
    let counters = snap
        .counters()
        .map(|(o, c)| NamedCounterSample {
            family: o.family.to_string(),
            table: o.table.to_string(),
            name: o.name.to_string(),
            packets: c.packets,
            bytes: c.bytes,
        })
        .collect();
    let sets = snap
        .sets
        .iter()
        .filter(|s| !s.flags.anonymous)
        .filter_map(|s| {
            Some(SetSample {
                family: s.family.to_string(),
                table: s.table.to_string(),
                name: s.name.to_string(),
                elements: s.element_count?,
            })
        })
        .collect();
    (sample, counters, sets)
}

/// Loads persisted rule state into the app's insight.
pub fn restore(app: &App) {
    let now = app.now_ms();
    let loaded = persist::load(&app.config.state.dir, now);
    if let Some(p) = &loaded.problem {
        log::warn!("{}", error_chain(p));
        app.events.push(
            now,
            "daemon",
            "boot",
            format!("firewall rule history not restored: {p}"),
            json!({"error": error_chain(p)}),
        );
    }
    let n = loaded.states.len();
    *app.insight.write() = Insight::restore(loaded.states, now);
    lock(&app.insight.saved).last_ms = now;
    log::info!("restored first-seen/last-hit of {n} firewall rules");
}

/// Stop hook: saves rule state.
pub fn stop(app: &App) {
    save(app, app.now_ms());
}

fn save(app: &App, now: u64) {
    let ins = app.insight.read();
    match persist::save(&app.config.state.dir, ins.states(), now) {
        Ok(()) => lock(&app.insight.saved).last_ms = now,
        Err(e) => log::warn!("{}", error_chain(&e)),
    }
}

/// Takes one ruleset sample at `now_ms`: updates identity and rates, logs a reload and
/// tables coming and going as events, and saves rule state after a reload (at most once a
/// second) or every [`persist::SAVE_EVERY_MS`].
pub fn feed(
    app: &App,
    sample: RulesetSample,
    counters: Vec<NamedCounterSample>,
    sets: Vec<SetSample>,
    now_ms: u64,
) -> Option<ReloadDiff> {
    let diff = app.insight.write().observe(sample, counters, sets, now_ms);
    if let Some(d) = &diff {
        reload_events(app, d, now_ms);
    }
    let due = {
        let mut s = lock(&app.insight.saved);
        s.samples += 1;
        let since = now_ms.saturating_sub(s.last_ms);
        (diff.is_some() && since >= SAVE_AFTER_RELOAD_GAP_MS) || since >= persist::SAVE_EVERY_MS
    };
    if due {
        save(app, now_ms);
    }
    diff
}

fn reload_events(app: &App, d: &ReloadDiff, now_ms: u64) {
    if d.added_count + d.removed_count + d.changed_count + d.rehandled_count > 0 {
        app.events.push(
            now_ms,
            "ruleset",
            "kernel",
            d.to_string(),
            serde_json::to_value(d).unwrap_or_default(),
        );
    }
    for (t, verb) in d
        .tables_added
        .iter()
        .map(|t| (t, "appeared"))
        .chain(d.tables_removed.iter().map(|t| (t, "vanished")))
    {
        app.events.push(
            now_ms,
            "table",
            "kernel",
            format!("table {t} {verb}"),
            json!({"family": t.family, "table": t.name, "change": verb}),
        );
    }
}

/// The `pirouterd_nft_*` families of the last sample.
pub fn metrics(app: &App, w: &mut MetricsWriter) {
    use std::sync::atomic::Ordering::Relaxed;
    let out = w.buffer();
    let start = out.len();
    // One allocation of the right size instead of a dozen doublings of a 4 MB buffer.
    out.reserve(app.insight.metrics_len.load(Relaxed) + 4096);
    app.insight.read().render_metrics(out);
    app.insight.metrics_len.store(out.len() - start, Relaxed);
}

/// Body of a managed-set change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ElementsBody {
    elements: Vec<String>,
    /// Human duration (`"1h"`); adds only.
    #[serde(default)]
    timeout: Option<String>,
}

/// Routes of this area; `None` for other paths.
pub fn route(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    if req.path == "/api/v1/firewall/rules" {
        return Some(match req.method {
            Method::Get | Method::Head => rules(app, req),
            _ => ApiResponse::method_not_allowed(&req.method, &["GET"]),
        });
    }
    let seg = req.segments_after("/api/v1/firewall/sets")?;
    match seg.as_slice() {
        [family, table, set, last] if last == "elements" => Some(match req.method {
            Method::Post => elements(app, req, family, table, set, Op::Add),
            Method::Delete => elements(app, req, family, table, set, Op::Delete),
            _ => ApiResponse::method_not_allowed(&req.method, &["POST", "DELETE"]),
        }),
        _ => None,
    }
}

fn rules(app: &App, req: &ApiRequest) -> ApiResponse {
    let sort: Sort = match req.query("sort").unwrap_or("").parse() {
        Ok(s) => s,
        Err(e) => return ApiResponse::error(400, "bad_query", format!("?sort=: {e}")),
    };
    let limit = match req.query_usize("limit", usize::MAX >> 1, usize::MAX >> 1) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let flag = |k: &str| matches!(req.query(k), Some("1" | "true" | "yes"));
    let q = RulesQuery {
        sort,
        limit: Some(limit),
        sparkline: flag("sparkline"),
        fine: flag("fine"),
    };
    let now = app.now_ms();
    let ins = app.insight.read();
    let rules = ins.rules(&q, now);
    ApiResponse::json(
        200,
        &json!({
            "sampled": app.insight.samples() > 0,
            "sort": req.query("sort").unwrap_or("ruleset"),
            "reloads": ins.reloads(),
            "count": rules.len(),
            "rules": rules,
        }),
    )
}

fn elements(
    app: &App,
    req: &ApiRequest,
    family: &str,
    table: &str,
    set: &str,
    op: Op,
) -> ApiResponse {
    let name = format!("{family}/{table}/{set}");
    let managed = app
        .config
        .firewall
        .managed_sets
        .iter()
        .any(|m| m.family == family && m.table == table && m.set == set);
    if !managed {
        return set_error(&SetError::NotManaged(name));
    }
    let Some(fam) = Family::parse(family) else {
        return ApiResponse::error(404, "no_such_set", format!("no nftables family {family:?}"));
    };
    let body: ElementsBody = match req.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let timeout = match body.timeout.as_deref().map(crate::duration::parse) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return ApiResponse::error(400, "bad_timeout", format!("timeout: {e}")),
    };
    if op == Op::Delete && timeout.is_some() {
        return ApiResponse::error(400, "bad_timeout", "timeout: only adds take a timeout");
    }
    let result = {
        let mut sock = lock(&app.insight.sets);
        if sock.is_none() {
            match NftSets::open() {
                Ok(s) => *sock = Some(s),
                Err(e) => return set_error(&e),
            }
        }
        let r = match sock.as_mut() {
            Some(s) => s.change(fam, table, set, op, &body.elements, timeout),
            None => return ApiResponse::error(500, "netlink_error", "no netlink socket"),
        };
        if matches!(r, Err(SetError::Io { .. } | SetError::Timeout { .. })) {
            *sock = None;
        }
        r
    };
    match result {
        Ok((change, now)) => {
            app.events.push(
                app.now_ms(),
                "ruleset",
                &format!("api {}", req.client),
                change.to_string(),
                json!({"set": name, "elements": body.elements,
                       "timeout": timeout.map(|t| t.as_millis() as u64)}),
            );
            ApiResponse::json(
                200,
                &json!({
                    "set": name,
                    "applied": change.to_string(),
                    "elements": now,
                }),
            )
        }
        Err(e) => set_error(&e),
    }
}

fn set_error(e: &SetError) -> ApiResponse {
    ApiResponse::error(e.status(), e.code(), error_chain(e))
}
