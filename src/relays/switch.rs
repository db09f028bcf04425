//! Physical switch inputs: debounce and what a stable level means.
//!
//! A level counts only after it has held for the debounce time: contact bounce shorter than
//! that never reaches the relay. `toggle` (a push button) toggles the relay on each press;
//! `follow` (a maintained wall switch) turns it on or off with the switch position. Only
//! changes count: the position at start does nothing, so a `follow` switch left on does not
//! turn a relay on when pirouterd starts.

use std::time::Duration;

use crate::sys::gpio::{Level, Pull};

use super::relay::Command;

/// How the switch works the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchMode {
    /// A push button: each press toggles.
    #[default]
    Toggle,
    /// A maintained switch: the relay follows its position.
    Follow,
}

/// A switch input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    pub pin: u8,
    pub pull: Pull,
    /// Pressed (or "on") reads low: a switch to ground with the pull-up, the usual wiring.
    pub active_low: bool,
    pub debounce: Duration,
    pub mode: SwitchMode,
}

/// Debounces one input, sampled at arbitrary times (on edge events and timeouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debouncer {
    stable: Level,
    candidate: Option<(Level, u64)>,
    debounce_ms: u64,
}

impl Debouncer {
    /// Starts stable at `initial` (read when the pin is claimed).
    pub fn new(initial: Level, debounce: Duration) -> Self {
        Debouncer {
            stable: initial,
            candidate: None,
            debounce_ms: u64::try_from(debounce.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The debounced level.
    pub fn stable(&self) -> Level {
        self.stable
    }

    /// Forces the stable level (after we changed what the input watches, e.g. a sense pin
    /// confirmed by a pulse).
    pub fn reset(&mut self, level: Level) {
        self.stable = level;
        self.candidate = None;
    }

    /// Feeds a sample taken at monotonic `now_ms`; returns the new stable level when it
    /// changes.
    pub fn sample(&mut self, level: Level, now_ms: u64) -> Option<Level> {
        if level == self.stable {
            self.candidate = None;
            return None;
        }
        let since = match self.candidate {
            Some((l, since)) if l == level => since,
            _ => {
                self.candidate = Some((level, now_ms));
                now_ms
            }
        };
        if now_ms.saturating_sub(since) >= self.debounce_ms {
            self.stable = level;
            self.candidate = None;
            return Some(level);
        }
        None
    }

    /// When a pending candidate would become stable (monotonic ms), so the caller wakes then.
    pub fn deadline(&self) -> Option<u64> {
        self.candidate
            .map(|(_, since)| since.saturating_add(self.debounce_ms))
    }
}

/// What a new stable switch level asks of the relay.
pub fn command(cfg: &SwitchConfig, stable: Level) -> Option<Command> {
    let active = stable.is_active(cfg.active_low);
    match cfg.mode {
        SwitchMode::Toggle => active.then_some(Command::Toggle { for_: None }),
        SwitchMode::Follow => Some(if active {
            Command::On { for_: None }
        } else {
            Command::Off
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::{High, Low};

    const DB: Duration = Duration::from_millis(50);

    #[test]
    fn bounces_shorter_than_debounce_never_count() {
        let mut d = Debouncer::new(High, DB);
        // 0..40 ms of bounce, back to high: nothing.
        for (t, l) in [
            (0, Low),
            (5, High),
            (10, Low),
            (20, High),
            (40, Low),
            (45, High),
        ] {
            assert_eq!(d.sample(l, t), None, "t={t}");
        }
        assert_eq!(d.stable(), High);
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn a_press_counts_once_after_holding_for_the_debounce_time() {
        let mut d = Debouncer::new(High, DB);
        assert_eq!(d.sample(Low, 100), None);
        assert_eq!(d.sample(High, 103), None); // bounce restarts the wait
        assert_eq!(d.sample(Low, 106), None);
        assert_eq!(d.deadline(), Some(156));
        assert_eq!(d.sample(Low, 155), None);
        assert_eq!(d.sample(Low, 156), Some(Low));
        assert_eq!(d.sample(Low, 300), None, "reported once");
        assert_eq!(d.sample(High, 400), None);
        assert_eq!(d.sample(High, 450), Some(High));
    }

    #[test]
    fn zero_debounce_is_immediate() {
        let mut d = Debouncer::new(Low, Duration::ZERO);
        assert_eq!(d.sample(High, 7), Some(High));
    }

    #[test]
    fn toggle_acts_on_press_follow_on_both() {
        let button = SwitchConfig {
            pin: 17,
            pull: Pull::Up,
            active_low: true,
            debounce: DB,
            mode: SwitchMode::Toggle,
        };
        assert_eq!(command(&button, Low), Some(Command::Toggle { for_: None }));
        assert_eq!(command(&button, High), None, "release does nothing");
        let wall = SwitchConfig {
            mode: SwitchMode::Follow,
            ..button
        };
        assert_eq!(command(&wall, Low), Some(Command::On { for_: None }));
        assert_eq!(command(&wall, High), Some(Command::Off));
    }
}
