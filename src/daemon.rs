//! The daemon's lifecycle: start every area's threads and the HTTP server, tell systemd we
//! are ready, ping its watchdog, and on SIGTERM/SIGINT stop cleanly: stop accepting, let
//! in-flight requests finish, stop the areas (relays go to their safe state), exit.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::app::App;
use crate::http::server::{self, Bound, HttpError};
use crate::sys::notify::Notifier;
use crate::sys::signals;

/// An area's start hook: registers its components and starts its threads, which return once
/// `app.is_stopping()`.
pub type AreaStart = fn(&Arc<App>) -> Vec<JoinHandle<()>>;

/// An area's stop hook, run after its threads have returned (e.g. relays to their safe state).
pub type AreaStop = fn(&App);

/// Every area's start hook, in order.
pub const AREA_STARTS: &[AreaStart] = &[
    // Relays first: their pins go to the safe level before anything else starts.
    crate::relays::area::start,
    crate::firewall::sampler::start,
    crate::firewall::insight_area::start,
    crate::wan::service::start,
    crate::nat64::start,
    crate::drops::live::start,
];

/// Every area's stop hook, in order.
pub const AREA_STOPS: &[AreaStop] = &[
    // One area per line, so areas merge without conflicts.
    crate::relays::area::stop,
    crate::firewall::insight_area::stop,
];

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The HTTP server could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Runs until SIGTERM or SIGINT. `signals::block()` must have been called before any thread
/// started. `on_ready` runs once the server answers (demo prints its URL there).
pub fn run(
    app: Arc<App>,
    bound: Vec<Bound>,
    on_ready: impl FnOnce(&[String]),
) -> Result<(), DaemonError> {
    let (tx, rx) = mpsc::channel();
    signals::forward(tx);
    let notifier = Notifier::from_env();

    let mut threads = Vec::new();
    for start in AREA_STARTS {
        threads.extend(start(&app));
    }
    let http = server::start(app.clone(), bound)?;
    app.components.up(
        "http",
        app.now_ms(),
        serde_json::json!({"listen": http.addresses}),
    );
    app.events.push(
        app.now_ms(),
        "daemon",
        "boot",
        "pirouterd started",
        serde_json::json!({"version": env!("CARGO_PKG_VERSION")}),
    );
    on_ready(&http.addresses);
    notifier.notify("READY=1");

    let tick = notifier
        .watchdog_every
        .unwrap_or(Duration::from_secs(3600))
        .min(Duration::from_secs(3600));
    loop {
        match rx.recv_timeout(tick) {
            Ok(Signal::SIGHUP) => {
                log::info!(
                    "SIGHUP: pirouterd does not reload its config; restart it to apply changes"
                );
            }
            Ok(sig) => {
                log::info!("{sig}: stopping");
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if notifier.watchdog_every.is_some() {
                    notifier.notify("WATCHDOG=1");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                log::error!("the signal thread ended; stopping");
                break;
            }
        }
    }

    notifier.notify("STOPPING=1");
    app.stopping.store(true, Ordering::SeqCst);
    http.stop();
    for t in threads {
        let _ = t.join();
    }
    for stop in AREA_STOPS {
        stop(&app);
    }
    log::info!("stopped");
    Ok(())
}
