//! GPIO through the kernel's character device (gpiocdev). Lines are found by name (`GPIO17`,
//! as the Pi's device tree names them), so the same config works on a Pi 4 (`gpiochip0`) and a
//! Pi 5 (RP1, whichever chip number it gets). Each line is its own request: the output level
//! is part of the request (the kernel sets it before switching direction), inputs get the
//! kernel's debounce and edge events, and the kernel releases everything when the process dies.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Value};
use gpiocdev::{Chip, Request};

use super::{BackendKind, Edge, GpioError, Level, PinBank, Pull};

/// The consumer name other tools (`gpioinfo`) show for our lines.
const CONSUMER: &str = "pirouterd";

struct Line {
    req: Arc<Request>,
    offset: u32,
    input: bool,
}

/// The kernel GPIO character-device backend.
pub struct CdevBank {
    chips: Vec<PathBuf>,
    lines: Mutex<BTreeMap<u8, Line>>,
}

impl CdevBank {
    /// Lists the GPIO chips. Fails when there are none.
    pub fn open() -> Result<Self, GpioError> {
        let chips = gpiocdev::chip::chips().map_err(|source| GpioError::ListChips { source })?;
        if chips.is_empty() {
            return Err(GpioError::NoChips);
        }
        Ok(Self {
            chips,
            lines: Mutex::new(BTreeMap::new()),
        })
    }

    fn lines(&self) -> MutexGuard<'_, BTreeMap<u8, Line>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds `GPIO<pin>` on the chips; a chip we may not open is a permission problem, not a
    /// missing line.
    fn find(&self, pin: u8) -> Result<(PathBuf, u32), GpioError> {
        let name = format!("GPIO{pin}");
        let mut denied = None;
        for path in &self.chips {
            let chip = match Chip::from_path(path) {
                Ok(c) => c,
                Err(e) if is_eacces(&e) => {
                    denied = Some(path.display().to_string());
                    continue;
                }
                Err(source) => {
                    return Err(GpioError::Cdev {
                        step: "opening the chip for",
                        pin,
                        chip: path.display().to_string(),
                        source,
                    })
                }
            };
            if let Some(info) = chip.find_line_info(&name) {
                if info.used {
                    return Err(GpioError::PinBusy {
                        pin,
                        consumer: Some(info.consumer).filter(|c| !c.is_empty()),
                    });
                }
                return Ok((path.clone(), info.offset));
            }
        }
        match denied {
            Some(path) => Err(GpioError::PermissionDenied { path }),
            None => Err(GpioError::LineNotFound { name }),
        }
    }

    fn request(
        &self,
        pin: u8,
        input: bool,
        build: impl FnOnce(&mut gpiocdev::request::Builder),
    ) -> Result<(), GpioError> {
        if self.lines().contains_key(&pin) {
            return Err(GpioError::PinBusy {
                pin,
                consumer: Some(CONSUMER.into()),
            });
        }
        let (chip, offset) = self.find(pin)?;
        let mut b = Request::builder();
        b.on_chip(&chip).with_consumer(CONSUMER).with_line(offset);
        build(&mut b);
        let req = b.request().map_err(|source| {
            if is_eacces(&source) {
                GpioError::PermissionDenied {
                    path: chip.display().to_string(),
                }
            } else if is_ebusy(&source) {
                GpioError::PinBusy {
                    pin,
                    consumer: None,
                }
            } else {
                GpioError::Cdev {
                    step: "requesting",
                    pin,
                    chip: chip.display().to_string(),
                    source,
                }
            }
        })?;
        self.lines().insert(
            pin,
            Line {
                req: Arc::new(req),
                offset,
                input,
            },
        );
        Ok(())
    }

    fn line(&self, pin: u8) -> Result<(Arc<Request>, u32), GpioError> {
        self.lines()
            .get(&pin)
            .map(|l| (l.req.clone(), l.offset))
            .ok_or(GpioError::NotClaimed { pin })
    }
}

fn errno(e: &gpiocdev::Error) -> Option<i32> {
    match e {
        gpiocdev::Error::Os(n) => Some(n.0),
        gpiocdev::Error::Uapi(_, gpiocdev_uapi::Error::Os(n)) => Some(n.0),
        _ => None,
    }
}

fn is_eacces(e: &gpiocdev::Error) -> bool {
    matches!(errno(e), Some(n) if n == nix::libc::EACCES || n == nix::libc::EPERM)
}

fn is_ebusy(e: &gpiocdev::Error) -> bool {
    errno(e) == Some(nix::libc::EBUSY)
}

fn value(level: Level) -> Value {
    // Lines are requested active-high, so Active is the physical high level.
    if level.is_high() {
        Value::Active
    } else {
        Value::Inactive
    }
}

impl PinBank for CdevBank {
    fn kind(&self) -> BackendKind {
        BackendKind::Cdev
    }

    fn claim_output(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        self.request(pin, false, |b| {
            b.as_output(value(level));
        })
    }

    fn claim_input(&self, pin: u8, pull: Pull, debounce: Duration) -> Result<(), GpioError> {
        self.request(pin, true, |b| {
            b.as_input()
                .with_bias(match pull {
                    Pull::Up => Bias::PullUp,
                    Pull::Down => Bias::PullDown,
                    Pull::Off => Bias::Disabled,
                })
                .with_edge_detection(EdgeDetection::BothEdges);
            if !debounce.is_zero() {
                b.with_debounce_period(debounce);
            }
        })
    }

    fn write(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        let (req, offset) = self.line(pin)?;
        req.set_value(offset, value(level))
            .map_err(|source| GpioError::Cdev {
                step: "setting",
                pin,
                chip: req.chip_path().display().to_string(),
                source,
            })
    }

    fn read(&self, pin: u8) -> Result<Level, GpioError> {
        let (req, offset) = self.line(pin)?;
        let v = req.value(offset).map_err(|source| GpioError::Cdev {
            step: "reading",
            pin,
            chip: req.chip_path().display().to_string(),
            source,
        })?;
        Ok(Level::from_bool(v == Value::Active))
    }

    fn wait_inputs(&self, timeout: Duration, edges: &mut Vec<Edge>) -> Result<bool, GpioError> {
        let inputs: Vec<(u8, Arc<Request>)> = self
            .lines()
            .iter()
            .filter(|(_, l)| l.input)
            .map(|(&p, l)| (p, l.req.clone()))
            .collect();
        if inputs.is_empty() {
            std::thread::sleep(timeout);
            return Ok(false);
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds: Vec<nix::poll::PollFd<'_>> = inputs
            .iter()
            .map(|(_, r)| nix::poll::PollFd::new(r.as_fd(), nix::poll::PollFlags::POLLIN))
            .collect();
        let n = match nix::poll::poll(&mut fds, ms) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return Ok(false),
            Err(source) => return Err(GpioError::Poll { source }),
        };
        if n == 0 {
            return Ok(false);
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        let first = edges.len();
        for ((pin, req), ready) in inputs.iter().zip(ready) {
            if !ready {
                continue;
            }
            while req.has_edge_event().unwrap_or(false) {
                let ev = req.read_edge_event().map_err(|source| GpioError::Cdev {
                    step: "reading edge events of",
                    pin: *pin,
                    chip: req.chip_path().display().to_string(),
                    source,
                })?;
                edges.push(Edge {
                    pin: *pin,
                    // Lines are requested active-high: rising is a physical high.
                    level: Level::from_bool(ev.kind == EdgeKind::Rising),
                    at: monotonic_to_instant(ev.timestamp_ns),
                });
            }
        }
        // Each line has its own queue; the caller wants one timeline.
        edges[first..].sort_by_key(|e| e.at);
        Ok(true)
    }
}

/// The kernel stamps edge events with CLOCK_MONOTONIC (the uAPI default we keep), the clock
/// `Instant` reads on Linux; an `Instant` cannot be built from nanoseconds, so go by age.
fn monotonic_to_instant(ts_ns: u64) -> Instant {
    let now = Instant::now();
    let Ok(mono) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else {
        return now;
    };
    let now_ns = u64::try_from(mono.tv_sec())
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(mono.tv_nsec()).unwrap_or(0));
    now.checked_sub(Duration::from_nanos(now_ns.saturating_sub(ts_ns)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_are_recognised() {
        let e = gpiocdev::Error::from(std::io::Error::from_raw_os_error(nix::libc::EACCES));
        assert!(is_eacces(&e));
        let e = gpiocdev::Error::from(std::io::Error::from_raw_os_error(nix::libc::EBUSY));
        assert!(is_ebusy(&e));
        assert!(!is_eacces(&e));
        // A failed line request arrives wrapped in the uAPI call that failed.
        let e = gpiocdev::Error::Uapi(
            gpiocdev::UapiCall::GetLine,
            gpiocdev_uapi::Error::Os(gpiocdev_uapi::Errno(nix::libc::EACCES)),
        );
        assert!(is_eacces(&e));
    }
}
