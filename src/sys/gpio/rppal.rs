//! GPIO through the Pi's registers (rppal 0.22, Pi 3/4/5). rppal writes registers, so the
//! kernel does not own these pins: if pirouterd dies they stay as they were, which is why the
//! systemd unit runs `pirouterd relays off` as `ExecStopPost=`.
//!
//! rppal reports "permission denied" two ways: `Error::PermissionDenied(path)` on a Pi 4
//! (`/dev/gpiomem`, `/dev/gpiochipN`) and `Error::Io` with kind `PermissionDenied` on a Pi 5
//! (`/dev/gpiomem0`, RP1). Both become [`GpioError::PermissionDenied`].
//!
//! Inputs are polled every [`POLL`]: rppal's interrupt path goes through the same
//! `/dev/gpiochip0` scan that breaks on some Pi 5 kernels, and polling a register is cheap.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ::rppal::gpio::{Gpio, InputPin, OutputPin};

use super::{BackendKind, Edge, GpioError, Level, PinBank, Pull};

/// How often [`RppalBank::wait_inputs`] samples the inputs.
pub const POLL: Duration = Duration::from_millis(10);

enum Slot {
    Out(OutputPin),
    In(InputPin),
}

/// The rppal register backend.
pub struct RppalBank {
    gpio: Gpio,
    pins: Mutex<BTreeMap<u8, Slot>>,
}

/// Translates an rppal error into one a person can act on.
pub fn map_error(step: &'static str, e: ::rppal::gpio::Error) -> GpioError {
    use ::rppal::gpio::Error as E;
    match e {
        E::PermissionDenied(path) => GpioError::PermissionDenied { path },
        E::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            GpioError::PermissionDenied {
                path: "/dev/gpiomem0 (Pi 5) or /dev/gpiomem".into(),
            }
        }
        E::UnknownModel => GpioError::UnknownModel,
        E::PinUsed(pin) => GpioError::PinBusy {
            pin,
            consumer: None,
        },
        E::PinNotAvailable(pin) => GpioError::PinNotAvailable { pin },
        other => GpioError::Rppal {
            step,
            source: other,
        },
    }
}

fn level(l: ::rppal::gpio::Level) -> Level {
    match l {
        ::rppal::gpio::Level::High => Level::High,
        ::rppal::gpio::Level::Low => Level::Low,
    }
}

impl RppalBank {
    /// Identifies the board and maps its GPIO registers.
    pub fn open() -> Result<Self, GpioError> {
        let gpio = Gpio::new().map_err(|e| map_error("opening the GPIO registers", e))?;
        Ok(Self {
            gpio,
            pins: Mutex::new(BTreeMap::new()),
        })
    }

    fn pins(&self) -> MutexGuard<'_, BTreeMap<u8, Slot>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, pin: u8) -> Result<::rppal::gpio::Pin, GpioError> {
        self.gpio
            .get(pin)
            .map_err(|e| map_error("claiming a pin", e))
    }
}

impl PinBank for RppalBank {
    fn kind(&self) -> BackendKind {
        BackendKind::Rppal
    }

    fn claim_output(&self, pin: u8, lvl: Level) -> Result<(), GpioError> {
        let p = self.take(pin)?;
        // into_output_low/high write the level first, then switch the mode: no glitch.
        let mut out = match lvl {
            Level::High => p.into_output_high(),
            Level::Low => p.into_output_low(),
        };
        // We drive relays safe before exiting; keep that level instead of floating the pin.
        out.set_reset_on_drop(false);
        self.pins().insert(pin, Slot::Out(out));
        Ok(())
    }

    fn claim_input(&self, pin: u8, pull: Pull, _debounce: Duration) -> Result<(), GpioError> {
        let p = self.take(pin)?;
        let input = match pull {
            Pull::Up => p.into_input_pullup(),
            Pull::Down => p.into_input_pulldown(),
            Pull::Off => p.into_input(),
        };
        self.pins().insert(pin, Slot::In(input));
        Ok(())
    }

    fn write(&self, pin: u8, lvl: Level) -> Result<(), GpioError> {
        match self.pins().get_mut(&pin) {
            Some(Slot::Out(o)) => {
                match lvl {
                    Level::High => o.set_high(),
                    Level::Low => o.set_low(),
                }
                Ok(())
            }
            _ => Err(GpioError::NotClaimed { pin }),
        }
    }

    fn read(&self, pin: u8) -> Result<Level, GpioError> {
        match self.pins().get(&pin) {
            Some(Slot::Out(o)) => Ok(if o.is_set_high() {
                Level::High
            } else {
                Level::Low
            }),
            Some(Slot::In(i)) => Ok(level(i.read())),
            None => Err(GpioError::NotClaimed { pin }),
        }
    }

    fn wait_inputs(&self, timeout: Duration, _edges: &mut Vec<Edge>) -> Result<bool, GpioError> {
        // Register polling: no edges, the caller samples levels every POLL.
        std::thread::sleep(timeout.min(POLL));
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_permission_variants_say_add_the_user_to_gpio() {
        // Pi 4 (BCM): rppal names the file.
        let pi4 = map_error(
            "x",
            ::rppal::gpio::Error::PermissionDenied("/dev/gpiomem".into()),
        );
        // Pi 5 (RP1): rppal passes the io::Error through.
        let pi5 = map_error(
            "x",
            ::rppal::gpio::Error::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        );
        for e in [pi4, pi5] {
            assert!(matches!(e, GpioError::PermissionDenied { .. }));
            assert!(e
                .to_string()
                .contains("add the pirouterd user to the gpio group"));
        }
        assert!(matches!(
            map_error("x", ::rppal::gpio::Error::PinUsed(4)),
            GpioError::PinBusy { pin: 4, .. }
        ));
        assert!(matches!(
            map_error("x", ::rppal::gpio::Error::UnknownModel),
            GpioError::UnknownModel
        ));
        let other = map_error(
            "opening",
            ::rppal::gpio::Error::Io(std::io::Error::from(std::io::ErrorKind::NotFound)),
        );
        assert!(matches!(other, GpioError::Rppal { .. }));
    }
}
