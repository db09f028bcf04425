//! The clock seam. Pure code takes `now` as an argument; the daemon reads it here.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock time (for display and persistence) and monotonic time (for intervals).
pub trait Clock: Send + Sync {
    /// Wall-clock time, as Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// Monotonic time, for timers that must not jump with NTP.
    fn monotonic(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64
    }
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}
