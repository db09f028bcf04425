//! systemd readiness and watchdog over `NOTIFY_SOCKET` (sd_notify(3) without libsystemd).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to systemd's notify socket, or nothing when not started by systemd.
#[derive(Debug)]
pub struct Notifier {
    sock: Option<(UnixDatagram, String)>,
    /// Half of `WATCHDOG_USEC`, when the unit has `WatchdogSec=`.
    pub watchdog_every: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Notifier {
        let sock = std::env::var("NOTIFY_SOCKET").ok().and_then(|path| {
            let s = UnixDatagram::unbound().ok()?;
            Some((s, path))
        });
        let watchdog_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|us| *us > 0)
            .map(|us| Duration::from_micros(us / 2));
        Notifier {
            sock,
            watchdog_every,
        }
    }

    /// Sends a state string such as `READY=1`; a failure is logged, never fatal.
    pub fn notify(&self, state: &str) {
        let Some((s, path)) = &self.sock else { return };
        let sent = if let Some(name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| s.send_to_addr(state.as_bytes(), &addr))
        } else {
            s.send_to(state.as_bytes(), path)
        };
        if let Err(e) = sent {
            log::warn!("cannot notify systemd ({state}) on {path}: {e}");
        }
    }
}
