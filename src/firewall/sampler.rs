//! The nftables sampler thread: a snapshot every `firewall.interval`, earlier when the kernel
//! announces a ruleset change, published for handlers; set-element queries from the API are
//! answered here too, so one socket and one thread do all netlink work and the cost does not
//! grow with the number of clients (answers are reused for a second).

use crate::logging::error_chain;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use super::api::{FirewallView, SetQuery};
use super::{Family, NftError, RulesetSource, SetElements};
use crate::app::{lock, App};
use crate::sys::nft::{CountPolicy, NftSource};

/// How long a set-elements answer is reused.
const SET_CACHE: Duration = Duration::from_secs(1);
/// Events closer than this are folded into one refresh.
const MIN_GAP: Duration = Duration::from_millis(200);

/// Start hook: registers the `nftables` component and starts the sampler.
pub fn start(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    app.components.register("nftables", true, app.now_ms());
    let (tx, rx) = mpsc::channel();
    *lock(&app.firewall.queries) = Some(tx);
    let app = app.clone();
    let h = std::thread::Builder::new()
        .name("nftables".into())
        .spawn(move || run(&app, &rx, || NftSource::open(CountPolicy::default())));
    match h {
        Ok(h) => vec![h],
        Err(e) => {
            log::error!("cannot start the nftables sampler thread: {e}");
            vec![]
        }
    }
}

type SetKey = (Family, String, String);

/// The sampler loop over any ruleset source (the kernel in the daemon).
pub fn run<S: RulesetSource>(
    app: &App,
    queries: &mpsc::Receiver<SetQuery>,
    open: impl Fn() -> Result<S, NftError>,
) {
    let interval = app.config.firewall.interval.max(Duration::from_millis(200));
    let mut source: Option<S> = None;
    let mut cache: HashMap<SetKey, (Instant, Arc<SetElements>)> = HashMap::new();
    let mut last_gen: Option<u32> = None;
    let mut events_ok = true;
    let mut events_retried = false;
    let mut last_sample = Instant::now() - interval;
    let mut due = Instant::now();
    while !app.is_stopping() {
        let now = app.clock.monotonic();
        if now >= due {
            last_sample = now;
            due = now + interval;
            if source.is_none() {
                // Opening failed before (or this is the start): try again on the interval.
                match open() {
                    Ok(mut s) => {
                        if let Err(e) = s.subscribe() {
                            log::warn!(
                                "ruleset events unavailable, sampling on the interval only: {}",
                                error_chain(&e)
                            );
                            events_ok = false;
                        }
                        source = Some(s);
                    }
                    Err(e) => app
                        .components
                        .degraded("nftables", app.now_ms(), error_chain(&e)),
                }
            }
            if let Some(src) = source.as_mut() {
                if sample(app, src, now, &mut last_gen) && !events_ok && !events_retried {
                    // Try events again once reading works (one retry: no log spam).
                    events_ok = true;
                    events_retried = true;
                }
            }
        }
        while let Ok(q) = queries.try_recv() {
            answer(source.as_mut(), q, &mut cache);
        }
        cache.retain(|_, (at, _)| at.elapsed() < SET_CACHE);
        let wait = due
            .saturating_duration_since(app.clock.monotonic())
            .min(MIN_GAP);
        let changed = match source.as_mut() {
            Some(src) if events_ok => src.wait_for_change(wait).unwrap_or_else(|e| {
                // Said once; after a failure the interval alone drives sampling until a
                // sample succeeds again (e.g. the capability was missing).
                log::warn!(
                    "ruleset events unavailable, sampling on the interval only: {}",
                    error_chain(&e)
                );
                events_ok = false;
                std::thread::sleep(wait);
                false
            }),
            _ => {
                std::thread::sleep(wait);
                false
            }
        };
        if changed {
            cache.clear();
            // Refresh soon, but not more often than every MIN_GAP.
            due = due.min(last_sample + MIN_GAP);
        }
    }
}

/// Takes and publishes one snapshot; true when it worked.
fn sample<S: RulesetSource>(
    app: &App,
    src: &mut S,
    now: Instant,
    last_gen: &mut Option<u32>,
) -> bool {
    let t = Instant::now();
    match src.snapshot(now) {
        Ok(snap) => {
            let took_ms = t.elapsed().as_millis() as u64;
            let now_ms = app.now_ms();
            if let Some(prev) = *last_gen {
                if prev != snap.generation {
                    app.events.push(
                        now_ms,
                        "ruleset",
                        "kernel",
                        format!(
                            "nftables ruleset changed (generation {prev} -> {})",
                            snap.generation
                        ),
                        json!({"from": prev, "to": snap.generation, "rules": snap.rules.len()}),
                    );
                }
            }
            *last_gen = Some(snap.generation);
            app.components.up(
                "nftables",
                now_ms,
                json!({
                    "tables": snap.tables.len(), "chains": snap.chains.len(),
                    "rules": snap.rules.len(), "sets": snap.sets.len(),
                    "generation": snap.generation, "took_ms": took_ms,
                }),
            );
            for w in &snap.warnings {
                log::warn!("nftables: {w}");
            }
            app.firewall.latest.set(FirewallView {
                snapshot: Some(Arc::new(snap)),
                taken_ms: now_ms,
                took_ms,
            });
            true
        }
        Err(e) => {
            app.components
                .degraded("nftables", app.now_ms(), error_chain(&e));
            false
        }
    }
}

fn answer<S: RulesetSource>(
    src: Option<&mut S>,
    q: SetQuery,
    cache: &mut HashMap<SetKey, (Instant, Arc<SetElements>)>,
) {
    let key = (q.family, q.table.clone(), q.set.clone());
    if let Some((_, se)) = cache.get(&key) {
        let _ = q.reply.try_send(Ok(se.clone()));
        return;
    }
    let res = match src {
        None => Err((
            false,
            "nftables cannot be read; see /api/v1/status".to_string(),
        )),
        Some(src) => match src.set_elements(q.family, &q.table, &q.set) {
            Ok(se) => {
                let se = Arc::new(se);
                cache.insert(key, (Instant::now(), se.clone()));
                Ok(se)
            }
            Err(e @ NftError::NoSuchSet { .. }) => Err((true, e.to_string())),
            Err(e) => Err((false, error_chain(&e))),
        },
    };
    let _ = q.reply.try_send(res);
}
