//! The pin-bank seam: the only way relay code reaches GPIO.
//!
//! A [`PinBank`] is a small blocking trait with three backends:
//! - [`sim::SimBank`]: simulated pins whose levels can be read back (the API shows them) and
//!   whose inputs tests can drive ("press the wall switch"); the default off a Raspberry Pi.
//! - [`cdev::CdevBank`]: the kernel's GPIO character device through gpiocdev. Lines are found by
//!   name (`GPIO17`), the initial output level is part of the request (no glitch), inputs get
//!   kernel debounce and edge events, and the kernel owns the lines: they are released when the
//!   process dies.
//! - [`rppal::RppalBank`]: the Pi 3/4/5 GPIO registers through rppal (unmaintained since
//!   2025-07; fails on some Pi 5 kernels without `/dev/gpiochip0`). A crash leaves its pins as
//!   they were, hence `pirouterd relays off` in the unit's `ExecStopPost=`.
//!
//! Pins are BCM numbers. Levels here are physical (`High`/`Low`); active-low is the relay
//! layer's business.

pub mod cdev;
pub mod rppal;
pub mod sim;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A physical pin level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Low,
    High,
}

impl Level {
    /// `High` for `true`.
    pub fn from_bool(high: bool) -> Self {
        if high {
            Level::High
        } else {
            Level::Low
        }
    }
    pub fn is_high(self) -> bool {
        self == Level::High
    }
    /// The level that means "active" for a pin wired active-low or active-high.
    pub fn active(active_low: bool) -> Self {
        Level::from_bool(!active_low)
    }
    /// The level that means "inactive".
    pub fn inactive(active_low: bool) -> Self {
        Level::from_bool(active_low)
    }
    /// Whether this level is the active one for the given wiring.
    pub fn is_active(self, active_low: bool) -> bool {
        self == Level::active(active_low)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Low => "low",
            Level::High => "high",
        })
    }
}

/// The built-in pull resistor of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    #[default]
    Up,
    Down,
    Off,
}

impl fmt::Display for Pull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pull::Up => "up",
            Pull::Down => "down",
            Pull::Off => "off",
        })
    }
}

/// Which backend drives the pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sim,
    Cdev,
    Rppal,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Sim => "sim",
            BackendKind::Cdev => "cdev",
            BackendKind::Rppal => "rppal",
        })
    }
}

/// `gpio.backend` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    #[default]
    Auto,
    Sim,
    Cdev,
    Rppal,
}

/// Why `auto` chose what it chose, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub kind: BackendKind,
    pub why: String,
}

impl Choice {
    /// `auto` found no Raspberry Pi GPIO and fell back to simulated pins: configured relays
    /// drive nothing real.
    pub fn is_fallback_sim(&self) -> bool {
        self.kind == BackendKind::Sim && self.why != FIXED
    }
}

const FIXED: &str = "set by gpio.backend";

/// Resolves `auto`: on a Raspberry Pi, cdev where GPIO character devices exist, else rppal;
/// anywhere else, simulated pins. `model` is `/proc/device-tree/model` (NUL-trimmed) if
/// readable; `has_gpiochip` whether any `/dev/gpiochip*` exists.
pub fn choose(choice: BackendChoice, model: Option<&str>, has_gpiochip: bool) -> Choice {
    let fixed = |kind| Choice {
        kind,
        why: FIXED.into(),
    };
    match choice {
        BackendChoice::Sim => fixed(BackendKind::Sim),
        BackendChoice::Cdev => fixed(BackendKind::Cdev),
        BackendChoice::Rppal => fixed(BackendKind::Rppal),
        BackendChoice::Auto => {
            let model = model.map(|m| m.trim_end_matches('\0').trim());
            match model {
                Some(m) if m.starts_with("Raspberry Pi") => {
                    if has_gpiochip {
                        Choice {
                            kind: BackendKind::Cdev,
                            why: format!("{m} with /dev/gpiochip*: kernel GPIO character device"),
                        }
                    } else {
                        Choice {
                            kind: BackendKind::Rppal,
                            why: format!("{m} without /dev/gpiochip*: GPIO registers"),
                        }
                    }
                }
                Some(m) => Choice {
                    kind: BackendKind::Sim,
                    why: format!("not a Raspberry Pi ({m:?}): simulated pins"),
                },
                None => Choice {
                    kind: BackendKind::Sim,
                    why: "no /proc/device-tree/model, so not a Raspberry Pi: simulated pins".into(),
                },
            }
        }
    }
}

/// Reads what [`choose`] needs from the machine (`/proc/device-tree/model`, `/dev/gpiochip*`).
pub fn probe(dev: &Path, model_file: &Path) -> (Option<String>, bool) {
    let model = std::fs::read(model_file).ok().map(|b| {
        String::from_utf8_lossy(&b)
            .trim_end_matches('\0')
            .to_string()
    });
    let has_chip = std::fs::read_dir(dev)
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("gpiochip"))
        })
        .unwrap_or(false);
    (model, has_chip)
}

/// Opens the chosen backend.
pub fn open(kind: BackendKind) -> Result<Box<dyn PinBank>, GpioError> {
    Ok(match kind {
        BackendKind::Sim => Box::new(sim::SimBank::new()),
        BackendKind::Cdev => Box::new(cdev::CdevBank::open()?),
        BackendKind::Rppal => Box::new(rppal::RppalBank::open()?),
    })
}

/// An input changed level at `at`. Debouncing by these times, not by when a busy loop got
/// round to reading the pin, is what makes a short press count however loaded the Pi is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub pin: u8,
    pub level: Level,
    pub at: Instant,
}

/// A bank of GPIO pins. Blocking, callable from several threads; each call is short except
/// [`PinBank::wait_inputs`].
pub trait PinBank: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Makes `pin` an output driving `level`. The level is set before the pin becomes an
    /// output, so claiming never glitches a relay.
    fn claim_output(&self, pin: u8, level: Level) -> Result<(), GpioError>;
    /// Makes `pin` an input with the given pull and (where the backend has it) kernel debounce.
    fn claim_input(&self, pin: u8, pull: Pull, debounce: Duration) -> Result<(), GpioError>;
    /// Drives a claimed output.
    fn write(&self, pin: u8, level: Level) -> Result<(), GpioError>;
    /// Reads a claimed pin (an output reads back what it drives).
    fn read(&self, pin: u8) -> Result<Level, GpioError>;
    /// Blocks until an input may have changed or `timeout` passes. Appends the input edges
    /// seen since the last call, oldest first, with the time each happened (backends without
    /// edge events append none). Returns `true` when woken by an input event. Callers re-read
    /// the inputs either way: an edge queue can overflow, a level read cannot.
    fn wait_inputs(&self, timeout: Duration, edges: &mut Vec<Edge>) -> Result<bool, GpioError>;
    /// The simulated bank, for the API's pin view and for pressing simulated switches.
    fn as_sim(&self) -> Option<&sim::SimBank> {
        None
    }
}

/// What went wrong talking to GPIO. Each variant says what to check.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// The GPIO device files exist but this user may not open them.
    #[error(
        "permission denied opening {path}: add the pirouterd user to the gpio group \
         (`usermod -aG gpio pirouterd`, then restart pirouterd)"
    )]
    PermissionDenied { path: String },
    /// rppal could not identify the board.
    #[error(
        "rppal cannot identify this machine as a Raspberry Pi: use gpio.backend = \"cdev\" \
         on Pi kernels with /dev/gpiochip*, or \"sim\" off a Pi"
    )]
    UnknownModel,
    /// The pin number does not exist on this board.
    #[error("GPIO{pin} does not exist here: pins are BCM numbers (GPIO2..GPIO27 on the header)")]
    PinNotAvailable { pin: u8 },
    /// Another program (or another relay/LED in this config) holds the pin.
    #[error(
        "GPIO{pin} is already in use{}: check `gpioinfo` and the config for a pin used twice",
        consumer.as_deref().map(|c| format!(" by {c:?}")).unwrap_or_default()
    )]
    PinBusy { pin: u8, consumer: Option<String> },
    /// No GPIO character devices at all.
    #[error(
        "no GPIO character devices (/dev/gpiochip*): this is not a Pi kernel with GPIO, \
         use gpio.backend = \"rppal\" or \"sim\""
    )]
    NoChips,
    /// No line with the pin's name (`GPIO17`) on any chip.
    #[error(
        "no GPIO line named {name} on any /dev/gpiochip*: check `gpioinfo`; \
         on a non-Pi board use gpio.backend = \"sim\""
    )]
    LineNotFound { name: String },
    /// The pin was used before being claimed (a bug in the caller).
    #[error("GPIO{pin} was not claimed before use")]
    NotClaimed { pin: u8 },
    /// A gpiocdev step failed.
    #[error("{step} GPIO{pin} through {chip}")]
    Cdev {
        step: &'static str,
        pin: u8,
        chip: String,
        #[source]
        source: ::gpiocdev::Error,
    },
    /// Waiting for input events failed.
    #[error("waiting for GPIO input events")]
    Poll {
        #[source]
        source: nix::Error,
    },
    /// Any other rppal failure.
    #[error("rppal: {step}")]
    Rppal {
        step: &'static str,
        #[source]
        source: ::rppal::gpio::Error,
    },
    /// Listing GPIO chips failed.
    #[error("listing /dev/gpiochip*")]
    ListChips {
        #[source]
        source: ::gpiocdev::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_cdev_then_rppal_on_a_pi_and_sim_elsewhere() {
        let pi5 = Some("Raspberry Pi 5 Model B Rev 1.0\0");
        assert_eq!(
            choose(BackendChoice::Auto, pi5, true).kind,
            BackendKind::Cdev
        );
        assert_eq!(
            choose(BackendChoice::Auto, pi5, false).kind,
            BackendKind::Rppal
        );
        assert_eq!(
            choose(BackendChoice::Auto, Some("QEMU Virt"), true).kind,
            BackendKind::Sim
        );
        assert_eq!(
            choose(BackendChoice::Auto, None, true).kind,
            BackendKind::Sim
        );
        assert_eq!(
            choose(BackendChoice::Rppal, None, false).kind,
            BackendKind::Rppal
        );
        assert!(choose(BackendChoice::Auto, pi5, true)
            .why
            .contains("Raspberry Pi 5"));
        assert!(choose(BackendChoice::Auto, None, false).is_fallback_sim());
        assert!(!choose(BackendChoice::Sim, None, false).is_fallback_sim());
    }

    #[test]
    fn active_low_levels() {
        assert_eq!(Level::active(true), Level::Low);
        assert_eq!(Level::inactive(true), Level::High);
        assert!(Level::High.is_active(false));
        assert!(!Level::High.is_active(true));
    }

    #[test]
    fn probe_reads_model_and_chips() {
        let dir = std::env::temp_dir().join(format!("pr-gpio-probe-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dev")).expect("mkdir");
        let model = dir.join("model");
        std::fs::write(&model, b"Raspberry Pi 4 Model B Rev 1.4\0").expect("write");
        assert!(!probe(&dir.join("dev"), &model).1);
        std::fs::write(dir.join("dev/gpiochip0"), b"").expect("write");
        let (m, chip) = probe(&dir.join("dev"), &model);
        assert_eq!(m.as_deref(), Some("Raspberry Pi 4 Model B Rev 1.4"));
        assert!(chip);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
