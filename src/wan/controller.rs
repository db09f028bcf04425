//! The WAN state machine: raw link readings in, a debounced WAN state and the wanted RA block
//! out. Pure: every method takes `now` (monotonic), nothing here reads a clock or the kernel.
//!
//! - **Asymmetric hysteresis.** An up WAN is declared down once the raw reading has stayed
//!   unusable for `down_after`; a down WAN is declared up once it has stayed usable for
//!   `up_after`. Any raw change restarts the wait, so flapping shorter than the debounce does
//!   nothing at all.
//! - **Flap damping** (route-flap-damping style, RFC 2439): each debounced up->down adds a
//!   penalty that halves every `half_life`. Past `suppress` the WAN is held down (the block
//!   stays on) until the penalty decays below `reuse`, so a link that keeps flapping slower than
//!   the debounce does not flap the block either.
//! - **At start** the state is unknown: a first usable reading is up at once (nothing to
//!   protect), a first unusable one becomes down after `down_after` like any other drop, so a
//!   WAN that comes up a few seconds after the daemon never blocks the LAN's RAs.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::link::LinkSample;
use super::probe::{ProbeAggregator, ProbeVerdict};

/// How the RA block is chosen (`wan.ra_block`, `POST /api/v1/wan/ra-block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaMode {
    /// Block while the WAN is down (the default).
    Auto,
    /// Block regardless of the WAN.
    On,
    /// Never block.
    Off,
}

impl RaMode {
    /// Parses `auto`, `on`, `off` as the config and API write them.
    pub fn parse(s: &str) -> Option<RaMode> {
        match s {
            "auto" => Some(RaMode::Auto),
            "on" => Some(RaMode::On),
            "off" => Some(RaMode::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RaMode::Auto => "auto",
            RaMode::On => "on",
            RaMode::Off => "off",
        }
    }
}

impl std::fmt::Display for RaMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The debounced WAN state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WanState {
    /// No reading yet, or the first reading was unusable and `down_after` has not passed.
    Unknown,
    Up,
    Down,
}

/// Flap damping parameters. Penalties are unitless, as in RFC 2439.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Damping {
    /// Time for the penalty to halve.
    pub half_life: Duration,
    /// Added at each debounced up->down.
    pub penalty: f64,
    /// At or above this the WAN is held down.
    pub suppress: f64,
    /// Below this a held WAN may come up again.
    pub reuse: f64,
}

impl Default for Damping {
    /// Three debounced drops within a few minutes hold the WAN down for about ten minutes.
    fn default() -> Self {
        Damping {
            half_life: Duration::from_secs(300),
            penalty: 1000.0,
            suppress: 2500.0,
            reuse: 750.0,
        }
    }
}

/// The controller's policy (from `[wan]`).
#[derive(Debug, Clone, PartialEq)]
pub struct WanPolicy {
    /// How long the link must stay unusable before the WAN is down (`wan.down_after`).
    pub down_after: Duration,
    /// How long the link must stay usable before the WAN is up again (`wan.up_after`).
    pub up_after: Duration,
    /// Flap damping; `None` switches it off.
    pub damping: Option<Damping>,
    /// Probe rounds in which every target must fail before the upstream counts as dead.
    pub probe_fail_rounds: u32,
}

impl Default for WanPolicy {
    fn default() -> Self {
        WanPolicy {
            down_after: Duration::from_secs(10),
            up_after: Duration::from_secs(30),
            damping: Some(Damping::default()),
            probe_fail_rounds: 3,
        }
    }
}

/// Why the block is wanted (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// Mode `auto` and the WAN is down.
    WanDown,
    /// Mode `auto` and the WAN is up (or not known yet).
    WanUp,
    /// Mode `on`.
    ForcedOn,
    /// Mode `off`.
    ForcedOff,
}

/// What changed, in order. The daemon logs these and records them in its event log.
#[derive(Debug, Clone, PartialEq)]
pub enum WanEvent {
    /// The raw (undebounced) reading flipped.
    LinkChanged { usable: bool, at: Instant },
    /// The probes' verdict changed.
    ProbeChanged { verdict: ProbeVerdict, at: Instant },
    /// The debounced WAN state changed.
    WanChanged {
        from: WanState,
        to: WanState,
        at: Instant,
    },
    /// Flap damping started holding the WAN down, until at least `until`.
    Damped { penalty: f64, until: Instant },
    /// Flap damping let go.
    Undamped { at: Instant },
    /// The RA block mode was changed.
    ModeChanged { from: RaMode, to: RaMode },
    /// The wanted RA block changed: apply it.
    BlockWanted { on: bool, reason: BlockReason },
}

/// A read-only view for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct WanView {
    pub state: WanState,
    /// When the debounced state last changed (or the controller started).
    pub since: Instant,
    pub raw_usable: Option<bool>,
    pub raw_since: Option<Instant>,
    pub last_sample: Option<LinkSample>,
    pub probe: ProbeVerdict,
    pub mode: RaMode,
    pub block_wanted: bool,
    pub block_reason: BlockReason,
    /// The state the WAN is heading to and when it gets there, if the reading holds.
    pub pending: Option<(WanState, Instant)>,
    pub damped: bool,
    pub penalty: f64,
    /// Debounced up->down transitions since start.
    pub flaps: u64,
}

/// The WAN state machine. See the module docs.
#[derive(Debug, Clone)]
pub struct WanController {
    policy: WanPolicy,
    mode: RaMode,
    state: WanState,
    since: Instant,
    link: Option<LinkSample>,
    probe: ProbeAggregator,
    raw: Option<bool>,
    raw_since: Option<Instant>,
    penalty: f64,
    penalty_at: Instant,
    damped: bool,
    flaps: u64,
    block_wanted: bool,
}

impl WanController {
    pub fn new(policy: WanPolicy, mode: RaMode, now: Instant) -> WanController {
        let probe = ProbeAggregator::new(policy.probe_fail_rounds);
        let mut c = WanController {
            policy,
            mode,
            state: WanState::Unknown,
            since: now,
            link: None,
            probe,
            raw: None,
            raw_since: None,
            penalty: 0.0,
            penalty_at: now,
            damped: false,
            flaps: 0,
            block_wanted: false,
        };
        c.block_wanted = c.wanted().0;
        c
    }

    /// Feeds one link reading (repeats are fine), then advances timers.
    pub fn observe_link(&mut self, sample: LinkSample, now: Instant) -> Vec<WanEvent> {
        self.link = Some(sample);
        let mut ev = Vec::new();
        self.update_raw(now, &mut ev);
        self.advance(now, &mut ev);
        ev
    }

    /// Feeds one probe round (one `bool` per target), then advances timers.
    pub fn observe_probe(&mut self, answered: &[bool], now: Instant) -> Vec<WanEvent> {
        let before = self.probe.verdict();
        let after = self.probe.record(answered);
        let mut ev = Vec::new();
        if before != after {
            ev.push(WanEvent::ProbeChanged {
                verdict: after,
                at: now,
            });
        }
        self.update_raw(now, &mut ev);
        self.advance(now, &mut ev);
        ev
    }

    /// Advances timers only: call at [`next_deadline`](Self::next_deadline) or any time.
    pub fn tick(&mut self, now: Instant) -> Vec<WanEvent> {
        let mut ev = Vec::new();
        self.advance(now, &mut ev);
        ev
    }

    /// Changes the RA block mode.
    pub fn set_mode(&mut self, mode: RaMode, now: Instant) -> Vec<WanEvent> {
        let mut ev = Vec::new();
        if mode != self.mode {
            ev.push(WanEvent::ModeChanged {
                from: self.mode,
                to: mode,
            });
            self.mode = mode;
        }
        self.advance(now, &mut ev);
        ev
    }

    /// The earliest moment at which [`tick`](Self::tick) may change something, if any.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let pending = self.pending(now).map(|(_, at)| at);
        let reuse = if self.damped {
            Some(self.reuse_at())
        } else {
            None
        };
        match (pending, reuse) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn state(&self) -> WanState {
        self.state
    }

    pub fn mode(&self) -> RaMode {
        self.mode
    }

    pub fn block_wanted(&self) -> bool {
        self.block_wanted
    }

    pub fn view(&self, now: Instant) -> WanView {
        let (block_wanted, block_reason) = self.wanted();
        WanView {
            state: self.state,
            since: self.since,
            raw_usable: self.raw,
            raw_since: self.raw_since,
            last_sample: self.link.clone(),
            probe: self.probe.verdict(),
            mode: self.mode,
            block_wanted,
            block_reason,
            pending: self.pending(now),
            damped: self.damped,
            penalty: self.penalty_now(now),
            flaps: self.flaps,
        }
    }

    fn raw_now(&self) -> Option<bool> {
        let link = self.link.as_ref()?;
        Some(link.usable() && self.probe.verdict() != ProbeVerdict::Unreachable)
    }

    fn update_raw(&mut self, now: Instant, ev: &mut Vec<WanEvent>) {
        let raw = self.raw_now();
        if raw != self.raw {
            if let Some(usable) = raw {
                ev.push(WanEvent::LinkChanged { usable, at: now });
            }
            self.raw = raw;
            self.raw_since = Some(now);
        }
    }

    /// Where the state is heading and when, given the raw reading holds.
    fn pending(&self, _now: Instant) -> Option<(WanState, Instant)> {
        let raw = self.raw?;
        let raw_since = self.raw_since?;
        match (self.state, raw) {
            (WanState::Unknown, true) => Some((WanState::Up, raw_since)),
            (WanState::Unknown, false) | (WanState::Up, false) => {
                Some((WanState::Down, raw_since + self.policy.down_after))
            }
            (WanState::Down, true) => {
                let at = raw_since + self.policy.up_after;
                let at = if self.damped {
                    at.max(self.reuse_at())
                } else {
                    at
                };
                Some((WanState::Up, at))
            }
            (WanState::Up, true) | (WanState::Down, false) => None,
        }
    }

    fn penalty_now(&self, now: Instant) -> f64 {
        let Some(d) = self.policy.damping else {
            return 0.0;
        };
        let half_life = d.half_life.as_secs_f64();
        if half_life <= 0.0 {
            return 0.0;
        }
        let dt = now.saturating_duration_since(self.penalty_at).as_secs_f64();
        self.penalty * 0.5f64.powf(dt / half_life)
    }

    /// When the current penalty will have decayed below `reuse`.
    fn reuse_at(&self) -> Instant {
        let Some(d) = self.policy.damping else {
            return self.penalty_at;
        };
        if self.penalty <= d.reuse || d.reuse <= 0.0 {
            return self.penalty_at;
        }
        let halvings = (self.penalty / d.reuse).log2();
        // Round up to the next millisecond so a tick at the deadline sees it decayed.
        let secs = d.half_life.as_secs_f64() * halvings;
        self.penalty_at + Duration::from_millis((secs * 1000.0).ceil() as u64 + 1)
    }

    fn wanted(&self) -> (bool, BlockReason) {
        match self.mode {
            RaMode::On => (true, BlockReason::ForcedOn),
            RaMode::Off => (false, BlockReason::ForcedOff),
            RaMode::Auto if self.state == WanState::Down => (true, BlockReason::WanDown),
            RaMode::Auto => (false, BlockReason::WanUp),
        }
    }

    fn advance(&mut self, now: Instant, ev: &mut Vec<WanEvent>) {
        if self.damped && now >= self.reuse_at() {
            self.damped = false;
            ev.push(WanEvent::Undamped { at: now });
        }
        // At most two transitions (unknown -> down cannot chain), bounded anyway.
        for _ in 0..3 {
            match self.pending(now) {
                Some((to, at)) if at <= now => self.transition(to, now, ev),
                _ => break,
            }
        }
        let (on, reason) = self.wanted();
        if on != self.block_wanted {
            self.block_wanted = on;
            ev.push(WanEvent::BlockWanted { on, reason });
        }
    }

    fn transition(&mut self, to: WanState, now: Instant, ev: &mut Vec<WanEvent>) {
        let from = self.state;
        self.state = to;
        self.since = now;
        ev.push(WanEvent::WanChanged { from, to, at: now });
        if from == WanState::Up && to == WanState::Down {
            self.flaps += 1;
            if let Some(d) = self.policy.damping {
                self.penalty = self.penalty_now(now) + d.penalty;
                self.penalty_at = now;
                if !self.damped && self.penalty >= d.suppress {
                    self.damped = true;
                    ev.push(WanEvent::Damped {
                        penalty: self.penalty,
                        until: self.reuse_at(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wan::link::OperState;

    fn link(usable: bool) -> LinkSample {
        LinkSample {
            present: true,
            ifindex: Some(2),
            admin_up: true,
            running: usable,
            operstate: if usable {
                OperState::Up
            } else {
                OperState::LowerLayerDown
            },
            carrier: Some(usable),
            default_route: None,
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn policy(damping: Option<Damping>) -> WanPolicy {
        WanPolicy {
            down_after: secs(10.0),
            up_after: secs(30.0),
            damping,
            probe_fail_rounds: 2,
        }
    }

    /// Drives a controller through `(time_s, usable)` readings, ticking every 100 ms in
    /// between, and returns the times (s) at which the wanted block changed.
    fn drive(
        c: &mut WanController,
        t0: Instant,
        script: &[(f64, bool)],
        until: f64,
    ) -> Vec<(f64, bool)> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut t = 0.0;
        while t <= until {
            let now = t0 + secs(t);
            let mut ev = Vec::new();
            while i < script.len() && script[i].0 <= t + 1e-9 {
                ev.extend(c.observe_link(link(script[i].1), now));
                i += 1;
            }
            ev.extend(c.tick(now));
            for e in ev {
                if let WanEvent::BlockWanted { on, .. } = e {
                    out.push(((t * 10.0).round() / 10.0, on));
                }
            }
            t += 0.1;
        }
        out
    }

    #[test]
    fn first_usable_reading_is_up_at_once() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        assert_eq!(c.state(), WanState::Unknown);
        let ev = c.observe_link(link(true), t0);
        assert_eq!(c.state(), WanState::Up);
        assert!(ev.iter().any(|e| matches!(
            e,
            WanEvent::WanChanged {
                from: WanState::Unknown,
                to: WanState::Up,
                ..
            }
        )));
        assert!(!c.block_wanted());
    }

    #[test]
    fn first_unusable_reading_waits_down_after() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        let changes = drive(&mut c, t0, &[(0.0, false)], 20.0);
        assert_eq!(changes, vec![(10.0, true)]);
        assert_eq!(c.state(), WanState::Down);
    }

    #[test]
    fn asymmetric_hysteresis() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        // up at 0, down at 5 -> block at 15; up again at 20 -> unblock at 50
        let changes = drive(&mut c, t0, &[(0.0, true), (5.0, false), (20.0, true)], 60.0);
        assert_eq!(changes, vec![(15.0, true), (50.0, false)]);
    }

    #[test]
    fn flapping_shorter_than_the_debounce_does_nothing() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        // down 9 s, up 1 s, over and over: never down for 10 s straight
        let mut script = vec![(0.0, true)];
        for k in 0..10 {
            let base = 1.0 + 10.0 * k as f64;
            script.push((base, false));
            script.push((base + 9.0, true));
        }
        let changes = drive(&mut c, t0, &script, 120.0);
        assert_eq!(changes, vec![], "no block for sub-debounce flaps");
        assert_eq!(c.state(), WanState::Up);
        assert_eq!(c.view(t0 + secs(120.0)).flaps, 0);
        // and the same for a down WAN coming up for less than up_after
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        let mut script = vec![(0.0, false)];
        for k in 0..5 {
            let base = 20.0 + 30.0 * k as f64;
            script.push((base, true));
            script.push((base + 29.0, false));
        }
        let changes = drive(&mut c, t0, &script, 200.0);
        assert_eq!(changes, vec![(10.0, true)], "blocked once, never released");
    }

    #[test]
    fn next_deadline_says_when_to_tick() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        c.observe_link(link(true), t0);
        assert_eq!(c.next_deadline(t0), None);
        c.observe_link(link(false), t0 + secs(1.0));
        assert_eq!(c.next_deadline(t0 + secs(1.0)), Some(t0 + secs(11.0)));
        assert!(c.tick(t0 + secs(10.999)).is_empty());
        let ev = c.tick(t0 + secs(11.0));
        assert!(ev.contains(&WanEvent::BlockWanted {
            on: true,
            reason: BlockReason::WanDown
        }));
    }

    #[test]
    fn damping_holds_a_slow_flapper_down() {
        let t0 = Instant::now();
        let d = Damping {
            half_life: secs(300.0),
            ..Damping::default()
        };
        let mut c = WanController::new(policy(Some(d)), RaMode::Auto, t0);
        // down 15 s (> down_after), up 40 s (> up_after), repeatedly
        let mut script = vec![(0.0, true)];
        for k in 0..6 {
            let base = 10.0 + 55.0 * k as f64;
            script.push((base, false));
            script.push((base + 15.0, true));
        }
        let changes = drive(&mut c, t0, &script, 400.0);
        // flap 1: block 20, unblock 55; flap 2: block 75, unblock 110; flap 3: block 130 and
        // damping holds it from there.
        assert_eq!(
            changes,
            vec![
                (20.0, true),
                (55.0, false),
                (75.0, true),
                (110.0, false),
                (130.0, true)
            ]
        );
        let v = c.view(t0 + secs(400.0));
        assert!(v.damped);
        assert_eq!(v.state, WanState::Down);
        assert_eq!(v.flaps, 3);
        // the link is now steady up (since 350 s); the hold ends when the penalty (three
        // 1000s, decayed since 20 s and 75 s) falls below 750 with a 300 s half-life
        let p: f64 = 1000.0 * (0.5f64.powf(110.0 / 300.0) + 0.5f64.powf(55.0 / 300.0) + 1.0);
        let expected = 130.0 + 300.0 * (p / 750.0).log2();
        let until = c.next_deadline(t0 + secs(400.0)).expect("deadline");
        let held = until.duration_since(t0).as_secs_f64();
        assert!(
            (held - expected).abs() < 0.5,
            "held until {held}, expected {expected}"
        );
        assert!(c.tick(until - secs(0.5)).is_empty());
        let ev = c.tick(until);
        assert!(ev.iter().any(|e| matches!(e, WanEvent::Undamped { .. })));
        assert!(ev.contains(&WanEvent::BlockWanted {
            on: false,
            reason: BlockReason::WanUp
        }));
    }

    #[test]
    fn without_damping_the_slow_flapper_flaps_the_block() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        let mut script = vec![(0.0, true)];
        for k in 0..4 {
            let base = 10.0 + 55.0 * k as f64;
            script.push((base, false));
            script.push((base + 15.0, true));
        }
        let changes = drive(&mut c, t0, &script, 300.0);
        assert_eq!(changes.len(), 8);
    }

    #[test]
    fn modes_override_the_wan() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        c.observe_link(link(true), t0);
        let ev = c.set_mode(RaMode::On, t0);
        assert_eq!(
            ev,
            vec![
                WanEvent::ModeChanged {
                    from: RaMode::Auto,
                    to: RaMode::On
                },
                WanEvent::BlockWanted {
                    on: true,
                    reason: BlockReason::ForcedOn
                }
            ]
        );
        // WAN goes down while forced on: still on; then forced off: off despite the WAN
        c.observe_link(link(false), t0 + secs(1.0));
        c.tick(t0 + secs(20.0));
        assert_eq!(c.state(), WanState::Down);
        assert!(c.block_wanted());
        let ev = c.set_mode(RaMode::Off, t0 + secs(21.0));
        assert!(ev.contains(&WanEvent::BlockWanted {
            on: false,
            reason: BlockReason::ForcedOff
        }));
        // back to auto: follows the (down) WAN
        let ev = c.set_mode(RaMode::Auto, t0 + secs(22.0));
        assert!(ev.contains(&WanEvent::BlockWanted {
            on: true,
            reason: BlockReason::WanDown
        }));
        assert!(c.set_mode(RaMode::Auto, t0 + secs(23.0)).is_empty());
    }

    #[test]
    fn mode_on_blocks_from_the_start() {
        let t0 = Instant::now();
        let c = WanController::new(policy(None), RaMode::On, t0);
        assert!(c.block_wanted());
    }

    #[test]
    fn dead_upstream_behind_a_live_link_is_down() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        c.observe_link(link(true), t0);
        assert!(c.observe_probe(&[false, false], t0 + secs(1.0)).is_empty());
        let ev = c.observe_probe(&[false, false], t0 + secs(2.0));
        assert!(ev.contains(&WanEvent::LinkChanged {
            usable: false,
            at: t0 + secs(2.0)
        }));
        let ev = c.tick(t0 + secs(12.0));
        assert!(ev.contains(&WanEvent::BlockWanted {
            on: true,
            reason: BlockReason::WanDown
        }));
        // one target answers: usable again, up after up_after
        c.observe_probe(&[true, false], t0 + secs(13.0));
        assert!(c.tick(t0 + secs(42.9)).is_empty());
        assert!(c.tick(t0 + secs(43.0)).contains(&WanEvent::BlockWanted {
            on: false,
            reason: BlockReason::WanUp
        }));
    }

    #[test]
    fn repeated_identical_readings_change_nothing() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        c.observe_link(link(true), t0);
        c.observe_link(link(false), t0 + secs(1.0));
        // periodic re-reads of the same state must not restart the debounce
        for k in 2..11 {
            assert!(c.observe_link(link(false), t0 + secs(k as f64)).is_empty());
        }
        assert!(c
            .observe_link(link(false), t0 + secs(11.0))
            .contains(&WanEvent::BlockWanted {
                on: true,
                reason: BlockReason::WanDown
            }));
    }

    #[test]
    fn vanished_link_is_down() {
        let t0 = Instant::now();
        let mut c = WanController::new(policy(None), RaMode::Auto, t0);
        c.observe_link(link(true), t0);
        c.observe_link(LinkSample::absent(), t0 + secs(1.0));
        c.tick(t0 + secs(11.0));
        assert_eq!(c.state(), WanState::Down);
    }
}
