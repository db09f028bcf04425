//! The daemon's shared state: what HTTP handlers read and sampler threads publish.
//!
//! Handlers only read: every source publishes an immutable snapshot behind an `Arc`
//! ([`Shared`]), so a request never triggers a netlink dump or a `jool` run and the cost of a
//! scrape does not grow with the number of clients.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::config::Config;
use crate::relays::led::Signals;
use crate::sys::clock::Clock;

/// A value published by one writer and read by many: readers clone the `Arc` and let go of the
/// lock at once, so a slow reader never blocks the sampler.
#[derive(Debug, Default)]
pub struct Shared<T>(RwLock<Arc<T>>);

impl<T> Shared<T> {
    /// A new cell holding `value`.
    pub fn new(value: T) -> Self {
        Shared(RwLock::new(Arc::new(value)))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        let v = Arc::new(value);
        match self.0.write() {
            Ok(mut g) => *g = v,
            Err(poisoned) => *poisoned.into_inner() = v,
        }
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (with
/// `panic = "abort"` in release builds that cannot happen; in tests it keeps one failure local).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Health of one component (nftables, jool, drops, wan, gpio, http).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not sampled yet.
    Starting,
    /// Working.
    Up,
    /// Failing; the rest of the daemon carries on. `last_error` says why.
    Degraded,
    /// Turned off in the config.
    Disabled,
}

/// One component's state as `/api/v1/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentState {
    /// Current health.
    pub state: Health,
    /// Unix ms of the last health change.
    pub since: u64,
    /// Unix ms of the last successful sample, if any.
    pub last_ok: Option<u64>,
    /// The last error, with what to do about it.
    pub last_error: Option<String>,
    /// A short component-specific summary (e.g. table and rule counts).
    pub detail: serde_json::Value,
}

/// The component's entry, created in the `Starting` state if new.
fn entry<'a>(
    m: &'a mut BTreeMap<String, ComponentState>,
    name: &str,
    now_ms: u64,
) -> &'a mut ComponentState {
    m.entry(name.to_string()).or_insert_with(|| ComponentState {
        state: Health::Starting,
        since: now_ms,
        last_ok: None,
        last_error: None,
        detail: serde_json::Value::Null,
    })
}

/// The component registry.
#[derive(Debug, Default)]
pub struct Components(Mutex<BTreeMap<String, ComponentState>>);

impl Components {
    /// Registers a component in the `Starting` (or `Disabled`) state.
    pub fn register(&self, name: &str, enabled: bool, now_ms: u64) {
        let state = if enabled {
            Health::Starting
        } else {
            Health::Disabled
        };
        lock(&self.0).insert(
            name.to_string(),
            ComponentState {
                state,
                since: now_ms,
                last_ok: None,
                last_error: None,
                detail: serde_json::Value::Null,
            },
        );
    }

    /// Marks a component up, with a summary.
    pub fn up(&self, name: &str, now_ms: u64, detail: serde_json::Value) {
        let mut m = lock(&self.0);
        let e = entry(&mut m, name, now_ms);
        if e.state != Health::Up {
            e.state = Health::Up;
            e.since = now_ms;
        }
        e.last_ok = Some(now_ms);
        e.detail = detail;
    }

    /// Marks a component degraded with the reason a person can act on.
    pub fn degraded(&self, name: &str, now_ms: u64, error: impl Into<String>) {
        let mut m = lock(&self.0);
        let e = entry(&mut m, name, now_ms);
        if e.state != Health::Degraded {
            e.state = Health::Degraded;
            e.since = now_ms;
        }
        e.last_error = Some(error.into());
    }

    /// A copy of every component's state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        lock(&self.0).clone()
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increasing id, for `?since=`.
    pub id: u64,
    /// Unix ms.
    pub time: u64,
    /// What kind: `relay`, `ra_block`, `wan`, `ruleset`, `table`, `daemon`, ...
    pub kind: String,
    /// One human sentence.
    pub message: String,
    /// Who caused it: `api 192.0.2.7`, `switch`, `timer`, `boot`, `kernel`, ...
    pub source: String,
    /// Structured details.
    pub details: serde_json::Value,
}

/// A bounded log of recent state changes (oldest dropped first).
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<(u64, VecDeque<Event>)>,
    capacity: usize,
}

impl EventLog {
    /// A log keeping the last `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            inner: Mutex::new((0, VecDeque::with_capacity(capacity))),
            capacity,
        }
    }

    /// Appends an event and logs it.
    pub fn push(
        &self,
        now_ms: u64,
        kind: &str,
        source: &str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) {
        let message = message.into();
        log::info!("event {kind}: {message} (source: {source})");
        let mut g = lock(&self.inner);
        g.0 += 1;
        let id = g.0;
        if g.1.len() == self.capacity {
            g.1.pop_front();
        }
        g.1.push_back(Event {
            id,
            time: now_ms,
            kind: kind.into(),
            message,
            source: source.into(),
            details,
        });
    }

    /// Events with id greater than `since`, newest last, at most `limit` (the newest ones).
    pub fn since(&self, since: u64, limit: usize) -> Vec<Event> {
        let g = lock(&self.inner);
        let v: Vec<Event> = g.1.iter().filter(|e| e.id > since).cloned().collect();
        let skip = v.len().saturating_sub(limit);
        v.into_iter().skip(skip).collect()
    }
}

/// Everything the daemon's threads share.
pub struct App {
    /// The loaded config.
    pub config: Config,
    /// The clock (real in the daemon, injectable in tests).
    pub clock: Arc<dyn Clock>,
    /// Unix ms at start.
    pub started_ms: u64,
    /// Component health.
    pub components: Components,
    /// Recent state changes.
    pub events: EventLog,
    /// LED signals, set by the WAN and NAT64 areas, read by the relay controller's LEDs.
    pub signals: Arc<Signals>,
    /// The bearer token for changes, if configured.
    pub token: Option<String>,
    /// Set when the daemon is stopping; threads finish their current work and return.
    pub stopping: AtomicBool,
    /// Demo mode: sample data is labelled as such.
    pub demo: bool,
    /// The `/metrics` body concurrent scrapes share (see `http::route`).
    pub metrics_cache: Mutex<Option<(std::time::Instant, std::sync::Weak<[u8]>)>>,
    /// nftables: the latest snapshot and the set-element query channel.
    pub firewall: crate::firewall::api::FirewallState,
    /// Relays, switches and LEDs (set by the relays start hook).
    pub relays: crate::relays::area::Slot,
    /// WAN watch and RA block: published status, commands to the WAN thread.
    pub wan: crate::wan::service::WanHandle,
    /// The last NAT64 snapshot (`None` until the first round).
    pub nat64: Shared<Option<crate::nat64::Nat64Snapshot>>,
    /// Dropped traffic, published by the NFLOG thread (`drops::live`).
    pub drops: Shared<crate::drops::live::DropsView>,
    /// Firewall insight: rule identity, rates, hot/dead rules, nft metrics, managed sets.
    pub insight: crate::firewall::insight_area::InsightArea,
}

impl App {
    /// A new app state for `config`.
    pub fn new(config: Config, clock: Arc<dyn Clock>, token: Option<String>, demo: bool) -> App {
        let started_ms = clock.now_ms();
        App {
            config,
            clock,
            started_ms,
            components: Components::default(),
            events: EventLog::new(1000),
            signals: Arc::new(Signals::new()),
            token,
            stopping: AtomicBool::new(false),
            demo,
            metrics_cache: Mutex::new(None),
            firewall: Default::default(),
            relays: std::sync::OnceLock::new(),
            wan: crate::wan::service::WanHandle::default(),
            nat64: Shared::new(None),
            drops: Shared::default(),
            insight: Default::default(),
        }
    }

    /// Wall-clock now, Unix ms.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Whether the daemon is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_log_is_bounded_and_ordered() {
        let log = EventLog::new(3);
        for i in 0..5 {
            log.push(i, "test", "unit", format!("e{i}"), serde_json::Value::Null);
        }
        let all = log.since(0, 100);
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(log.since(4, 100).len(), 1);
        assert_eq!(
            log.since(0, 2).iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![4, 5]
        );
    }

    #[test]
    fn components_track_health_changes() {
        let c = Components::default();
        c.register("jool", true, 1);
        c.degraded("jool", 5, "jool is not installed");
        c.degraded("jool", 9, "still not installed");
        let s = c.snapshot();
        assert_eq!(s["jool"].state, Health::Degraded);
        assert_eq!(s["jool"].since, 5, "since moves only on a change of health");
        c.up("jool", 12, serde_json::json!({"instances": 1}));
        assert_eq!(c.snapshot()["jool"].state, Health::Up);
    }
}
