//! The WAN area inside the daemon: one thread owns the rtnetlink watcher, the controller and
//! the nftables blocker; the API talks to it through commands and reads a published
//! [`WanStatus`]. Events go to the event log, the `ra_block`/`wan_down` signals to the LEDs.
//!
//! On shutdown the thread drops the blocker: its netlink socket closes and the kernel removes
//! the owned `table inet pirouterd`, so RAs flow again (fail-open, by design: a daemon that is
//! not running cannot tell when the WAN comes back).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::controller::{Damping, RaMode, WanEvent, WanPolicy, WanState, WanView};
use super::plan::RaBlockSpec;
use super::runner::{StepReport, WanRunner};
use super::{DropCounter, LinkSample, RaBlocker};
use crate::app::{lock, App, Shared};
use crate::config::RaBlockMode;
use crate::duration::Human;
use crate::logging::error_chain as chain;
use crate::sys::link::{RtnlOptions, RtnlWatcher};
use crate::sys::ra_block::{NftRaBlocker, RaBlockOptions};

/// Component name in `/api/v1/status`.
pub const COMPONENT: &str = "wan";
/// State file remembering a mode set through the API.
const MODE_FILE: &str = "wan-ra-block.json";
/// How often the drop counter is read back while the block is on.
const COUNTER_EVERY: Duration = Duration::from_secs(2);

/// A request to the WAN thread.
pub enum Command {
    /// `POST /api/v1/wan/ra-block`.
    SetMode {
        mode: RaMode,
        source: String,
        reply: mpsc::Sender<Result<(), String>>,
    },
    /// Demo only: take the simulated WAN's far end down or up (optionally back up after
    /// `down_for`).
    DemoLink {
        up: bool,
        down_for: Option<Duration>,
        source: String,
        reply: mpsc::Sender<Result<(), String>>,
    },
}

/// The RA block as the API shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RaBlockStatus {
    /// The drop rule is in the kernel now.
    pub active: bool,
    /// `auto`, `on` or `off`.
    pub mode: String,
    /// Why it is (or is not) wanted: `wan_down`, `wan_up`, `forced_on`, `forced_off`.
    pub reason: String,
    /// `inet pirouterd`.
    pub table: String,
    /// Created with `flags owner` (false on kernels before 5.12).
    pub owner: bool,
    /// RAs dropped since the daemon started (all engagements).
    pub dropped_packets: u64,
    pub dropped_bytes: u64,
    /// LAN interfaces that get the final RA with router lifetime 0.
    pub final_ra_interfaces: Vec<String>,
    /// The last final RA: `{"sent": N}` or `{"error": "..."}`; `null` before the first.
    pub final_ra: Option<serde_json::Value>,
    /// Unix ms of the last engage or release.
    pub last_change: Option<u64>,
    /// Applying failed (retried every step); what to check.
    pub last_error: Option<String>,
}

/// `GET /api/v1/wan`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WanStatus {
    /// WAN watch is configured (`wan.interface`).
    pub enabled: bool,
    pub interface: Option<String>,
    /// Debounced: `true` up, `false` down, `null` not known yet.
    pub up: Option<bool>,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// Unix ms since the debounced state holds.
    pub since: Option<u64>,
    /// The last debounced change: `{"at", "from", "to"}`.
    pub last_change: Option<serde_json::Value>,
    /// The raw kernel reading (undebounced).
    pub link: Option<LinkSample>,
    /// The raw reading says usable.
    pub link_usable: Option<bool>,
    /// Where the state is heading if the reading holds: `{"to", "at"}` (Unix ms).
    pub pending: Option<serde_json::Value>,
    /// Reachability probes: `unknown` (none configured or no round yet), `reachable`,
    /// `unreachable`.
    pub probe: String,
    /// Flap damping holds the WAN down.
    pub damped: bool,
    pub flap_penalty: f64,
    /// Debounced up->down transitions since start.
    pub flaps: u64,
    pub down_after: String,
    pub up_after: String,
    pub ra_block: RaBlockStatus,
    /// Demo only: the simulated WAN can be flapped with `POST /api/v1/wan/demo/link`.
    pub demo_flap: bool,
}

/// The WAN area's field on `App`.
#[derive(Default)]
pub struct WanHandle {
    /// What handlers read.
    pub status: Shared<WanStatus>,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    demo_peer: OnceLock<u32>,
}

impl WanHandle {
    /// Sends a command to the WAN thread and waits for its answer.
    pub fn command(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<(), String>>) -> Command,
    ) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        let sent = lock(&self.commands)
            .as_ref()
            .map(|c| c.send(make(tx)).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err("the WAN watch is not running: set wan.interface in the config".into());
        }
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| Err("the WAN thread did not answer within 5 s".into()))
    }

    /// Demo: the pid of the process holding the simulated internet's namespace.
    pub fn set_demo_peer(&self, pid: u32) {
        let _ = self.demo_peer.set(pid);
    }

    pub fn demo_peer(&self) -> Option<u32> {
        self.demo_peer.get().copied()
    }
}

/// The daemon's start hook (`daemon::AREA_STARTS`).
pub fn start(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    let now = app.now_ms();
    let Some(interface) = app.config.wan.interface.clone() else {
        app.components.register(COMPONENT, false, now);
        app.wan.status.set(WanStatus {
            state: "unknown".into(),
            ..WanStatus::default()
        });
        return Vec::new();
    };
    app.components.register(COMPONENT, true, now);
    // Shown until the thread has opened its sockets and read the link.
    app.wan.status.set(WanStatus {
        enabled: true,
        interface: Some(interface.clone()),
        state: "unknown".into(),
        probe: "unknown".into(),
        down_after: Human(app.config.wan.down_after).to_string(),
        up_after: Human(app.config.wan.up_after).to_string(),
        ra_block: RaBlockStatus {
            mode: mode_from_config(app.config.wan.ra_block).to_string(),
            table: "inet pirouterd".into(),
            final_ra_interfaces: app.config.wan.lan_interfaces.clone(),
            ..RaBlockStatus::default()
        },
        ..WanStatus::default()
    });
    let (tx, rx) = mpsc::channel();
    *lock(&app.wan.commands) = Some(tx);
    let app2 = Arc::clone(app);
    let spawned = std::thread::Builder::new()
        .name("wan".into())
        .spawn(move || run(app2, interface, rx));
    match spawned {
        Ok(h) => vec![h],
        Err(e) => {
            app.components
                .degraded(COMPONENT, now, format!("cannot start the WAN thread: {e}"));
            Vec::new()
        }
    }
}

fn mode_from_config(m: RaBlockMode) -> RaMode {
    match m {
        RaBlockMode::Auto => RaMode::Auto,
        RaBlockMode::On => RaMode::On,
        RaBlockMode::Off => RaMode::Off,
    }
}

/// The mode to start with: one set through the API survives a restart unless the config's
/// mode was changed since (then the config wins).
fn initial_mode(path: &Path, configured: RaMode) -> RaMode {
    let saved = crate::sys::atomic_file::read(path)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(v) = saved else {
        return configured;
    };
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).and_then(RaMode::parse);
    match (field("mode"), field("config_mode")) {
        (Some(mode), Some(cfg)) if cfg == configured => mode,
        _ => configured,
    }
}

struct Ctx {
    app: Arc<App>,
    interface: String,
    mode_file: PathBuf,
    configured_mode: RaMode,
    last_wan_change: Option<serde_json::Value>,
    last_block_change: Option<u64>,
    last_error: Option<String>,
    dropped: DropCounter,
    counter_read: Option<Instant>,
    demo_up_at: Option<Instant>,
}

fn run(app: Arc<App>, interface: String, rx: mpsc::Receiver<Command>) {
    let cfg = app.config.wan.clone();
    let configured_mode = mode_from_config(cfg.ra_block);
    let mode_file = app.config.state.dir.join(MODE_FILE);
    let mode = initial_mode(&mode_file, configured_mode);
    let policy = WanPolicy {
        down_after: cfg.down_after,
        up_after: cfg.up_after,
        damping: (!cfg.flap_half_life.is_zero()).then(|| Damping {
            half_life: cfg.flap_half_life,
            ..Damping::default()
        }),
        probe_fail_rounds: cfg.probe_fail_rounds,
    };
    let probes = start_probes(&app, &cfg.probe_targets, cfg.probe_interval);
    let Some(watcher) = open_retrying(&app, "rtnetlink", || {
        RtnlWatcher::open(RtnlOptions {
            interface: interface.clone(),
            reread_every: Duration::from_secs(30),
            check_routes: cfg.require_default_route,
        })
    }) else {
        return;
    };
    let Some(blocker) = open_retrying(&app, "nftables", || {
        NftRaBlocker::open(RaBlockOptions {
            spec: RaBlockSpec {
                exempt_mark: Some(cfg.ra_mark),
                ..RaBlockSpec::default()
            },
            final_ra_interfaces: cfg.lan_interfaces.clone(),
        })
    }) else {
        return;
    };
    let controller = super::WanController::new(policy, mode, app.clock.monotonic());
    let mut runner = WanRunner::new(watcher, blocker, controller, Arc::clone(&app.clock));
    let mut ctx = Ctx {
        app: Arc::clone(&app),
        interface,
        mode_file,
        configured_mode,
        last_wan_change: None,
        last_block_change: None,
        last_error: None,
        dropped: DropCounter::default(),
        counter_read: None,
        demo_up_at: None,
    };
    // Mode `on` from the config or state applies at once, before the first reading.
    let first = runner.set_mode(mode);
    ctx.handle(&mut runner, first, "config");
    ctx.publish(&mut runner, true);

    while !app.is_stopping() {
        let report = runner.step(Duration::from_millis(200));
        let changed = ctx.handle(&mut runner, report, "kernel");
        let mut commanded = false;
        if let Some(p) = &probes {
            while let Ok(round) = p.try_recv() {
                let report = runner.observe_probe(&round);
                ctx.handle(&mut runner, report, "kernel");
            }
        }
        while let Ok(cmd) = rx.try_recv() {
            commanded = true;
            ctx.command(&mut runner, cmd);
        }
        if let Some(at) = ctx.demo_up_at {
            if app.clock.monotonic() >= at {
                ctx.demo_up_at = None;
                if let Err(e) = demo_link(&app, true) {
                    log::warn!("demo: {e}");
                }
            }
        }
        ctx.publish(&mut runner, changed || commanded);
    }

    if runner.blocker.is_blocked() {
        app.events.push(
            app.now_ms(),
            "ra_block",
            "daemon",
            "RA block released: pirouterd is stopping (its table goes with it)",
            json!({"active": false}),
        );
    }
    drop(runner); // closes the owning socket: the kernel removes table inet pirouterd
    app.signals.set_ra_block(Some(false));
}

/// Starts the probe thread when targets are configured: one round every `interval`, results
/// sent to the WAN thread. It ends when the daemon stops.
fn start_probes(
    app: &Arc<App>,
    targets: &[std::net::SocketAddr],
    interval: Duration,
) -> Option<mpsc::Receiver<Vec<bool>>> {
    if targets.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    let app = Arc::clone(app);
    let targets = targets.to_vec();
    let timeout = interval.clamp(Duration::from_millis(100), Duration::from_secs(5));
    let spawned = std::thread::Builder::new()
        .name("wan-probe".into())
        .spawn(move || {
            let mut next = Instant::now();
            while !app.is_stopping() {
                if Instant::now() >= next {
                    next = Instant::now() + interval;
                    let round = crate::sys::link::tcp_probe_round(&targets, timeout);
                    if tx.send(round).is_err() {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    match spawned {
        Ok(_) => Some(rx), // ends on its own when stopping; not joined (at most 5 s late)
        Err(e) => {
            log::warn!("cannot start the WAN probe thread: {e}; probes are off");
            None
        }
    }
}

/// Opens a seam, retrying every 5 s (component degraded meanwhile) until it works or the
/// daemon stops.
fn open_retrying<T, E: std::error::Error + 'static>(
    app: &App,
    what: &str,
    mut open: impl FnMut() -> Result<T, E>,
) -> Option<T> {
    loop {
        match open() {
            Ok(v) => return Some(v),
            Err(e) => {
                app.components.degraded(
                    COMPONENT,
                    app.now_ms(),
                    format!("cannot open {what}: {} (retrying every 5 s)", chain(&e)),
                );
            }
        }
        for _ in 0..25 {
            if app.is_stopping() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

type Runner = WanRunner<RtnlWatcher, NftRaBlocker>;

impl Ctx {
    /// Turns one step's report into events, signals and health. Returns whether anything
    /// changed that the published status should show at once.
    fn handle(&mut self, runner: &mut Runner, report: StepReport, source: &str) -> bool {
        let app = &self.app;
        let now_ms = app.now_ms();
        let mono = app.clock.monotonic();
        let wall = |at: Instant| to_wall(now_ms, mono, at);
        let mut changed = !report.events.is_empty() || report.applied.is_some();
        for e in &report.events {
            match e {
                WanEvent::WanChanged { from, to, at } => {
                    let at_ms = wall(*at);
                    self.last_wan_change = Some(json!({"at": at_ms, "from": from, "to": to}));
                    let why = match to {
                        WanState::Down => {
                            format!("unusable for {}", Human(app.config.wan.down_after))
                        }
                        WanState::Up => "usable".to_string(),
                        WanState::Unknown => "unknown".to_string(),
                    };
                    app.events.push(
                        at_ms,
                        "wan",
                        "kernel",
                        format!("WAN {} is {} ({why})", self.interface, state_str(*to)),
                        json!({"interface": self.interface, "from": from, "to": to}),
                    );
                }
                WanEvent::Damped { penalty, until } => app.events.push(
                    now_ms,
                    "wan",
                    "kernel",
                    format!(
                        "WAN {} keeps flapping: held down until at least {} from now",
                        self.interface,
                        Human(until.saturating_duration_since(mono))
                    ),
                    json!({"penalty": penalty, "until": wall(*until)}),
                ),
                WanEvent::Undamped { .. } => app.events.push(
                    now_ms,
                    "wan",
                    "kernel",
                    format!("WAN {} flap damping released", self.interface),
                    json!({}),
                ),
                WanEvent::LinkChanged { usable, .. } => log::debug!(
                    "WAN {} link reading: {}",
                    self.interface,
                    if *usable { "usable" } else { "unusable" }
                ),
                WanEvent::ProbeChanged { verdict, .. } => app.events.push(
                    now_ms,
                    "wan",
                    "probe",
                    format!("WAN {} reachability probes: {verdict:?}", self.interface)
                        .to_lowercase(),
                    json!({"probe": verdict}),
                ),
                WanEvent::ModeChanged { .. } | WanEvent::BlockWanted { .. } => {}
            }
        }
        if let Some(on) = report.applied {
            self.last_block_change = Some(now_ms);
            let view = runner.controller.view(mono);
            let reason = serde_json::to_value(view.block_reason).unwrap_or_default();
            let msg = if on {
                format!(
                    "RA block engaged: router advertisements to the LAN are dropped ({})",
                    reason_text(&view)
                )
            } else {
                format!(
                    "RA block released: router advertisements flow again ({})",
                    reason_text(&view)
                )
            };
            app.events.push(
                now_ms,
                "ra_block",
                source,
                msg,
                json!({"active": on, "mode": view.mode, "reason": reason, "table": "inet pirouterd"}),
            );
        }
        if let Some(e) = report.error {
            changed = true;
            app.components.degraded(COMPONENT, now_ms, e.clone());
            self.last_error = Some(e);
        } else if runner.controller.block_wanted() == runner.blocker.is_blocked() {
            self.last_error = None;
        }
        let st = runner.controller.state();
        app.signals.set_wan_down(Some(st == WanState::Down));
        app.signals.set_ra_block(Some(runner.blocker.is_blocked()));
        changed
    }

    fn command(&mut self, runner: &mut Runner, cmd: Command) {
        match cmd {
            Command::SetMode {
                mode,
                source,
                reply,
            } => {
                let before = runner.controller.mode();
                let report = runner.set_mode(mode);
                let err = report.error.clone();
                if before != mode {
                    self.app.events.push(
                        self.app.now_ms(),
                        "ra_block",
                        &source,
                        format!("RA block mode set to {mode} (was {before})"),
                        json!({"mode": mode, "previous": before}),
                    );
                    let saved = json!({"mode": mode, "config_mode": self.configured_mode});
                    if let Err(e) = crate::sys::atomic_file::write(
                        &self.mode_file,
                        saved.to_string().as_bytes(),
                    ) {
                        log::warn!(
                            "the RA block mode will not survive a restart: {}",
                            chain(&e)
                        );
                    }
                }
                self.handle(runner, report, &source);
                // publish before answering, so the reply shows the new state
                self.publish(runner, true);
                let _ = reply.send(match err {
                    Some(e) => Err(e),
                    None => Ok(()),
                });
            }
            Command::DemoLink {
                up,
                down_for,
                source,
                reply,
            } => {
                let r = demo_link(&self.app, up);
                if r.is_ok() {
                    self.demo_up_at = match (up, down_for) {
                        (false, Some(d)) => Some(self.app.clock.monotonic() + d),
                        _ => None,
                    };
                    let how = match (up, down_for) {
                        (true, _) => "back up".to_string(),
                        (false, Some(d)) => format!("down for {}", Human(d)),
                        (false, None) => "down".to_string(),
                    };
                    self.app.events.push(
                        self.app.now_ms(),
                        "wan",
                        &source,
                        format!("demo: simulated WAN link taken {how}"),
                        json!({"up": up}),
                    );
                }
                self.publish(runner, true);
                let _ = reply.send(r);
            }
        }
    }

    fn publish(&mut self, runner: &mut Runner, force: bool) {
        let app = &self.app;
        let mono = app.clock.monotonic();
        let due = self
            .counter_read
            .is_none_or(|t| mono.saturating_duration_since(t) >= COUNTER_EVERY);
        if !force && !due {
            return;
        }
        self.counter_read = Some(mono);
        match runner.dropped() {
            Ok(c) => self.dropped = c,
            Err(e) => log::debug!("cannot read the RA block counter: {e}"),
        }
        let now_ms = app.now_ms();
        let wall = |at: Instant| to_wall(now_ms, mono, at);
        let v: WanView = runner.controller.view(mono);
        let status = WanStatus {
            enabled: true,
            interface: Some(self.interface.clone()),
            up: match v.state {
                WanState::Up => Some(true),
                WanState::Down => Some(false),
                WanState::Unknown => None,
            },
            state: state_str(v.state).into(),
            since: Some(wall(v.since)),
            last_change: self.last_wan_change.clone(),
            link_usable: v.raw_usable,
            link: v.last_sample.clone(),
            pending: v.pending.map(|(to, at)| json!({"to": to, "at": wall(at)})),
            probe: serde_json::to_value(v.probe)
                .ok()
                .and_then(|x| x.as_str().map(String::from))
                .unwrap_or_default(),
            damped: v.damped,
            flap_penalty: (v.penalty * 10.0).round() / 10.0,
            flaps: v.flaps,
            down_after: Human(app.config.wan.down_after).to_string(),
            up_after: Human(app.config.wan.up_after).to_string(),
            ra_block: RaBlockStatus {
                active: runner.blocker.is_blocked(),
                mode: v.mode.to_string(),
                reason: serde_json::to_value(v.block_reason)
                    .ok()
                    .and_then(|x| x.as_str().map(String::from))
                    .unwrap_or_default(),
                table: "inet pirouterd".into(),
                owner: runner.blocker.owner(),
                dropped_packets: self.dropped.packets,
                dropped_bytes: self.dropped.bytes,
                final_ra_interfaces: app.config.wan.lan_interfaces.clone(),
                final_ra: runner.blocker.last_final_ra().map(|r| match r {
                    Ok(n) => json!({"sent": n}),
                    Err(e) => json!({"error": e}),
                }),
                last_change: self.last_block_change,
                last_error: self.last_error.clone(),
            },
            demo_flap: app.demo && app.wan.demo_peer().is_some(),
        };
        if self.last_error.is_none() {
            app.components.up(
                COMPONENT,
                now_ms,
                json!({
                    "interface": self.interface,
                    "state": status.state,
                    "ra_block": status.ra_block.active,
                    "mode": status.ra_block.mode,
                }),
            );
        }
        app.wan.status.set(status);
    }
}

/// Unix ms of a monotonic instant (past or future), given one moment known in both clocks.
fn to_wall(now_ms: u64, mono: Instant, at: Instant) -> u64 {
    if at >= mono {
        now_ms.saturating_add(at.duration_since(mono).as_millis() as u64)
    } else {
        now_ms.saturating_sub(mono.duration_since(at).as_millis() as u64)
    }
}

fn state_str(s: WanState) -> &'static str {
    match s {
        WanState::Up => "up",
        WanState::Down => "down",
        WanState::Unknown => "unknown",
    }
}

fn reason_text(v: &WanView) -> &'static str {
    use super::controller::BlockReason::*;
    match v.block_reason {
        WanDown => "mode auto, WAN down",
        WanUp => "mode auto, WAN up",
        ForcedOn => "mode on",
        ForcedOff => "mode off",
    }
}

/// Demo only: sets the far end of the simulated WAN (`isp0` in the demo's internet
/// namespace) down or up, which the router sees as carrier loss and return.
fn demo_link(app: &App, up: bool) -> Result<(), String> {
    let Some(pid) = app.wan.demo_peer().filter(|_| app.demo) else {
        return Err("only `pirouterd demo` has a simulated WAN to flap".into());
    };
    let state = if up { "up" } else { "down" };
    let pid = pid.to_string();
    let out = std::process::Command::new("nsenter")
        .args([
            "--net",
            "-t",
            &pid,
            "ip",
            "link",
            "set",
            crate::demo::PEER_IF,
            state,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nsenter (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip link set {} {state}` in the demo's internet namespace failed: {}",
            crate::demo::PEER_IF,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_instants_map_to_wall_time_both_ways() {
        let mono = Instant::now();
        let now_ms = 1_000_000;
        assert_eq!(to_wall(now_ms, mono, mono), now_ms);
        assert_eq!(
            to_wall(now_ms, mono, mono + Duration::from_secs(3)),
            now_ms + 3000
        );
        let past = mono.checked_sub(Duration::from_secs(2));
        if let Some(p) = past {
            assert_eq!(to_wall(now_ms, mono, p), now_ms - 2000);
        }
    }

    #[test]
    fn a_saved_mode_survives_only_while_the_config_mode_is_unchanged() {
        let dir = std::env::temp_dir().join(format!("pirouterd-wan-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(MODE_FILE);
        assert_eq!(initial_mode(&p, RaMode::Auto), RaMode::Auto);
        std::fs::write(&p, br#"{"mode":"on","config_mode":"auto"}"#).unwrap();
        assert_eq!(initial_mode(&p, RaMode::Auto), RaMode::On);
        assert_eq!(
            initial_mode(&p, RaMode::Off),
            RaMode::Off,
            "config changed: config wins"
        );
        std::fs::write(&p, b"garbage").unwrap();
        assert_eq!(initial_mode(&p, RaMode::Auto), RaMode::Auto);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
