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

/// Debounces one input from what it saw and when: edges with the time they happened, and
/// plain reads at the time of reading. A level counts once it held for the debounce time,
/// judged by those times, so a press that is over before the loop looks still counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debouncer {
    stable: Level,
    candidate: Option<(Level, u64)>,
    debounce_ms: u64,
    last_ms: u64,
}

impl Debouncer {
    /// Starts stable at `initial` (read when the pin is claimed).
    pub fn new(initial: Level, debounce: Duration) -> Self {
        Debouncer {
            stable: initial,
            candidate: None,
            debounce_ms: u64::try_from(debounce.as_millis()).unwrap_or(u64::MAX),
            last_ms: 0,
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

    /// The input has been at `level` since monotonic `at_ms` (an edge's time, or a read's).
    /// Times going backwards (an edge delivered after a later read) count as the latest time
    /// seen. Returns the new stable level when it changes. A press seen only with its release
    /// still counts (levels are binary, so one sample changes the stable level at most once:
    /// a candidate that matured, or a new one with no debounce).
    pub fn sample(&mut self, level: Level, at_ms: u64) -> Option<Level> {
        let at = at_ms.max(self.last_ms);
        self.last_ms = at;
        // A candidate that held until now counts, whatever comes next.
        if let Some(l) = self.mature(at) {
            if level != l {
                self.candidate = Some((level, at));
            }
            return Some(l);
        }
        if level == self.stable {
            self.candidate = None;
            return None;
        }
        if !matches!(self.candidate, Some((l, _)) if l == level) {
            self.candidate = Some((level, at));
        }
        self.mature(at)
    }

    fn mature(&mut self, at: u64) -> Option<Level> {
        let (l, since) = self.candidate?;
        if at.saturating_sub(since) < self.debounce_ms {
            return None;
        }
        self.stable = l;
        self.candidate = None;
        Some(l)
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
    fn a_press_seen_only_after_its_release_still_counts() {
        // The loop was busy: both edges arrive at once, the press held 80 ms.
        let mut d = Debouncer::new(High, DB);
        assert_eq!(d.sample(Low, 1_000), None);
        assert_eq!(
            d.sample(High, 1_080),
            Some(Low),
            "the press, by its edge times"
        );
        // The read that follows, much later, completes the release.
        assert_eq!(d.sample(High, 2_000), Some(High));
        assert_eq!(d.stable(), High);
        // A blip shorter than the debounce seen late is still a blip.
        assert_eq!(d.sample(Low, 3_000), None);
        assert_eq!(d.sample(High, 3_020), None);
        assert_eq!(d.sample(High, 5_000), None);
        assert_eq!(d.stable(), High);
    }

    #[test]
    fn times_going_backwards_count_as_the_latest() {
        // A read at 200 saw Low before the edge stamped 150 was delivered.
        let mut d = Debouncer::new(High, DB);
        assert_eq!(d.sample(Low, 200), None);
        assert_eq!(d.sample(Low, 150), None);
        assert_eq!(d.deadline(), Some(250));
        assert_eq!(d.sample(Low, 249), None);
        assert_eq!(d.sample(Low, 250), Some(Low));
    }

    #[test]
    fn zero_debounce_is_immediate() {
        let mut d = Debouncer::new(Low, Duration::ZERO);
        assert_eq!(d.sample(High, 7), Some(High));
        // With no debounce the next change counts at once too.
        assert_eq!(d.sample(Low, 8), Some(Low));
        // A matured candidate and its opposite in one sample: the first counts, the second
        // waits its own debounce.
        let mut d = Debouncer::new(Low, DB);
        assert_eq!(d.sample(High, 0), None);
        assert_eq!(d.sample(Low, 60), Some(High));
        assert_eq!(d.deadline(), Some(110));
        assert_eq!(d.sample(Low, 110), Some(Low));
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
