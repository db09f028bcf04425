//! The relay state machine: `step(config, state, event, now) -> plan`. Pure: no pins, no
//! clock, no files. The controller applies the plan's pin actions, feeds back what the sense
//! pin reads, persists the new state and logs the change.
//!
//! Rules (each has tests below):
//! - `max_on`: every turn-on (from any source, including the appliance's own switch seen on
//!   the sense pin) sets an auto-off deadline; turning on again restarts it. The deadline is kept
//!   both as wall time (persisted: a restart never extends it) and as monotonic time (an NTP
//!   jump backwards never extends it either); whichever comes first fires.
//! - `min_off`: a turn-on less than `min_off` after the last turn-off is refused with the time
//!   left. Turning off is never refused.
//! - pulse drive: a pulse toggles the appliance, so a pulse is only sent when the sense pin
//!   says the appliance is not already where we want it; after `sense_delay` the sense pin is
//!   read; a mismatch gets one more pulse, a second mismatch is reported as a failure and the
//!   state follows what the sense pin says.
//! - at start: `off`, `on` (subject to `min_off`) or `restore` (the saved state, unless its
//!   deadline passed while we were down, or the clock is before the saved turn-on time).

use std::fmt;
use std::time::Duration;

use crate::duration::Human;
use crate::sys::gpio::{Level, Pull};

use super::store::Saved;
use super::switch::SwitchConfig;

/// The time an event happens: wall clock (Unix ms, persisted and shown) and monotonic ms
/// (process-local, for intervals that must not jump with NTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub wall_ms: u64,
    pub mono_ms: u64,
}

impl Now {
    /// Both clocks at `ms` (tests).
    pub fn at(ms: u64) -> Self {
        Now {
            wall_ms: ms,
            mono_ms: ms,
        }
    }
    /// Both clocks moved forward by `d`.
    pub fn plus(self, d: Duration) -> Self {
        let ms = d.as_millis() as u64;
        Now {
            wall_ms: self.wall_ms.saturating_add(ms),
            mono_ms: self.mono_ms.saturating_add(ms),
        }
    }
}

/// How the relay output works the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// The pin holds the relay on or off.
    Level,
    /// The relay is pressed for `width`, like a push button; the appliance toggles.
    Pulse { width: Duration },
}

/// The input that reads the appliance's real state back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    pub pin: u8,
    /// The sense input reads low when the appliance is on.
    pub active_low: bool,
    pub pull: Pull,
    /// How long after a change the appliance needs before the sense pin tells the truth; also
    /// how long a change on the sense pin must hold before it counts.
    pub delay: Duration,
}

/// The state a relay takes when pirouterd starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtStart {
    #[default]
    Off,
    On,
    Restore,
}

/// One relay, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    pub name: String,
    /// BCM pin of the relay output.
    pub pin: u8,
    /// The relay board switches on when the pin is low (most opto-isolated boards).
    pub active_low: bool,
    pub drive: Drive,
    pub sense: Option<Sense>,
    /// Auto-off after this long on.
    pub max_on: Option<Duration>,
    /// Refuse to turn on again sooner than this after a turn-off.
    pub min_off: Option<Duration>,
    pub at_start: AtStart,
    pub switch: Option<SwitchConfig>,
}

/// Why a relay config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A pulse toggles the appliance; without reading its state back, a pulse meant to turn it
    /// off could turn it on.
    #[error("relay {relay:?}: drive = \"pulse\" needs sense_pin, so pirouterd knows whether a pulse turned it on or off")]
    PulseWithoutSense { relay: String },
    #[error("relay {relay:?}: pulse must be between 1ms and 10s, not {pulse}")]
    PulseWidth { relay: String, pulse: String },
    #[error("relay {relay:?}: {key} must be more than 0")]
    Zero { relay: String, key: &'static str },
    #[error("relay name {0:?}: use letters, digits, '-' and '_' (it appears in URLs and metrics)")]
    Name(String),
}

impl RelayConfig {
    /// The pin level that holds the relay on (level drive) or presses it (pulse drive).
    pub fn active_level(&self) -> Level {
        Level::active(self.active_low)
    }
    /// The level that leaves the relay released: the safe level.
    pub fn safe_level(&self) -> Level {
        Level::inactive(self.active_low)
    }

    /// Checks what the config file's types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ConfigError::Name(self.name.clone()));
        }
        if let Drive::Pulse { width } = self.drive {
            if self.sense.is_none() {
                return Err(ConfigError::PulseWithoutSense {
                    relay: self.name.clone(),
                });
            }
            if width.is_zero() || width > Duration::from_secs(10) {
                return Err(ConfigError::PulseWidth {
                    relay: self.name.clone(),
                    pulse: Human(width).to_string(),
                });
            }
        }
        for (key, v) in [("max_on", self.max_on), ("min_off", self.min_off)] {
            if v == Some(Duration::ZERO) {
                return Err(ConfigError::Zero {
                    relay: self.name.clone(),
                    key,
                });
            }
        }
        Ok(())
    }
}

/// Who or what changed a relay.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// An API request, with the client's address.
    Api { client: String },
    /// The physical switch wired to this relay.
    Switch,
    /// The auto-off timer (`max_on` or `for`).
    Timer,
    /// pirouterd starting (`at_start`).
    Boot,
    /// The appliance changed by itself (its own switch), seen on the sense pin.
    Sense,
    /// pirouterd stopping: relays go safe.
    Shutdown,
}

impl Source {
    /// The metric label and API field.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Api { .. } => "api",
            Source::Switch => "switch",
            Source::Timer => "timer",
            Source::Boot => "boot",
            Source::Sense => "sense",
            Source::Shutdown => "shutdown",
        }
    }
    /// The API client's address, for api changes.
    pub fn client(&self) -> Option<&str> {
        match self {
            Source::Api { client } => Some(client),
            _ => None,
        }
    }
    /// Rebuilds a source from its kind (and client), as persisted.
    pub fn from_parts(kind: &str, client: Option<&str>) -> Option<Self> {
        Some(match kind {
            "api" => Source::Api {
                client: client.unwrap_or("").to_string(),
            },
            "switch" => Source::Switch,
            "timer" => Source::Timer,
            "boot" => Source::Boot,
            "sense" => Source::Sense,
            "shutdown" => Source::Shutdown,
            _ => return None,
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Api { client } => write!(f, "api {client}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Turn on; `for_` overrides `max_on` (never longer than it).
    On {
        for_: Option<Duration>,
    },
    Off,
    /// On if off (with `for_`), off if on.
    Toggle {
        for_: Option<Duration>,
    },
}

/// A pulse waiting for the sense pin's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub target: bool,
    /// 1 for the first pulse, 2 for the retry.
    pub attempt: u8,
    pub source: Source,
    /// How long the relay may stay on once confirmed.
    pub on_for: Option<Duration>,
    /// The state before the change, for the log line.
    pub from: bool,
}

/// A relay's state: what it is, since when, why, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayState {
    pub on: bool,
    /// Wall time of the last change.
    pub since_ms: u64,
    /// Wall time the auto-off fires (persisted).
    pub auto_off_at_ms: Option<u64>,
    /// Monotonic time the auto-off fires (this process only).
    pub auto_off_mono: Option<u64>,
    /// Wall time of the last turn-off (for `min_off` across restarts).
    pub off_since_ms: Option<u64>,
    /// Monotonic time of the last turn-off in this process.
    pub off_since_mono: Option<u64>,
    pub source: Source,
    /// The last failure (pulse not confirmed, sense disagreeing), cleared by the next success.
    pub fault: Option<String>,
    pub pending: Option<Pending>,
}

impl RelayState {
    /// Before boot: off, nothing known.
    pub fn initial(now: Now) -> Self {
        RelayState {
            on: false,
            since_ms: now.wall_ms,
            auto_off_at_ms: None,
            auto_off_mono: None,
            off_since_ms: None,
            off_since_mono: None,
            source: Source::Boot,
            fault: None,
            pending: None,
        }
    }
}

/// What happens to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// pirouterd starts. `saved` is this relay's entry in the state file; `sensed` what the
    /// sense pin reads now (the appliance's real state).
    Boot {
        saved: Option<Saved>,
        sensed: Option<bool>,
    },
    Request {
        command: Command,
        source: Source,
    },
    /// Time passed: auto-off check.
    Tick,
    /// The sense pin, read `sense_delay` after this plan's pin actions.
    Confirm {
        sensed: bool,
    },
    /// The sense pin changed (and held for `sense_delay`) while nothing was being done.
    Sensed {
        on: bool,
    },
    /// pirouterd stops: drive the relay safe.
    Shutdown,
}

/// One pin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Drive the pin to `level`.
    Set { pin: u8, level: Level },
    /// Drive `active` for `width`, then back to `idle`.
    Pulse {
        pin: u8,
        active: Level,
        idle: Level,
        width: Duration,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Set { pin, level } => write!(f, "set GPIO{pin} {level}"),
            Action::Pulse {
                pin, active, width, ..
            } => write!(f, "pulse GPIO{pin} {active} for {}", Human(*width)),
        }
    }
}

/// After the actions: wait `after`, read `pin`, feed [`Event::Confirm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmStep {
    pub pin: u8,
    pub active_low: bool,
    pub after: Duration,
}

/// A change as the event log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub relay: String,
    pub from: bool,
    pub to: bool,
    pub source: Source,
    pub at_ms: u64,
    /// Why, when the source alone does not say (timer restarted, restore refused...).
    pub note: Option<String>,
    /// The change did not reach its target.
    pub failed: bool,
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "relay {} stays {}", self.relay, on_off(self.to))?;
        } else {
            write!(
                f,
                "relay {} {} -> {}",
                self.relay,
                on_off(self.from),
                on_off(self.to)
            )?;
        }
        write!(f, " ({})", self.source)?;
        if self.failed {
            f.write_str(" FAILED")?;
        }
        if let Some(n) = &self.note {
            write!(f, ": {n}")?;
        }
        Ok(())
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do (already in that state, no deadline passed).
    Unchanged,
    /// The relay changed state.
    Changed,
    /// Turned on while on: the auto-off timer restarted.
    TimerRestarted,
    /// Pin actions done; waiting for the sense pin ([`Plan::confirm`]).
    Pending,
    /// The appliance did not follow: the message says what the sense pin read.
    Failed(String),
}

/// What to do: pin actions, an optional sense read-back, the state to keep afterwards, and
/// the change to log. Its `Display` is the one log line saying what was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub relay: String,
    pub actions: Vec<Action>,
    pub confirm: Option<ConfirmStep>,
    pub state: RelayState,
    pub change: Option<Change>,
    pub outcome: Outcome,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relay {}:", self.relay)?;
        if self.actions.is_empty() && self.confirm.is_none() {
            f.write_str(" no pin change")?;
        }
        for (i, a) in self.actions.iter().enumerate() {
            write!(f, "{} {a}", if i == 0 { "" } else { "," })?;
        }
        if let Some(c) = &self.confirm {
            write!(
                f,
                "{} read sense GPIO{} after {}",
                if self.actions.is_empty() { "" } else { "," },
                c.pin,
                Human(c.after)
            )?;
        }
        if let Some(c) = &self.change {
            write!(f, "; {c}")?;
        }
        Ok(())
    }
}

/// Why a request was refused. Each says when or how it can succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `min_off` protects the appliance from quick off/on cycles.
    #[error(
        "{relay} was turned off less than min_off ({}) ago: it can be turned on again in {}",
        Human(*min_off),
        Human(*remaining)
    )]
    MinOff {
        relay: String,
        min_off: Duration,
        remaining: Duration,
    },
    /// `for` may shorten the on time, never lengthen it past `max_on`.
    #[error(
        "{relay}: \"for\" {} is longer than its max_on {}",
        Human(*for_),
        Human(*max_on)
    )]
    ForTooLong {
        relay: String,
        for_: Duration,
        max_on: Duration,
    },
    #[error("{relay}: \"for\" must be more than 0")]
    ZeroFor { relay: String },
}

/// Advances one relay by one event.
pub fn step(
    cfg: &RelayConfig,
    state: &RelayState,
    event: Event,
    now: Now,
) -> Result<Plan, Refusal> {
    match event {
        Event::Boot { saved, sensed } => Ok(boot(cfg, state, saved, sensed, now)),
        Event::Request { command, source } => request(cfg, state, command, source, now),
        Event::Tick => Ok(tick(cfg, state, now)),
        Event::Confirm { sensed } => Ok(confirm(cfg, state, sensed, now)),
        Event::Sensed { on } => Ok(sensed_change(cfg, state, on, now)),
        Event::Shutdown => Ok(shutdown(cfg, state, now)),
    }
}

fn plan(cfg: &RelayConfig, state: RelayState) -> Plan {
    Plan {
        relay: cfg.name.clone(),
        actions: Vec::new(),
        confirm: None,
        state,
        change: None,
        outcome: Outcome::Unchanged,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Time left before `min_off` allows a turn-on, if any.
pub fn min_off_remaining(cfg: &RelayConfig, state: &RelayState, now: Now) -> Option<Duration> {
    let min_off = cfg.min_off?;
    if state.on {
        return None;
    }
    let elapsed = match (state.off_since_mono, state.off_since_ms) {
        (Some(m), _) => now.mono_ms.saturating_sub(m),
        // After a restart only wall time is known; a clock before the turn-off counts as 0
        // elapsed, so the wait is never longer than min_off.
        (None, Some(w)) => now.wall_ms.saturating_sub(w),
        (None, None) => return None,
    };
    let left = ms(min_off).saturating_sub(elapsed);
    (left > 0).then(|| Duration::from_millis(left))
}

/// The on-time a turn-on gets: `for_` if given (never longer than `max_on`), else `max_on`.
fn on_time(cfg: &RelayConfig, for_: Option<Duration>) -> Result<Option<Duration>, Refusal> {
    match (for_, cfg.max_on) {
        (Some(f), _) if f.is_zero() => Err(Refusal::ZeroFor {
            relay: cfg.name.clone(),
        }),
        (Some(f), Some(max)) if f > max => Err(Refusal::ForTooLong {
            relay: cfg.name.clone(),
            for_: f,
            max_on: max,
        }),
        (Some(f), _) => Ok(Some(f)),
        (None, max) => Ok(max),
    }
}

/// The state after a confirmed change to `on`.
fn committed(
    state: &RelayState,
    on: bool,
    source: Source,
    on_for: Option<Duration>,
    now: Now,
) -> RelayState {
    let mut s = state.clone();
    s.pending = None;
    s.fault = None;
    s.source = source;
    if on {
        if !state.on {
            s.since_ms = now.wall_ms;
        }
        s.on = true;
        s.auto_off_at_ms = on_for.map(|d| now.wall_ms.saturating_add(ms(d)));
        s.auto_off_mono = on_for.map(|d| now.mono_ms.saturating_add(ms(d)));
    } else {
        if state.on {
            s.since_ms = now.wall_ms;
            s.off_since_ms = Some(now.wall_ms);
            s.off_since_mono = Some(now.mono_ms);
        }
        s.on = false;
        s.auto_off_at_ms = None;
        s.auto_off_mono = None;
    }
    s
}

/// Builds the pin actions moving the relay from `from` to `to`, committing at once where no
/// sense read-back is needed.
#[allow(clippy::too_many_arguments)]
fn drive(
    cfg: &RelayConfig,
    state: &RelayState,
    from: bool,
    to: bool,
    source: Source,
    on_for: Option<Duration>,
    note: Option<String>,
    now: Now,
) -> Plan {
    let mut p = plan(cfg, state.clone());
    let level = if to {
        cfg.active_level()
    } else {
        cfg.safe_level()
    };
    match cfg.drive {
        Drive::Level => p.actions.push(Action::Set {
            pin: cfg.pin,
            level,
        }),
        Drive::Pulse { width } => {
            if from != to {
                p.actions.push(pulse(cfg, width));
            } else {
                // Make sure we are not left pressing the button.
                p.actions.push(Action::Set {
                    pin: cfg.pin,
                    level: cfg.safe_level(),
                });
            }
        }
    }
    match (cfg.sense, from != to) {
        (Some(sense), true) => {
            p.confirm = Some(confirm_step(sense));
            p.state.pending = Some(Pending {
                target: to,
                attempt: 1,
                source,
                on_for,
                from,
            });
            p.outcome = Outcome::Pending;
        }
        _ => {
            p.state = committed(state, to, source.clone(), on_for, now);
            p.outcome = if from != to {
                Outcome::Changed
            } else {
                Outcome::Unchanged
            };
            p.change = Some(Change {
                relay: cfg.name.clone(),
                from,
                to,
                source,
                at_ms: now.wall_ms,
                note,
                failed: false,
            });
        }
    }
    p
}

fn pulse(cfg: &RelayConfig, width: Duration) -> Action {
    Action::Pulse {
        pin: cfg.pin,
        active: cfg.active_level(),
        idle: cfg.safe_level(),
        width,
    }
}

fn confirm_step(sense: Sense) -> ConfirmStep {
    ConfirmStep {
        pin: sense.pin,
        active_low: sense.active_low,
        after: sense.delay,
    }
}

fn request(
    cfg: &RelayConfig,
    state: &RelayState,
    command: Command,
    source: Source,
    now: Now,
) -> Result<Plan, Refusal> {
    let (target, for_) = match command {
        Command::On { for_ } => (true, for_),
        Command::Off => (false, None),
        Command::Toggle { for_ } => (!state.on, for_),
    };
    if !target {
        if !state.on {
            let mut p = plan(cfg, state.clone());
            // Re-assert the safe level: cheap, and repairs a pin someone else touched.
            p.actions.push(Action::Set {
                pin: cfg.pin,
                level: cfg.safe_level(),
            });
            return Ok(p);
        }
        return Ok(drive(cfg, state, true, false, source, None, None, now));
    }
    let on_for = on_time(cfg, for_)?;
    if state.on {
        let mut p = drive(cfg, state, true, true, source, on_for, None, now);
        p.outcome = Outcome::TimerRestarted;
        if let Some(c) = p.change.as_mut() {
            c.note = Some(match on_for {
                Some(d) => format!("already on; auto-off timer restarted ({})", Human(d)),
                None => "already on".into(),
            });
        }
        return Ok(p);
    }
    if let (Some(remaining), Some(min_off)) = (min_off_remaining(cfg, state, now), cfg.min_off) {
        return Err(Refusal::MinOff {
            relay: cfg.name.clone(),
            min_off,
            remaining,
        });
    }
    Ok(drive(cfg, state, false, true, source, on_for, None, now))
}

/// True when the auto-off deadline (wall or monotonic) has passed.
pub fn auto_off_due(state: &RelayState, now: Now) -> bool {
    state.on
        && (state.auto_off_at_ms.is_some_and(|t| now.wall_ms >= t)
            || state.auto_off_mono.is_some_and(|t| now.mono_ms >= t))
}

fn tick(cfg: &RelayConfig, state: &RelayState, now: Now) -> Plan {
    if !auto_off_due(state, now) {
        return plan(cfg, state.clone());
    }
    let since = now.wall_ms.saturating_sub(state.since_ms);
    let note = format!("auto-off after {} on", Human(Duration::from_millis(since)));
    drive(
        cfg,
        state,
        true,
        false,
        Source::Timer,
        None,
        Some(note),
        now,
    )
}

fn confirm(cfg: &RelayConfig, state: &RelayState, sensed: bool, now: Now) -> Plan {
    let Some(pending) = state.pending.clone() else {
        return plan(cfg, state.clone());
    };
    if sensed == pending.target {
        let mut p = plan(
            cfg,
            committed(state, sensed, pending.source.clone(), pending.on_for, now),
        );
        p.outcome = Outcome::Changed;
        p.change = Some(Change {
            relay: cfg.name.clone(),
            from: pending.from,
            to: sensed,
            source: pending.source,
            at_ms: now.wall_ms,
            note: (pending.attempt > 1).then(|| "confirmed after a second pulse".to_string()),
            failed: false,
        });
        return p;
    }
    let sense_pin = cfg.sense.map(|s| s.pin).unwrap_or_default();
    match cfg.drive {
        Drive::Pulse { width } if pending.attempt < 2 => {
            let mut p = plan(cfg, state.clone());
            p.actions.push(pulse(cfg, width));
            p.confirm = cfg.sense.map(confirm_step);
            if let Some(pd) = p.state.pending.as_mut() {
                pd.attempt += 1;
            }
            p.outcome = Outcome::Pending;
            p
        }
        Drive::Pulse { .. } => {
            let msg = format!(
                "{} did not turn {}: the sense pin GPIO{sense_pin} still reads {} after {} pulses; \
                 check the appliance (gas supply, pilot) and the relay and sense wiring",
                cfg.name,
                on_off(pending.target),
                on_off(sensed),
                pending.attempt
            );
            // The sense pin is the truth. No automatic retry: if the sense wiring is what broke,
            // every further pulse would toggle the real appliance. The fault stays visible
            // until a person acts; a later request tries again.
            let mut s = committed(state, sensed, pending.source.clone(), None, now);
            s.fault = Some(msg.clone());
            let mut p = plan(cfg, s);
            p.outcome = Outcome::Failed(msg.clone());
            p.change = Some(Change {
                relay: cfg.name.clone(),
                from: pending.from,
                to: sensed,
                source: pending.source,
                at_ms: now.wall_ms,
                note: Some(msg),
                failed: true,
            });
            p
        }
        Drive::Level => {
            // The relay does what we drive; the appliance behind it did not follow.
            let msg = format!(
                "{} relay is {} but the sense pin GPIO{sense_pin} reads {}; \
                 check the appliance and the sense wiring",
                cfg.name,
                on_off(pending.target),
                on_off(sensed)
            );
            let mut s = committed(
                state,
                pending.target,
                pending.source.clone(),
                pending.on_for,
                now,
            );
            s.fault = Some(msg.clone());
            let mut p = plan(cfg, s);
            p.outcome = Outcome::Failed(msg.clone());
            p.change = Some(Change {
                relay: cfg.name.clone(),
                from: pending.from,
                to: pending.target,
                source: pending.source,
                at_ms: now.wall_ms,
                note: Some(msg),
                failed: true,
            });
            p
        }
    }
}

fn sensed_change(cfg: &RelayConfig, state: &RelayState, on: bool, now: Now) -> Plan {
    if state.pending.is_some() || cfg.sense.is_none() {
        return plan(cfg, state.clone());
    }
    match cfg.drive {
        // The appliance's own switch works it (the wall switch must keep working): follow it,
        // and give it the same auto-off as any other turn-on.
        Drive::Pulse { .. } => {
            if on == state.on {
                return plan(cfg, state.clone());
            }
            let on_for = if on { cfg.max_on } else { None };
            let mut p = plan(cfg, committed(state, on, Source::Sense, on_for, now));
            p.outcome = Outcome::Changed;
            p.change = Some(Change {
                relay: cfg.name.clone(),
                from: state.on,
                to: on,
                source: Source::Sense,
                at_ms: now.wall_ms,
                note: Some("changed at the appliance (sense pin)".into()),
                failed: false,
            });
            p
        }
        Drive::Level => {
            let mut s = state.clone();
            if on == state.on {
                if s.fault.take().is_none() {
                    return plan(cfg, state.clone());
                }
                return plan(cfg, s);
            }
            let sense_pin = cfg.sense.map(|s| s.pin).unwrap_or_default();
            let msg = format!(
                "{} relay is {} but the sense pin GPIO{sense_pin} now reads {}",
                cfg.name,
                on_off(state.on),
                on_off(on)
            );
            if s.fault.as_deref() == Some(msg.as_str()) {
                return plan(cfg, s);
            }
            s.fault = Some(msg.clone());
            let mut p = plan(cfg, s);
            p.outcome = Outcome::Failed(msg.clone());
            p.change = Some(Change {
                relay: cfg.name.clone(),
                from: state.on,
                to: state.on,
                source: Source::Sense,
                at_ms: now.wall_ms,
                note: Some(msg),
                failed: true,
            });
            p
        }
    }
}

fn boot(
    cfg: &RelayConfig,
    state: &RelayState,
    saved: Option<Saved>,
    sensed: Option<bool>,
    now: Now,
) -> Plan {
    // Where the relay physically is now: level relays were just claimed at their safe level;
    // a pulse appliance is wherever its sense pin says.
    let physical = match cfg.drive {
        Drive::Level => false,
        Drive::Pulse { .. } => sensed.unwrap_or(false),
    };
    let mut base = state.clone();
    base.on = physical;
    base.source = Source::Boot;
    base.off_since_ms = saved.as_ref().and_then(|s| s.off_since_ms);
    base.off_since_mono = None;
    base.pending = None;
    if physical {
        // An appliance found on gets its auto-off from now.
        base.auto_off_at_ms = cfg.max_on.map(|d| now.wall_ms.saturating_add(ms(d)));
        base.auto_off_mono = cfg.max_on.map(|d| now.mono_ms.saturating_add(ms(d)));
    }

    let (target, on_for, mut note) = decide_start(cfg, saved.as_ref(), now);
    if target && !physical {
        if let Some(remaining) = min_off_remaining(cfg, &base, now) {
            note = format!(
                "{note}, but min_off ({}) refuses a turn-on for another {}",
                Human(cfg.min_off.unwrap_or_default()),
                Human(remaining)
            );
            return drive(
                cfg,
                &base,
                physical,
                false,
                Source::Boot,
                None,
                Some(note),
                now,
            );
        }
    }
    drive(
        cfg,
        &base,
        physical,
        target,
        Source::Boot,
        on_for,
        Some(note),
        now,
    )
}

/// The start state per `at_start`: (on?, on-time, why).
fn decide_start(
    cfg: &RelayConfig,
    saved: Option<&Saved>,
    now: Now,
) -> (bool, Option<Duration>, String) {
    match cfg.at_start {
        AtStart::Off => (false, None, "at_start = off".into()),
        AtStart::On => (true, cfg.max_on, "at_start = on".into()),
        AtStart::Restore => {
            let Some(saved) = saved else {
                return (false, None, "at_start = restore, nothing saved".into());
            };
            if !saved.on {
                return (false, None, "restored: it was off".into());
            }
            if now.wall_ms < saved.since_ms {
                return (
                    false,
                    None,
                    "not restored: the clock is before the saved turn-on time, so the \
                     auto-off deadline cannot be trusted"
                        .into(),
                );
            }
            match saved.auto_off_at_ms {
                Some(deadline) if now.wall_ms >= deadline => (
                    false,
                    None,
                    "not restored: its auto-off deadline passed while pirouterd was down".into(),
                ),
                Some(deadline) => {
                    let mut left = Duration::from_millis(deadline - now.wall_ms);
                    if let Some(max) = cfg.max_on {
                        left = left.min(max);
                    }
                    (
                        true,
                        Some(left),
                        format!("restored: on, auto-off in {}", Human(left)),
                    )
                }
                None => (true, cfg.max_on, "restored: on".into()),
            }
        }
    }
}

fn shutdown(cfg: &RelayConfig, state: &RelayState, now: Now) -> Plan {
    let mut p = drive(
        cfg,
        state,
        state.on,
        false,
        Source::Shutdown,
        None,
        Some("pirouterd stopping: relay safe".into()),
        now,
    );
    if !state.on {
        p.change = None;
    }
    p
}
