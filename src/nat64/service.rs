//! The NAT64 area inside the daemon: a sampler thread that runs the Jool source every
//! `nat64.interval`, publishes the snapshot for the API and metrics, keeps the `jool`
//! component's health, the `nat64_down` LED signal and the event log up to date. A failing
//! Jool degrades the component; the daemon carries on.

use super::snapshot::{Nat64Snapshot, Nat64Source, ProblemCode};
use crate::app::App;
use crate::sys::jool::{JoolSource, JoolSourceConfig};
use serde_json::json;
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
    app.signals.set_nat64_down(Some(!outcome.up));
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::Health;
    use crate::config::Config;
    use crate::nat64::snapshot::{InstanceSnapshot, Problem};
    use crate::nat64::InstanceStatus;
    use crate::sys::clock::SystemClock;

    fn app() -> App {
        App::new(Config::default(), Arc::new(SystemClock), None, false)
    }

    fn healthy(now: u64) -> Nat64Snapshot {
        let mut s = Nat64Snapshot::new(now);
        let mut i = InstanceSnapshot::new("default");
        i.status = InstanceStatus::Running;
        i.sessions_read = true;
        i.stats_read = true;
        s.instances.push(i);
        s
    }

    fn broken(now: u64) -> Nat64Snapshot {
        let mut s = Nat64Snapshot::new(now);
        s.problems.push(Problem {
            code: ProblemCode::ModuleNotLoaded,
            command: "jool instance display --csv".into(),
            message: "no Jool kernel module is loaded: run `modprobe jool`".into(),
        });
        s
    }

    #[test]
    fn publish_drives_health_signal_and_events_only_on_change() {
        let a = app();
        let o1 = publish(&a, healthy(10), None);
        assert!(o1.up);
        assert_eq!(a.components.snapshot()["jool"].state, Health::Up);
        assert_eq!(a.signals.snapshot(false).nat64_down, Some(false));
        assert!(
            a.events.since(0, 10).is_empty(),
            "a healthy start is no event"
        );
        assert!(a.nat64.get().is_some());

        let o2 = publish(&a, broken(20), Some(&o1));
        assert!(!o2.up);
        let c = &a.components.snapshot()["jool"];
        assert_eq!(c.state, Health::Degraded);
        assert!(c.last_error.as_deref().unwrap().contains("modprobe jool"));
        assert_eq!(a.signals.snapshot(false).nat64_down, Some(true));
        let o3 = publish(&a, broken(30), Some(&o2));
        let ev = a.events.since(0, 10);
        assert_eq!(ev.len(), 1, "the same problem twice is one event");
        assert!(ev[0]
            .message
            .starts_with("NAT64 down: no Jool kernel module"));

        publish(&a, healthy(40), Some(&o3));
        let ev = a.events.since(0, 10);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].message, "NAT64 up: 0 session(s)");
        assert_eq!(a.signals.snapshot(false).nat64_down, Some(false));
    }
}
