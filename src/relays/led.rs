//! Status LEDs bound to signals. The signals come from other parts of pirouterd (WAN watcher,
//! NAT64 sampler) through [`Signals`]; until a part reports, its signal is unknown and its LED
//! stays dark.

use std::sync::atomic::{AtomicU8, Ordering};

/// What an LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// IPv6 router advertisements are being blocked (WAN down).
    RaBlock,
    WanDown,
    Nat64Down,
    /// Blinks while pirouterd runs.
    Heartbeat,
    AnyRelayOn,
}

/// An LED output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedConfig {
    pub name: String,
    pub pin: u8,
    pub active_low: bool,
    pub signal: Signal,
}

/// A snapshot of the signals. `None`: not reported (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalValues {
    pub ra_block: Option<bool>,
    pub wan_down: Option<bool>,
    pub nat64_down: Option<bool>,
    pub any_relay_on: bool,
}

/// The heartbeat: lit for this long ...
pub const HEARTBEAT_ON_MS: u64 = 100;
/// ... once per this period.
pub const HEARTBEAT_PERIOD_MS: u64 = 1000;

/// Whether an LED bound to `signal` is lit at monotonic `now_ms`.
pub fn lit(signal: Signal, v: &SignalValues, now_ms: u64) -> bool {
    match signal {
        Signal::RaBlock => v.ra_block == Some(true),
        Signal::WanDown => v.wan_down == Some(true),
        Signal::Nat64Down => v.nat64_down == Some(true),
        Signal::Heartbeat => now_ms % HEARTBEAT_PERIOD_MS < HEARTBEAT_ON_MS,
        Signal::AnyRelayOn => v.any_relay_on,
    }
}

/// Signals shared between the parts that know them and the LED driver. Lock-free; writers
/// call the setters whenever their state changes.
#[derive(Debug, Default)]
pub struct Signals {
    ra_block: AtomicU8,
    wan_down: AtomicU8,
    nat64_down: AtomicU8,
}

const UNKNOWN: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;

fn enc(v: Option<bool>) -> u8 {
    match v {
        None => UNKNOWN,
        Some(false) => FALSE,
        Some(true) => TRUE,
    }
}

fn dec(v: u8) -> Option<bool> {
    match v {
        FALSE => Some(false),
        TRUE => Some(true),
        _ => None,
    }
}

impl Signals {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set_ra_block(&self, v: Option<bool>) {
        self.ra_block.store(enc(v), Ordering::Relaxed);
    }
    pub fn set_wan_down(&self, v: Option<bool>) {
        self.wan_down.store(enc(v), Ordering::Relaxed);
    }
    pub fn set_nat64_down(&self, v: Option<bool>) {
        self.nat64_down.store(enc(v), Ordering::Relaxed);
    }
    /// The current values, with `any_relay_on` filled in by the caller.
    pub fn snapshot(&self, any_relay_on: bool) -> SignalValues {
        SignalValues {
            ra_block: dec(self.ra_block.load(Ordering::Relaxed)),
            wan_down: dec(self.wan_down.load(Ordering::Relaxed)),
            nat64_down: dec(self.nat64_down.load(Ordering::Relaxed)),
            any_relay_on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_signals_keep_leds_dark() {
        let s = Signals::new();
        let v = s.snapshot(false);
        for sig in [
            Signal::RaBlock,
            Signal::WanDown,
            Signal::Nat64Down,
            Signal::AnyRelayOn,
        ] {
            assert!(!lit(sig, &v, 0), "{sig:?}");
        }
        s.set_ra_block(Some(true));
        s.set_wan_down(Some(false));
        s.set_nat64_down(Some(true));
        let v = s.snapshot(true);
        assert!(lit(Signal::RaBlock, &v, 0));
        assert!(!lit(Signal::WanDown, &v, 0));
        assert!(lit(Signal::Nat64Down, &v, 0));
        assert!(lit(Signal::AnyRelayOn, &v, 0));
        s.set_ra_block(None);
        assert!(!lit(Signal::RaBlock, &s.snapshot(true), 0));
    }

    #[test]
    fn heartbeat_blinks_once_a_second() {
        let v = SignalValues::default();
        let lit_ms = (0..3000).filter(|&t| lit(Signal::Heartbeat, &v, t)).count();
        assert_eq!(lit_ms as u64, 3 * HEARTBEAT_ON_MS);
        assert!(lit(Signal::Heartbeat, &v, 2050));
        assert!(!lit(Signal::Heartbeat, &v, 2500));
    }
}
