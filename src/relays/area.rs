//! The relays area in the daemon: config conversion, start and stop hooks, HTTP routes,
//! metrics, and the `pirouterd relays off` command.
//!
//! API:
//! - `GET /api/v1/relays`: backend, relays (name, on, since, auto_off_at, source, client,
//!   fault...), LEDs, and on the sim backend every pin's level.
//! - `GET /api/v1/relays/{name}`: one relay.
//! - `POST /api/v1/relays/{name}` `{"on": true}` / `{"on": false}` / `{"toggle": true}`,
//!   optional `"for": "45m"`: 409 with the reason when a safety rule refuses, 502 when the
//!   appliance did not follow (pulse not confirmed by the sense pin).
//! - `POST /api/v1/relays/{name}/press`: sim backend only (409 elsewhere): works the relay's
//!   simulated switch, as a person at the wall would; for tests and the demo.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::config::{self, Config};
use crate::http::metrics::{Kind, MetricsWriter};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::sys::clock::Clock;
use crate::sys::gpio::{self, sim::Appliance, BackendChoice, Choice, PinBank, Pull};

use super::controller::{Controller, RelayError};
use super::led::{LedConfig, Signal, Signals};
use super::relay::{AtStart, Command, Drive, Outcome, Refusal, RelayConfig, Sense, Source};
use super::switch::{SwitchConfig, SwitchMode};
use crate::logging::error_chain as chain;

/// The state file's name under `state.dir`.
pub const STATE_FILE: &str = "relays.json";

/// What the area keeps in [`App`].
pub struct RelaysArea {
    pub choice: Choice,
    pub controller: Option<Arc<Controller>>,
    /// Why there is no controller.
    pub error: Option<String>,
}

/// The area, once started (the start hook sets it).
pub type Slot = OnceLock<RelaysArea>;

fn pull(p: config::Pull) -> Pull {
    match p {
        config::Pull::Up => Pull::Up,
        config::Pull::Down => Pull::Down,
        config::Pull::None => Pull::Off,
    }
}

/// The config file's relays as the relay logic sees them.
pub fn relay_configs(cfg: &Config) -> Vec<RelayConfig> {
    cfg.relays
        .iter()
        .map(|r| RelayConfig {
            name: r.name.clone(),
            pin: r.pin,
            active_low: r.active_low,
            drive: match r.drive {
                config::Drive::Level => Drive::Level,
                config::Drive::Pulse => Drive::Pulse { width: r.pulse },
            },
            sense: r.sense_pin.map(|pin| Sense {
                pin,
                active_low: r.sense_active_low,
                pull: pull(r.sense_pull),
                delay: r.sense_delay,
            }),
            max_on: r.max_on,
            min_off: r.min_off,
            at_start: match r.at_start {
                config::AtStart::Off => AtStart::Off,
                config::AtStart::On => AtStart::On,
                config::AtStart::Restore => AtStart::Restore,
            },
            switch: r.switch_pin.map(|pin| SwitchConfig {
                pin,
                pull: pull(r.switch_pull),
                // A switch to ground with the pull-up reads low when pressed.
                active_low: r.switch_pull != config::Pull::Down,
                debounce: r.switch_debounce,
                mode: match r.switch_mode {
                    config::SwitchMode::Toggle => SwitchMode::Toggle,
                    config::SwitchMode::Follow => SwitchMode::Follow,
                },
            }),
        })
        .collect()
}

/// The config file's LEDs.
pub fn led_configs(cfg: &Config) -> Vec<LedConfig> {
    cfg.leds
        .iter()
        .map(|l| LedConfig {
            name: l.name.clone(),
            pin: l.pin,
            active_low: l.active_low,
            signal: match l.signal {
                config::LedSignal::RaBlock => Signal::RaBlock,
                config::LedSignal::WanDown => Signal::WanDown,
                config::LedSignal::Nat64Down => Signal::Nat64Down,
                config::LedSignal::Heartbeat => Signal::Heartbeat,
                config::LedSignal::AnyRelayOn => Signal::AnyRelayOn,
            },
        })
        .collect()
}

/// Resolves `gpio.backend` on this machine.
pub fn choose_backend(cfg: &Config) -> Choice {
    let choice = match cfg.gpio.backend {
        config::GpioBackendKind::Auto => BackendChoice::Auto,
        config::GpioBackendKind::Cdev => BackendChoice::Cdev,
        config::GpioBackendKind::Rppal => BackendChoice::Rppal,
        config::GpioBackendKind::Sim => BackendChoice::Sim,
    };
    let (model, chips) = gpio::probe(
        std::path::Path::new("/dev"),
        std::path::Path::new("/proc/device-tree/model"),
    );
    gpio::choose(choice, model.as_deref(), chips)
}

/// On the sim backend, puts a simulated appliance behind every relay with a sense pin, so
/// pulses are confirmed as on a real fireplace.
fn wire_sim(bank: &dyn PinBank, relays: &[RelayConfig]) {
    let Some(sim) = bank.as_sim() else { return };
    for r in relays {
        let Some(s) = r.sense else { continue };
        let a = match r.drive {
            Drive::Pulse { .. } => Appliance::Pulse {
                out: r.pin,
                out_active_low: r.active_low,
                sense: s.pin,
                sense_active_low: s.active_low,
            },
            Drive::Level => Appliance::Level {
                out: r.pin,
                out_active_low: r.active_low,
                sense: s.pin,
                sense_active_low: s.active_low,
            },
        };
        sim.wire(a, true);
    }
}

/// Opens the backend and claims the pins (safe levels first).
pub fn open(
    cfg: &Config,
    clock: Arc<dyn Clock>,
    signals: Arc<Signals>,
    sink: Option<super::controller::Sink>,
) -> Result<(Choice, Controller), String> {
    let choice = choose_backend(cfg);
    let bank: Arc<dyn PinBank> = Arc::from(gpio::open(choice.kind).map_err(|e| chain(&e))?);
    let relays = relay_configs(cfg);
    wire_sim(bank.as_ref(), &relays);
    let state = Some(state_path(cfg));
    let c = Controller::new(relays, led_configs(cfg), bank, clock, state, signals, sink)
        .map_err(|e| chain(&e))?;
    Ok((choice, c))
}

/// The start hook: claims pins, applies `at_start`, starts the service thread.
pub fn start(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    let now = app.now_ms();
    let enabled = !app.config.relays.is_empty() || !app.config.leds.is_empty();
    app.components.register("gpio", enabled, now);
    let weak: Weak<App> = Arc::downgrade(app);
    let sink: super::controller::Sink = Box::new(move |c| {
        if let Some(app) = weak.upgrade() {
            app.events.push(
                c.at_ms,
                "relay",
                &c.source.to_string(),
                c.to_string(),
                json!({"relay": c.relay, "from": c.from, "to": c.to, "failed": c.failed,
                       "note": c.note}),
            );
        }
    });
    let (choice, controller) = match open(
        &app.config,
        app.clock.clone(),
        app.signals.clone(),
        Some(sink),
    ) {
        Ok(x) => x,
        Err(e) => {
            app.components.degraded("gpio", now, e.clone());
            let _ = app.relays.set(RelaysArea {
                choice: choose_backend(&app.config),
                controller: None,
                error: Some(e),
            });
            return Vec::new();
        }
    };
    log::info!("gpio: {} ({})", choice.kind, choice.why);
    let controller = Arc::new(controller);
    let failed: Vec<String> = controller
        .boot()
        .into_iter()
        .filter_map(|(n, r)| r.err().map(|e| format!("{n}: {}", chain(&e))))
        .collect();
    let mut problems = controller.warnings.clone();
    problems.extend(failed);
    if choice.is_fallback_sim() && !app.config.relays.is_empty() {
        problems.push(format!(
            "relays are simulated: {}; set gpio.backend = \"sim\" if that is intended, or \
             \"cdev\"/\"rppal\" on a Raspberry Pi",
            choice.why
        ));
    }
    if problems.is_empty() {
        app.components.up(
            "gpio",
            now,
            json!({"backend": choice.kind, "relays": app.config.relays.len(),
                   "leds": app.config.leds.len()}),
        );
    } else {
        app.components.degraded("gpio", now, problems.join("; "));
    }
    let _ = app.relays.set(RelaysArea {
        choice,
        controller: Some(controller.clone()),
        error: None,
    });
    let app2 = app.clone();
    let t = std::thread::Builder::new()
        .name("relays".into())
        .spawn(move || {
            controller.run(&app2.stopping, |_| {});
        });
    match t {
        Ok(t) => vec![t],
        Err(e) => {
            app.components
                .degraded("gpio", now, format!("cannot start the relay thread: {e}"));
            Vec::new()
        }
    }
}

/// The stop hook: every relay and LED to its safe state.
pub fn stop(app: &App) {
    if let Some(c) = app.relays.get().and_then(|a| a.controller.as_ref()) {
        for (name, r) in c.drive_all_safe() {
            match r {
                Ok(()) => log::info!("relay {name}: safe"),
                Err(e) => log::error!("relay {name}: NOT confirmed safe: {}", chain(&e)),
            }
        }
    }
}

/// `pirouterd relays off`: drives every relay safe and exits (the unit's `ExecStopPost=`).
/// Returns the exit code: 0 when every relay is safe.
pub fn relays_off(cfg: &Config, clock: Arc<dyn Clock>) -> u8 {
    if cfg.relays.is_empty() && cfg.leds.is_empty() {
        println!("no relays or LEDs configured");
        return 0;
    }
    let (choice, c) = match open(cfg, clock, Arc::new(Signals::new()), None) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("pirouterd relays off: {e}");
            return 1;
        }
    };
    let mut code = 0;
    if choice.is_fallback_sim() {
        // An ExecStopPost that "succeeds" on simulated pins while real relays stay on would
        // be worse than a failure.
        eprintln!(
            "pirouterd relays off: no GPIO hardware found ({}): nothing real was driven; \
             set gpio.backend = \"sim\" if that is intended",
            choice.why
        );
        code = 1;
    }
    for (name, r) in c.drive_all_safe() {
        match r {
            Ok(()) => println!("{name}: off ({})", choice.kind),
            Err(e) => {
                eprintln!("{name}: NOT confirmed off: {}", chain(&e));
                code = 1;
            }
        }
    }
    if let Err(e) = c.note_safe_in_state_file() {
        eprintln!("pirouterd relays off: {}", chain(&e));
    }
    code
}

fn area(app: &App) -> Result<(&RelaysArea, &Arc<Controller>), ApiResponse> {
    let Some(a) = app.relays.get() else {
        return Err(ApiResponse::error(
            503,
            "starting",
            "relays are not set up yet",
        ));
    };
    match &a.controller {
        Some(c) => Ok((a, c)),
        None => Err(ApiResponse::error(
            503,
            "gpio_unavailable",
            format!(
                "relays are unavailable: {}",
                a.error.as_deref().unwrap_or("unknown")
            ),
        )),
    }
}

fn relay_json(v: &super::controller::RelayView) -> Value {
    json!({
        "name": v.name,
        "on": v.on,
        "since": v.since_ms,
        "auto_off_at": v.auto_off_at_ms,
        "source": v.source,
        "client": v.client,
        "drive": v.drive,
        "pin": v.pin,
        "active_low": v.active_low,
        "sense_pin": v.sense_pin,
        "switch_pin": v.switch_pin,
        "max_on_ms": v.max_on_ms,
        "min_off_ms": v.min_off_ms,
        "min_off_remaining_ms": v.min_off_remaining_ms,
        "fault": v.fault,
        "changing_to": v.changing_to,
    })
}

/// The API's client address without the port (`192.0.2.7`), or `unix`.
fn client_addr(client: &str) -> String {
    match client.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => client.to_string(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    on: Option<bool>,
    toggle: Option<bool>,
    #[serde(rename = "for")]
    for_: Option<String>,
}

fn parse_command(b: &ChangeBody) -> Result<Command, ApiResponse> {
    let bad = |m: &str| ApiResponse::error(400, "bad_request", m);
    let for_ = match &b.for_ {
        None => None,
        Some(s) => Some(
            crate::duration::parse(s)
                .map_err(|e| ApiResponse::error(400, "bad_for", format!("\"for\": {e}")))?,
        ),
    };
    match (b.on, b.toggle) {
        (Some(true), None) => Ok(Command::On { for_ }),
        (Some(false), None) if for_.is_some() => {
            Err(bad("\"for\" only goes with {\"on\": true} or {\"toggle\": true}"))
        }
        (Some(false), None) => Ok(Command::Off),
        (None, Some(true)) => Ok(Command::Toggle { for_ }),
        (None, Some(false)) => Err(bad("{\"toggle\": false} does nothing: send {\"toggle\": true}")),
        (None, None) => Err(bad(
            "send {\"on\": true}, {\"on\": false} or {\"toggle\": true}, optionally with \"for\": \"45m\"",
        )),
        (Some(_), Some(_)) => Err(bad("send either \"on\" or \"toggle\", not both")),
    }
}

fn error_response(e: &RelayError) -> ApiResponse {
    let msg = chain(e);
    match e {
        RelayError::Unknown(_) | RelayError::NoSwitch(_) => {
            ApiResponse::error(404, "no_such_relay", msg)
        }
        RelayError::Refused(Refusal::MinOff { .. }) => ApiResponse::error(409, "min_off", msg),
        RelayError::Refused(Refusal::ForTooLong { .. }) => {
            ApiResponse::error(409, "for_exceeds_max_on", msg)
        }
        RelayError::Refused(Refusal::ZeroFor { .. }) => ApiResponse::error(400, "bad_for", msg),
        RelayError::Failed(_) => ApiResponse::error(502, "appliance_did_not_follow", msg),
        RelayError::NotSim(_) => ApiResponse::error(409, "sim_only", msg),
        RelayError::Gpio { .. } => ApiResponse::error(500, "gpio", msg),
        RelayError::Persist { .. } => ApiResponse::error(500, "state_not_saved", msg),
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Unchanged => "unchanged",
        Outcome::Changed => "changed",
        Outcome::TimerRestarted => "timer_restarted",
        Outcome::Pending => "pending",
        Outcome::Failed(_) => "failed",
    }
}

/// The relays API.
pub fn route(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    let segs = req.segments_after("/api/v1/relays")?;
    Some(match (segs.as_slice(), &req.method) {
        ([], Method::Get | Method::Head) => match area(app) {
            Ok((a, c)) => list(a, c),
            Err(r) => r,
        },
        ([], m) => ApiResponse::method_not_allowed(m, &["GET", "HEAD"]),
        ([name], Method::Get | Method::Head) => match area(app) {
            Ok((_, c)) => match c.views().into_iter().find(|v| &v.name == name) {
                Some(v) => ApiResponse::json(200, &relay_json(&v)),
                None => {
                    ApiResponse::error(404, "no_such_relay", format!("no relay named {name:?}"))
                }
            },
            Err(r) => r,
        },
        ([name], Method::Post) => match area(app) {
            Ok((_, c)) => change(c, name, req),
            Err(r) => r,
        },
        ([_], m) => ApiResponse::method_not_allowed(m, &["GET", "HEAD", "POST"]),
        ([name, press], Method::Post) if press == "press" => match area(app) {
            Ok((_, c)) => match c.press_switch(name) {
                Ok(()) => ApiResponse::json(
                    200,
                    &json!({"pressed": name, "relay": c.views().into_iter()
                        .find(|v| &v.name == name).map(|v| relay_json(&v))}),
                ),
                Err(e) => error_response(&e),
            },
            Err(r) => r,
        },
        ([_, press], m) if press == "press" => ApiResponse::method_not_allowed(m, &["POST"]),
        _ => ApiResponse::error(404, "not_found", format!("no such path: {}", req.path)),
    })
}

fn list(a: &RelaysArea, c: &Controller) -> ApiResponse {
    let relays: Vec<Value> = c.views().iter().map(relay_json).collect();
    let leds: Vec<Value> = c
        .leds()
        .into_iter()
        .map(|(l, lit)| json!({"name": l.name, "pin": l.pin, "signal": l.signal, "lit": lit}))
        .collect();
    let mut body = json!({
        "backend": a.choice.kind,
        "backend_reason": a.choice.why,
        "relays": relays,
        "leds": leds,
    });
    if let Some(sim) = c.bank().as_sim() {
        body["sim_pins"] = json!(sim.pins());
    }
    ApiResponse::json(200, &body)
}

fn change(c: &Controller, name: &str, req: &ApiRequest) -> ApiResponse {
    let body: ChangeBody = match req.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cmd = match parse_command(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let source = Source::Api {
        client: client_addr(&req.client),
    };
    match c.request(name, cmd, source) {
        Ok(applied) => ApiResponse::json(
            200,
            &json!({"outcome": outcome_name(&applied.outcome), "relay": relay_json(&applied.view)}),
        ),
        Err(e) => error_response(&e),
    }
}

/// `pirouterd_relay_on{relay}`, `pirouterd_relay_switch_total{relay,source}`.
pub fn metrics(app: &App, w: &mut MetricsWriter) {
    let Some(c) = app.relays.get().and_then(|a| a.controller.as_ref()) else {
        return;
    };
    let views = c.views();
    w.family(
        "pirouterd_relay_on",
        Kind::Gauge,
        "1 while the relay is on (for pulse drive: the appliance, as its sense pin reads).",
    );
    for v in &views {
        w.sample(
            "pirouterd_relay_on",
            &[("relay", &v.name)],
            f64::from(u8::from(v.on)),
        );
    }
    w.family(
        "pirouterd_relay_switch_total",
        Kind::Counter,
        "Relay state changes by source (api, switch, timer, boot, sense, shutdown).",
    );
    let counts = c.switch_counts();
    for v in &views {
        for source in ["api", "switch", "timer", "boot", "sense"] {
            let n = counts
                .iter()
                .find(|(r, s, _)| r == &v.name && *s == source)
                .map_or(0, |(_, _, n)| *n);
            w.sample(
                "pirouterd_relay_switch_total",
                &[("relay", &v.name), ("source", source)],
                n as f64,
            );
        }
    }
    w.family(
        "pirouterd_relay_fault",
        Kind::Gauge,
        "1 while the relay has an unresolved fault (appliance did not follow, pin error).",
    );
    for v in &views {
        w.sample(
            "pirouterd_relay_fault",
            &[("relay", &v.name)],
            f64::from(u8::from(v.fault.is_some())),
        );
    }
    w.family(
        "pirouterd_relay_max_on_seconds",
        Kind::Gauge,
        "The relay's configured max_on: it is turned off automatically after this long on (relays without max_on are not listed).",
    );
    for v in &views {
        if let Some(ms) = v.max_on_ms {
            w.sample(
                "pirouterd_relay_max_on_seconds",
                &[("relay", &v.name)],
                ms as f64 / 1000.0,
            );
        }
    }
}

/// The demo's relays on simulated pins: a fireplace switched like its wall push button and
/// read back through a sense pin, and a porch light held by a level relay with a wall switch.
pub fn demo_config(c: &mut Config) {
    let base = config::RelayConfig {
        name: String::new(),
        pin: 0,
        active_low: true,
        drive: config::Drive::Level,
        pulse: Duration::from_millis(100),
        sense_pin: None,
        sense_active_low: false,
        sense_pull: config::Pull::None,
        sense_delay: Duration::from_millis(500),
        max_on: None,
        min_off: None,
        at_start: config::AtStart::Off,
        switch_pin: None,
        switch_mode: config::SwitchMode::Toggle,
        switch_pull: config::Pull::Up,
        switch_debounce: Duration::from_millis(50),
    };
    c.relays = vec![
        config::RelayConfig {
            name: "fireplace".into(),
            pin: 2,
            drive: config::Drive::Pulse,
            sense_pin: Some(3),
            max_on: Some(Duration::from_secs(4 * 3600)),
            min_off: Some(Duration::from_secs(60)),
            switch_pin: Some(17),
            ..base.clone()
        },
        config::RelayConfig {
            name: "porch-light".into(),
            pin: 5,
            max_on: Some(Duration::from_secs(3600)),
            at_start: config::AtStart::Restore,
            switch_pin: Some(27),
            switch_mode: config::SwitchMode::Follow,
            ..base
        },
    ];
    c.leds = vec![
        config::LedConfig {
            name: "ra-blocked".into(),
            pin: 22,
            signal: config::LedSignal::RaBlock,
            active_low: false,
        },
        config::LedConfig {
            name: "heartbeat".into(),
            pin: 23,
            signal: config::LedSignal::Heartbeat,
            active_low: false,
        },
    ];
}

/// The state file path for a config.
pub fn state_path(cfg: &Config) -> PathBuf {
    cfg.state.dir.join(STATE_FILE)
}
