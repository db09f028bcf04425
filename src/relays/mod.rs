//! Relays, switches and status LEDs, safe enough for a gas fireplace.
//!
//! The logic is pure and takes time as an argument:
//! - [`relay`]: the relay state machine `step(config, state, event, now) -> Plan` (level and
//!   pulse drives, sense confirmation, `max_on`, `min_off`, `at_start`);
//! - [`switch`]: debouncing and what a switch press means (`toggle`, `follow`);
//! - [`led`]: which signal lights which LED, and the shared [`led::Signals`];
//! - [`store`]: the state file format.
//!
//! [`controller::Controller`] is the one place plans are applied: it owns the pins (through a
//! [`crate::sys::gpio::PinBank`]), serialises every change to a relay behind that relay's
//! mutex (an API request, a switch press and the auto-off timer never interleave), persists
//! each change atomically before acknowledging it, and records it with its source.
//! [`area`] plugs it into the daemon: config conversion, start/stop hooks, the
//! `/api/v1/relays` routes, metrics, the demo's relays and `pirouterd relays off`.

pub mod area;
pub mod controller;
pub mod led;
pub mod relay;
pub mod store;
pub mod switch;

pub use controller::{Controller, ControllerError, RelayError};
pub use relay::{AtStart, Command, Drive, Now, RelayConfig, Sense, Source};
