//! The NAT64 area inside the daemon: a sampler thread that runs the Jool source every
//! `nat64.interval`, publishes the snapshot for the API and metrics, keeps the `jool`
//! component's health, the `nat64_down` LED signal and the event log up to date. A failing
//! Jool degrades the component; the daemon carries on.

use super::snapshot::{Nat64Snapshot, Nat64Source, ProblemCode};
use crate::app::App;
use crate::sys::jool::{JoolSource, JoolSourceConfig};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The area's start hook (see `daemon::AREA_STARTS`).
pub fn start(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    let cfg = &app.config.nat64;
    app.components.register("jool", cfg.enabled, app.now_ms());
    if !cfg.enabled {
        return Vec::new();
    }
    let mut src = JoolSourceConfig::new(&cfg.jool);
    src.instances = cfg.instances.clone();
    src.timeout = cfg.timeout;
    src.sample_data = app.demo;
    let stop_app = app.clone();
    src.cancel = Some(Arc::new(move || stop_app.is_stopping()));
    let source = JoolSource::new(src);
    let interval = cfg.interval;
    let thread_app = app.clone();
    let spawned = std::thread::Builder::new()
        .name("jool".into())
        .spawn(move || run(&thread_app, source, interval));
    match spawned {
        Ok(h) => vec![h],
        Err(e) => {
            app.components.degraded(
                "jool",
                app.now_ms(),
                format!("cannot start the NAT64 sampler thread: {e}"),
            );
            Vec::new()
        }
    }
}

/// Samples every `interval` until the daemon stops, waking every 200 ms to check.
pub fn run(app: &App, mut source: impl Nat64Source, interval: Duration) {
    let mut next = Instant::now();
    let mut last: Option<Outcome> = None;
    while !app.is_stopping() {
        let now = Instant::now();
        if now >= next {
            let snap = source.sample(app.now_ms());
            if app.is_stopping() {
                break;
            }
            last = Some(publish(app, snap, last.as_ref()));
            next = Instant::now() + interval;
            continue;
        }
        std::thread::sleep((next - now).min(Duration::from_millis(200)));
    }
}

/// What changed between rounds, for the event log: up or not, and which problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub up: bool,
    pub problems: Vec<ProblemCode>,
}

/// Publishes one round: the snapshot, component health, LED signal, and an event when the
/// state changed.
pub fn publish(app: &App, snap: Nat64Snapshot, last: Option<&Outcome>) -> Outcome {
    let now = snap.taken_at_ms;
    let outcome = Outcome {
        up: snap.up(),
        problems: snap.all_problems().map(|(_, p)| p.code).collect(),
    };
    let reason = snap.reason();
    let sessions: u64 = snap.instances.iter().map(|i| i.summary.total).sum();
    let detail = json!({
        "instances": snap.instances.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
        "sessions": sessions,
        "sample_data": snap.sample_data,
    });
    app.signals.nat64_down.store(!outcome.up, Ordering::Relaxed);
    match &reason {
        None => app.components.up("jool", now, detail),
        Some(r) => app.components.degraded("jool", now, r.clone()),
    }
    if last != Some(&outcome) {
        let message = match (&reason, outcome.up) {
            (None, _) => format!("NAT64 up: {} session(s)", sessions),
            (Some(r), true) => format!("NAT64 up with a problem: {r}"),
            (Some(r), false) => format!("NAT64 down: {r}"),
        };
        let level_changed = last.map(|l| l.up) != Some(outcome.up);
        // The first round only makes an event when something is wrong.
        if last.is_some() || reason.is_some() {
            app.events.push(
                now,
                "nat64",
                "kernel",
                message.clone(),
                json!({"up": outcome.up, "problems": outcome.problems}),
            );
        }
        if level_changed || reason.is_some() {
            log::info!("{message}");
        }
    }
    app.nat64.set(Some(snap));
    outcome
}
