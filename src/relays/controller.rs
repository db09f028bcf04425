//! The relay controller: applies plans to pins, one relay at a time.
//!
//! Each relay has its own mutex, held for the whole change (pin actions, the pulse, the wait
//! for the sense pin, the state file write). Two requests at once are therefore applied one
//! after the other, each seeing the state the other left; relays do not wait for each other.
//! A change is persisted (temp file, fsync, rename) before the caller hears it succeeded.
//!
//! The service loop ([`Controller::run`]) wakes on input edges or the next deadline and does
//! the rest: switch debounce, sense-pin watching, auto-off, LEDs. It never blocks on a relay
//! busy with a pulse (it tries again on the next pass), except to apply a switch press,
//! which must wait its turn like any request.

use crate::logging::error_chain as chain;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sys::atomic_file::{self, AtomicFileError};
use crate::sys::clock::Clock;
use crate::sys::gpio::{BackendKind, Edge, GpioError, Level, PinBank};

use super::led::{self, LedConfig, Signals};
use super::relay::{
    self, Action, Change, Command, ConfigError, Drive, Event, Now, Outcome, Plan, Refusal,
    RelayConfig, RelayState, Source,
};
use super::store::{Saved, StateFile};
use super::switch::{self, Debouncer};

/// How many changes [`Controller::events`] keeps.
pub const EVENT_LOG: usize = 512;
/// The service loop wakes at least this often (LEDs, timers).
pub const MAX_SLEEP: Duration = Duration::from_millis(200);

/// Why the relays could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two relays or LEDs with one name.
    #[error("two relays or LEDs are named {0:?}: names must be unique")]
    DuplicateName(String),
    /// One pin used twice in the config.
    #[error("GPIO{pin} is used twice: by {first} and by {second}")]
    PinTwice {
        pin: u8,
        first: String,
        second: String,
    },
    /// Claiming a pin failed.
    #[error("cannot claim GPIO{pin} for {what}")]
    Claim {
        what: String,
        pin: u8,
        #[source]
        source: GpioError,
    },
}

/// Why a relay request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No relay by that name.
    #[error("no relay named {0:?}")]
    Unknown(String),
    /// A safety rule refused it; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The pins were worked but the appliance did not follow (sense pin disagrees).
    #[error("{0}")]
    Failed(String),
    /// A pin operation failed; the relay's state is unchanged (and its fault says why).
    #[error("relay {relay}: {step}")]
    Gpio {
        relay: String,
        step: &'static str,
        #[source]
        source: Box<GpioError>,
    },
    /// The change was made but could not be saved: a restart would not know about it.
    #[error("relay {relay} changed, but its state could not be saved")]
    Persist {
        relay: String,
        #[source]
        source: AtomicFileError,
    },
    /// Only the simulated backend can press a switch from software.
    #[error("switches can only be pressed from software on the sim backend (this is {0})")]
    NotSim(BackendKind),
    /// The relay has no switch to press.
    #[error("relay {0} has no switch_pin")]
    NoSwitch(String),
}

/// A recorded change with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub change: Change,
}

/// One relay as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RelayView {
    pub name: String,
    pub on: bool,
    /// Wall time (Unix ms) of the last change.
    pub since_ms: u64,
    pub auto_off_at_ms: Option<u64>,
    /// api, switch, timer, boot, sense, shutdown.
    pub source: &'static str,
    pub client: Option<String>,
    pub drive: &'static str,
    pub pin: u8,
    pub active_low: bool,
    pub sense_pin: Option<u8>,
    pub switch_pin: Option<u8>,
    pub max_on_ms: Option<u64>,
    pub min_off_ms: Option<u64>,
    /// Time left before `min_off` allows a turn-on.
    pub min_off_remaining_ms: Option<u64>,
    pub fault: Option<String>,
    /// Set while a change is under way (a pulse waiting for its sense pin): the target.
    pub changing_to: Option<bool>,
}

/// A change that happened, as returned to the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub outcome: Outcome,
    pub view: RelayView,
    pub change: Option<Change>,
}

struct SlotInner {
    state: RelayState,
    sense: Option<Debouncer>,
}

struct Slot {
    cfg: RelayConfig,
    /// Held for a whole change.
    inner: Mutex<SlotInner>,
    /// The state as last published, locked only for a copy: readers (API, metrics, LEDs) never
    /// wait for a pulse and its sense read-back.
    published: Mutex<RelayState>,
    /// The switch input's level when it was claimed.
    switch_at_claim: Option<Level>,
}

impl Slot {
    fn publish(&self, s: &RelayState) {
        *lock(&self.published) = s.clone();
    }
}

struct Store {
    path: Option<PathBuf>,
    file: StateFile,
}

/// Called with every change (the daemon's event log).
pub type Sink = Box<dyn Fn(&Change) + Send + Sync>;

/// Owns the relays and LEDs.
pub struct Controller {
    relays: Vec<Slot>,
    leds: Vec<LedConfig>,
    bank: Arc<dyn PinBank>,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    store: Mutex<Store>,
    log: Mutex<(u64, VecDeque<Logged>)>,
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
    sink: Option<Sink>,
    signals: Arc<Signals>,
    led_levels: Mutex<Vec<Option<Level>>>,
    /// Problems found at start (state file set aside...), for the component status.
    pub warnings: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // panic = "abort" in release; in tests a poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Controller {
    /// Validates the config, claims every pin at its safe level (outputs) and loads the state
    /// file. Relays stay off until [`Controller::boot`].
    pub fn new(
        relays: Vec<RelayConfig>,
        leds: Vec<LedConfig>,
        bank: Arc<dyn PinBank>,
        clock: Arc<dyn Clock>,
        state_path: Option<PathBuf>,
        signals: Arc<Signals>,
        sink: Option<Sink>,
    ) -> Result<Self, ControllerError> {
        check(&relays, &leds)?;
        let claim = |what: String, pin: u8, r: Result<(), GpioError>| {
            r.map_err(|source| ControllerError::Claim { what, pin, source })
        };
        let epoch = clock.monotonic();
        let now_ms = clock.now_ms();
        let mut slots = Vec::new();
        for cfg in relays {
            // Safe level first, then output: a start never glitches the relay.
            claim(
                format!("relay {}", cfg.name),
                cfg.pin,
                bank.claim_output(cfg.pin, cfg.safe_level()),
            )?;
            let mut sense = None;
            // A pulse appliance is wherever its sense pin says; a level relay was just claimed off.
            let mut initial_on = false;
            if let Some(s) = cfg.sense {
                claim(
                    format!("relay {} sense", cfg.name),
                    s.pin,
                    bank.claim_input(s.pin, s.pull, Duration::ZERO),
                )?;
                let level = bank.read(s.pin).map_err(|source| ControllerError::Claim {
                    what: format!("relay {} sense", cfg.name),
                    pin: s.pin,
                    source,
                })?;
                sense = Some(Debouncer::new(level, s.delay));
                initial_on =
                    matches!(cfg.drive, Drive::Pulse { .. }) && level.is_active(s.active_low);
            }
            let mut switch_at_claim = None;
            if let Some(sw) = cfg.switch {
                claim(
                    format!("relay {} switch", cfg.name),
                    sw.pin,
                    bank.claim_input(sw.pin, sw.pull, sw.debounce),
                )?;
                // Edges queue from the claim on; debouncing starts from this level, so a press
                // made before the service loop first runs is still a press.
                switch_at_claim = bank.read(sw.pin).ok();
            }
            let mut state = RelayState::initial(Now {
                wall_ms: now_ms,
                mono_ms: 0,
            });
            state.on = initial_on;
            slots.push(Slot {
                switch_at_claim,
                published: Mutex::new(state.clone()),
                inner: Mutex::new(SlotInner { state, sense }),
                cfg,
            });
        }
        for l in &leds {
            claim(
                format!("LED {}", l.name),
                l.pin,
                bank.claim_output(l.pin, Level::inactive(l.active_low)),
            )?;
        }
        let mut warnings = Vec::new();
        let file = match &state_path {
            None => StateFile::default(),
            Some(p) => match atomic_file::read(p) {
                Ok(None) => StateFile::default(),
                Ok(Some(bytes)) => match StateFile::parse(&bytes) {
                    Ok(f) => f,
                    Err(e) => {
                        let w = match atomic_file::set_aside(p, now_ms) {
                            Ok(aside) => {
                                format!("{e}; moved to {} and started fresh", aside.display())
                            }
                            Err(io) => {
                                format!("{e}; could not move it aside ({io}), starting fresh")
                            }
                        };
                        log::warn!("relays: {w}");
                        warnings.push(w);
                        StateFile::default()
                    }
                },
                Err(e) => {
                    let w = format!("{e}: relays start without their saved state");
                    log::error!("relays: {w}");
                    warnings.push(w);
                    StateFile::default()
                }
            },
        };
        let n_leds = leds.len();
        Ok(Controller {
            relays: slots,
            leds,
            bank,
            clock,
            epoch,
            store: Mutex::new(Store {
                path: state_path,
                file,
            }),
            log: Mutex::new((0, VecDeque::new())),
            counts: Mutex::new(BTreeMap::new()),
            sink,
            signals,
            led_levels: Mutex::new(vec![None; n_leds]),
            warnings,
        })
    }

    /// Now, on both clocks.
    pub fn now(&self) -> Now {
        Now {
            wall_ms: self.clock.now_ms(),
            mono_ms: ms(self.clock.monotonic().saturating_duration_since(self.epoch)),
        }
    }

    /// The pin bank (the API shows simulated pin levels).
    pub fn bank(&self) -> &Arc<dyn PinBank> {
        &self.bank
    }

    /// Applies `at_start` to every relay. Failures are logged and returned; the others still
    /// start.
    pub fn boot(&self) -> Vec<(String, Result<Outcome, RelayError>)> {
        let mut out = Vec::new();
        for slot in &self.relays {
            let mut inner = lock(&slot.inner);
            let saved = lock(&self.store).file.get(&slot.cfg.name);
            let sensed = match self.read_sense(&slot.cfg) {
                Ok(s) => s,
                Err(e) => {
                    out.push((slot.cfg.name.clone(), Err(e)));
                    continue;
                }
            };
            let now = self.now();
            let r = relay::step(&slot.cfg, &inner.state, Event::Boot { saved, sensed }, now)
                .map_err(RelayError::from)
                .and_then(|plan| self.apply(slot, &mut inner, plan))
                .map(|p| p.outcome);
            if let Err(e) = &r {
                log::error!("relay {}: at start: {}", slot.cfg.name, chain(e));
            }
            out.push((slot.cfg.name.clone(), r));
        }
        out
    }

    fn slot(&self, name: &str) -> Result<&Slot, RelayError> {
        self.relays
            .iter()
            .find(|s| s.cfg.name == name)
            .ok_or_else(|| RelayError::Unknown(name.to_string()))
    }

    /// Turns a relay on, off or toggles it. Waits for any change already under way on this
    /// relay, then applies this one against the state it left.
    pub fn request(
        &self,
        name: &str,
        command: Command,
        source: Source,
    ) -> Result<Applied, RelayError> {
        let slot = self.slot(name)?;
        let mut inner = lock(&slot.inner);
        let now = self.now();
        let plan = relay::step(
            &slot.cfg,
            &inner.state,
            Event::Request { command, source },
            now,
        )?;
        let done = self.apply(slot, &mut inner, plan)?;
        let view = view(&slot.cfg, &inner.state, self.now());
        if let Outcome::Failed(msg) = &done.outcome {
            return Err(RelayError::Failed(msg.clone()));
        }
        Ok(Applied {
            outcome: done.outcome,
            view,
            change: done.change,
        })
    }

    fn read_sense(&self, cfg: &RelayConfig) -> Result<Option<bool>, RelayError> {
        match cfg.sense {
            None => Ok(None),
            Some(s) => {
                let level = self.bank.read(s.pin).map_err(|source| RelayError::Gpio {
                    relay: cfg.name.clone(),
                    step: "reading the sense pin",
                    source: Box::new(source),
                })?;
                Ok(Some(level.is_active(s.active_low)))
            }
        }
    }

    fn act(&self, cfg: &RelayConfig, a: &Action) -> Result<(), RelayError> {
        let gpio = |step| {
            move |source| RelayError::Gpio {
                relay: cfg.name.clone(),
                step,
                source: Box::new(source),
            }
        };
        match *a {
            Action::Set { pin, level } => self
                .bank
                .write(pin, level)
                .map_err(gpio("setting the relay pin")),
            Action::Pulse {
                pin,
                active,
                idle,
                width,
            } => {
                self.bank
                    .write(pin, active)
                    .map_err(gpio("pressing the relay"))?;
                std::thread::sleep(width);
                // Never leave the button pressed: one more try before giving up.
                self.bank
                    .write(pin, idle)
                    .or_else(|_| self.bank.write(pin, idle))
                    .map_err(gpio("releasing the relay"))
            }
        }
    }

    /// The one place plans are applied: pin actions, sense read-back (feeding the machine
    /// until it settles), then state, file and log.
    fn apply(&self, slot: &Slot, inner: &mut SlotInner, plan: Plan) -> Result<Plan, RelayError> {
        self.apply_as(slot, inner, plan, false)
    }

    /// `shutdown`: the relay goes safe because pirouterd stops; the saved wish is kept.
    fn apply_as(
        &self,
        slot: &Slot,
        inner: &mut SlotInner,
        mut plan: Plan,
        shutdown: bool,
    ) -> Result<Plan, RelayError> {
        let before = inner.state.clone();
        loop {
            if !plan.actions.is_empty() || plan.confirm.is_some() {
                log::info!("{plan}");
            }
            if plan.confirm.is_some() {
                slot.publish(&plan.state);
            }
            for a in &plan.actions {
                if let Err(e) = self.act(&slot.cfg, a) {
                    inner.state.fault = Some(chain(&e));
                    slot.publish(&inner.state);
                    log::error!("{}", chain(&e));
                    return Err(e);
                }
            }
            let Some(c) = plan.confirm else { break };
            std::thread::sleep(c.after);
            let level = match self.bank.read(c.pin) {
                Ok(l) => l,
                Err(source) => {
                    let e = RelayError::Gpio {
                        relay: slot.cfg.name.clone(),
                        step: "reading the sense pin",
                        source: Box::new(source),
                    };
                    inner.state.fault = Some(chain(&e));
                    slot.publish(&inner.state);
                    return Err(e);
                }
            };
            if let Some(d) = inner.sense.as_mut() {
                d.reset(level);
            }
            let sensed = level.is_active(c.active_low);
            let state = plan.state.clone();
            plan = relay::step(&slot.cfg, &state, Event::Confirm { sensed }, self.now())?;
        }
        inner.state = plan.state.clone();
        slot.publish(&inner.state);
        if let Some(c) = &plan.change {
            // With a sink (the daemon's event log) the change is logged there, once.
            if self.sink.is_none() {
                log::info!("{c}");
            }
            self.record(c);
        }
        if shutdown {
            if before.on {
                self.persist(
                    &slot.cfg.name,
                    &Saved::at_shutdown(&before, self.now().wall_ms),
                )?;
            }
        } else if inner.state != before {
            self.persist(&slot.cfg.name, &Saved::from_state(&inner.state))?;
        }
        Ok(plan)
    }

    fn persist(&self, name: &str, saved: &Saved) -> Result<(), RelayError> {
        let mut st = lock(&self.store);
        st.file.set(name, saved);
        if let Some(p) = &st.path {
            atomic_file::write(p, &st.file.render()).map_err(|source| {
                log::error!("relay {name}: saving state: {source}");
                RelayError::Persist {
                    relay: name.to_string(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    fn record(&self, c: &Change) {
        {
            let mut log = lock(&self.log);
            log.0 += 1;
            let seq = log.0;
            if log.1.len() >= EVENT_LOG {
                log.1.pop_front();
            }
            log.1.push_back(Logged {
                seq,
                change: c.clone(),
            });
        }
        if c.from != c.to {
            *lock(&self.counts)
                .entry((c.relay.clone(), c.source.kind()))
                .or_insert(0) += 1;
        }
        if let Some(sink) = &self.sink {
            sink(c);
        }
    }

    /// Records a switch press a safety rule refused, as a failed non-change.
    fn record_refusal(&self, name: &str, r: &Refusal) {
        let Ok(slot) = self.slot(name) else { return };
        let on = lock(&slot.published).on;
        let c = Change {
            relay: name.to_string(),
            from: on,
            to: on,
            source: Source::Switch,
            at_ms: self.now().wall_ms,
            note: Some(format!("switch press refused: {r}")),
            failed: true,
        };
        if self.sink.is_none() {
            log::warn!("{c}");
        }
        self.record(&c);
    }

    /// Recent changes, oldest first, with sequence numbers after `after`.
    pub fn events(&self, after: u64) -> Vec<Logged> {
        lock(&self.log)
            .1
            .iter()
            .filter(|l| l.seq > after)
            .cloned()
            .collect()
    }

    /// Changes per (relay, source kind), for `pirouterd_relay_switch_total`.
    pub fn switch_counts(&self) -> Vec<(String, &'static str, u64)> {
        lock(&self.counts)
            .iter()
            .map(|((r, s), n)| (r.clone(), *s, *n))
            .collect()
    }

    /// Every relay as the API shows it. Never waits for a change under way: a relay in the
    /// middle of a pulse shows its old state and `changing_to`.
    pub fn views(&self) -> Vec<RelayView> {
        let now = self.now();
        self.relays
            .iter()
            .map(|s| view(&s.cfg, &lock(&s.published), now))
            .collect()
    }

    /// The configured LEDs and whether each is lit.
    pub fn leds(&self) -> Vec<(LedConfig, bool)> {
        let levels = lock(&self.led_levels);
        self.leds
            .iter()
            .zip(levels.iter())
            .map(|(l, lv)| (l.clone(), lv.is_some_and(|v| v.is_active(l.active_low))))
            .collect()
    }

    /// Auto-off check for every relay not busy right now.
    pub fn tick(&self) {
        for slot in &self.relays {
            let Ok(mut inner) = slot.inner.try_lock() else {
                continue;
            };
            let now = self.now();
            if !relay::auto_off_due(&inner.state, now) {
                continue;
            }
            let r = relay::step(&slot.cfg, &inner.state, Event::Tick, now)
                .map_err(RelayError::from)
                .and_then(|p| self.apply(slot, &mut inner, p));
            match r {
                Ok(p) => {
                    if let Outcome::Failed(m) = p.outcome {
                        log::error!("relay {}: auto-off failed: {m}", slot.cfg.name);
                    }
                }
                Err(e) => log::error!("relay {}: auto-off: {}", slot.cfg.name, chain(&e)),
            }
        }
    }

    /// Samples the sense pins of relays not busy right now; a change that held for
    /// `sense_delay` is fed to the machine (the appliance was worked by its own switch).
    pub fn poll_sense(&self) {
        for slot in &self.relays {
            let Some(sense) = slot.cfg.sense else {
                continue;
            };
            let Ok(mut inner) = slot.inner.try_lock() else {
                continue;
            };
            let Ok(level) = self.bank.read(sense.pin) else {
                continue;
            };
            let now = self.now();
            let Some(d) = inner.sense.as_mut() else {
                continue;
            };
            d.sample(level, now.mono_ms);
            let on = d.stable().is_active(sense.active_low);
            if on == inner.state.on && inner.state.fault.is_none() {
                continue;
            }
            if let Ok(p) = relay::step(&slot.cfg, &inner.state, Event::Sensed { on }, now) {
                if p.state != inner.state {
                    if let Err(e) = self.apply(slot, &mut inner, p) {
                        log::error!("relay {}: {}", slot.cfg.name, chain(&e));
                    }
                }
            }
        }
    }

    fn next_sense_deadline(&self) -> Option<u64> {
        self.relays
            .iter()
            .filter_map(|s| {
                s.inner
                    .try_lock()
                    .ok()
                    .and_then(|i| i.sense.as_ref()?.deadline())
            })
            .min()
    }

    fn next_auto_off(&self) -> Option<u64> {
        self.relays
            .iter()
            .filter_map(|s| s.inner.try_lock().ok().and_then(|i| i.state.auto_off_mono))
            .min()
    }

    /// Drives the LEDs from the signals.
    pub fn update_leds(&self) {
        if self.leds.is_empty() {
            return;
        }
        let any_on = self.relays.iter().any(|s| {
            let p = lock(&s.published);
            p.on || p.pending.as_ref().is_some_and(|p| p.target)
        });
        let values = self.signals.snapshot(any_on);
        let now = self.now();
        let mut levels = lock(&self.led_levels);
        for (l, cur) in self.leds.iter().zip(levels.iter_mut()) {
            let lvl = if led::lit(l.signal, &values, now.mono_ms) {
                Level::active(l.active_low)
            } else {
                Level::inactive(l.active_low)
            };
            if *cur != Some(lvl) {
                match self.bank.write(l.pin, lvl) {
                    Ok(()) => *cur = Some(lvl),
                    Err(e) => log::warn!("LED {}: {e}", l.name),
                }
            }
        }
    }

    /// The service loop: switches, sense pins, auto-off, LEDs. Returns when `stop` is set.
    pub fn run(&self, stop: &AtomicBool, each_pass: impl FnMut(&Controller)) {
        // Switch presses go to one worker per relay, in order, so the loop keeps sampling
        // (and catches the next press) while a pulse and its sense read-back take their time.
        std::thread::scope(|scope| {
            let mut workers = BTreeMap::new();
            for (i, slot) in self.relays.iter().enumerate() {
                if slot.cfg.switch.is_none() {
                    continue;
                }
                let (tx, rx) = std::sync::mpsc::channel::<Command>();
                workers.insert(i, tx);
                let name = slot.cfg.name.as_str();
                let spawned = std::thread::Builder::new()
                    .name(format!("switch {name}"))
                    .spawn_scoped(scope, move || {
                        for cmd in rx {
                            match self.request(name, cmd, Source::Switch) {
                                Ok(_) => {}
                                // Nobody gets a 409 for a wall switch: the event log says why
                                // the switch "did nothing".
                                Err(RelayError::Refused(r)) => self.record_refusal(name, &r),
                                Err(e) => log::warn!(
                                    "relay {name}: switch press not applied: {}",
                                    chain(&e)
                                ),
                            }
                        }
                    });
                if let Err(e) = spawned {
                    log::error!("relay {name}: cannot start its switch thread: {e}");
                    workers.remove(&i);
                }
            }
            self.service(stop, each_pass, &workers);
            // Dropping the senders ends the workers once their queued presses are applied.
            drop(workers);
        });
    }

    fn service(
        &self,
        stop: &AtomicBool,
        mut each_pass: impl FnMut(&Controller),
        workers: &BTreeMap<usize, std::sync::mpsc::Sender<Command>>,
    ) {
        let mut switches: Vec<(usize, Debouncer)> = self
            .relays
            .iter()
            .enumerate()
            .filter(|(i, _)| workers.contains_key(i))
            .filter_map(|(i, s)| {
                let sw = s.cfg.switch?;
                Some((i, Debouncer::new(s.switch_at_claim?, sw.debounce)))
            })
            .collect();
        let heartbeat = self.leds.iter().any(|l| l.signal == led::Signal::Heartbeat);
        let mut edges: Vec<Edge> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            each_pass(self);
            // Collect the edges that happened up to now before reading levels: an edge older
            // than a read but delivered after it would lose its time.
            if let Err(e) = self.bank.wait_inputs(Duration::ZERO, &mut edges) {
                log::warn!("relays: {}", chain(&e));
            }
            let now = self.now();
            let real_now = Instant::now();
            for (i, d) in switches.iter_mut() {
                let slot = &self.relays[*i];
                let Some(sw) = slot.cfg.switch else { continue };
                // Edges first, by the time they happened, then the level now: a press that
                // came and went while this loop was busy still counts, and a lost edge is
                // caught by the read.
                let seen = edges
                    .iter()
                    .filter(|e| e.pin == sw.pin)
                    .map(|e| {
                        let age = ms(real_now.saturating_duration_since(e.at));
                        (e.level, now.mono_ms.saturating_sub(age))
                    })
                    .chain(self.bank.read(sw.pin).ok().map(|l| (l, now.mono_ms)));
                for (level, at) in seen {
                    let Some(stable) = d.sample(level, at) else {
                        continue;
                    };
                    if let (Some(cmd), Some(tx)) = (switch::command(&sw, stable), workers.get(i)) {
                        let _ = tx.send(cmd);
                    }
                }
            }
            edges.clear();
            self.poll_sense();
            self.tick();
            self.update_leds();

            // Sleep until the next thing can happen, or an input edge.
            let now = self.now().mono_ms;
            let mut wake = now.saturating_add(ms(MAX_SLEEP));
            if heartbeat {
                let next = now - now % 100 + 100;
                wake = wake.min(next);
            }
            for d in switches.iter().filter_map(|(_, d)| d.deadline()) {
                wake = wake.min(d);
            }
            if let Some(d) = self.next_sense_deadline() {
                wake = wake.min(d);
            }
            if let Some(d) = self.next_auto_off() {
                wake = wake.min(d);
            }
            let timeout = Duration::from_millis(wake.saturating_sub(now).max(1));
            if let Err(e) = self.bank.wait_inputs(timeout, &mut edges) {
                log::warn!("relays: {}", chain(&e));
                std::thread::sleep(timeout);
            }
        }
    }

    /// Drives every relay and LED to its safe state (waiting for changes under way). Keeps
    /// going past failures; returns each relay's result.
    pub fn drive_all_safe(&self) -> Vec<(String, Result<(), RelayError>)> {
        let mut out = Vec::new();
        for slot in &self.relays {
            let mut inner = lock(&slot.inner);
            let now = self.now();
            let r = relay::step(&slot.cfg, &inner.state, Event::Shutdown, now)
                .map_err(RelayError::from)
                .and_then(|p| self.apply_as(slot, &mut inner, p, true))
                .and_then(|p| match p.outcome {
                    Outcome::Failed(m) => Err(RelayError::Failed(m)),
                    _ => Ok(()),
                });
            if let Err(e) = &r {
                log::error!("relay {}: driving safe: {}", slot.cfg.name, chain(e));
                // Whatever happened, do not leave the relay pressed.
                let _ = self.bank.write(slot.cfg.pin, slot.cfg.safe_level());
            }
            out.push((slot.cfg.name.clone(), r));
        }
        for l in &self.leds {
            let _ = self.bank.write(l.pin, Level::inactive(l.active_low));
        }
        out
    }

    /// For `pirouterd relays off` after a crash: every relay the state file says was on has
    /// now been driven off; record that turn-off (for `min_off`), keeping the wish for
    /// `at_start = "restore"`.
    pub fn note_safe_in_state_file(&self) -> Result<(), RelayError> {
        let now = self.now();
        for slot in &self.relays {
            let saved = lock(&self.store).file.get(&slot.cfg.name);
            if let Some(mut s) = saved.filter(|s| s.on) {
                s.off_since_ms = Some(now.wall_ms);
                self.persist(&slot.cfg.name, &s)?;
            }
        }
        Ok(())
    }

    /// Works a relay's simulated switch: a press-and-release for `toggle`, a flip for
    /// `follow`. Refused on real backends. Returns once the service loop has had time to see
    /// it (the press is held for the debounce time plus a margin).
    pub fn press_switch(&self, name: &str) -> Result<(), RelayError> {
        let slot = self.slot(name)?;
        let sw = slot
            .cfg
            .switch
            .ok_or_else(|| RelayError::NoSwitch(name.to_string()))?;
        let Some(sim) = self.bank.as_sim() else {
            return Err(RelayError::NotSim(self.bank.kind()));
        };
        // A hand holds a wall button 100-300 ms; the switch loop debounces by edge times, so
        // a press just over the debounce time counts however busy the loop is.
        let hold = sw.debounce + Duration::from_millis(100);
        let active = Level::active(sw.active_low);
        match sw.mode {
            switch::SwitchMode::Toggle => {
                sim.set_input(sw.pin, active);
                std::thread::sleep(hold);
                sim.set_input(sw.pin, Level::inactive(sw.active_low));
                std::thread::sleep(hold);
            }
            switch::SwitchMode::Follow => {
                let cur = sim.level(sw.pin).unwrap_or(Level::inactive(sw.active_low));
                sim.set_input(
                    sw.pin,
                    if cur == active {
                        Level::inactive(sw.active_low)
                    } else {
                        active
                    },
                );
                std::thread::sleep(hold);
            }
        }
        Ok(())
    }
}

/// Checks names and pins across relays and LEDs.
fn check(relays: &[RelayConfig], leds: &[LedConfig]) -> Result<(), ControllerError> {
    let mut names = std::collections::BTreeSet::new();
    let mut pins: BTreeMap<u8, String> = BTreeMap::new();
    let mut use_pin = |pin: u8, what: String| match pins.get(&pin) {
        Some(first) => Err(ControllerError::PinTwice {
            pin,
            first: first.clone(),
            second: what,
        }),
        None => {
            pins.insert(pin, what);
            Ok(())
        }
    };
    for r in relays {
        r.validate()?;
        if !names.insert(r.name.clone()) {
            return Err(ControllerError::DuplicateName(r.name.clone()));
        }
        use_pin(r.pin, format!("relay {}", r.name))?;
        if let Some(s) = r.sense {
            use_pin(s.pin, format!("relay {} sense_pin", r.name))?;
        }
        if let Some(s) = r.switch {
            use_pin(s.pin, format!("relay {} switch_pin", r.name))?;
        }
    }
    for l in leds {
        if !names.insert(l.name.clone()) {
            return Err(ControllerError::DuplicateName(l.name.clone()));
        }
        use_pin(l.pin, format!("LED {}", l.name))?;
    }
    Ok(())
}

fn view(cfg: &RelayConfig, s: &RelayState, now: Now) -> RelayView {
    RelayView {
        name: cfg.name.clone(),
        on: s.on,
        since_ms: s.since_ms,
        auto_off_at_ms: s.auto_off_at_ms,
        source: s.source.kind(),
        client: s.source.client().map(str::to_string),
        drive: match cfg.drive {
            Drive::Level => "level",
            Drive::Pulse { .. } => "pulse",
        },
        pin: cfg.pin,
        active_low: cfg.active_low,
        sense_pin: cfg.sense.map(|s| s.pin),
        switch_pin: cfg.switch.map(|s| s.pin),
        max_on_ms: cfg.max_on.map(ms),
        min_off_ms: cfg.min_off.map(ms),
        min_off_remaining_ms: relay::min_off_remaining(cfg, s, now).map(ms),
        fault: s.fault.clone(),
        changing_to: s.pending.as_ref().map(|p| p.target),
    }
}
