//! Simulated pins: the same relay logic runs anywhere, tests press switches, and the API shows
//! every level. A simulated appliance can be wired between a relay output and a sense input, so
//! pulse confirmation (and its failure) can be exercised without hardware.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{BackendKind, Edge, GpioError, Level, PinBank, Pull};

/// How many levels per pin [`SimBank::history`] keeps.
const HISTORY: usize = 256;

/// How many input edges wait for `wait_inputs`, like the kernel's per-line event queue; the
/// oldest go first when nobody collects them.
const EDGES: usize = 1024;

/// What a simulated pin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimMode {
    Output,
    Input,
}

/// One simulated pin as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SimPin {
    pub pin: u8,
    pub mode: SimMode,
    pub level: Level,
    /// For inputs: the pull resistor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<Pull>,
}

/// A simulated appliance behind a relay, reporting on a sense input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appliance {
    /// A push-button appliance (the fireplace): each press of `out` (active, then released)
    /// toggles its state, shown on `sense`.
    Pulse {
        out: u8,
        out_active_low: bool,
        sense: u8,
        sense_active_low: bool,
    },
    /// A plain load: `sense` follows `out`.
    Level {
        out: u8,
        out_active_low: bool,
        sense: u8,
        sense_active_low: bool,
    },
}

#[derive(Debug)]
struct Pin {
    mode: SimMode,
    level: Level,
    pull: Option<Pull>,
    history: Vec<Level>,
}

#[derive(Debug, Default)]
struct Inner {
    pins: BTreeMap<u8, Pin>,
    /// Levels driven onto inputs from outside (switches, appliances), before they are claimed.
    external: BTreeMap<u8, Level>,
    appliances: Vec<(Appliance, bool)>,
    /// Input edges not yet collected by `wait_inputs`, like a kernel event queue: a change
    /// made between two waits (while the caller was sampling) wakes the next wait at once.
    edges: VecDeque<Edge>,
}

/// A bank of simulated pins.
#[derive(Debug, Default)]
pub struct SimBank {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl SimBank {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock aborts the process (panic = "abort"), so poisoning
        // only matters in tests; the data is still consistent per pin.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drives an input from outside, as a wall switch or an appliance would. Works before or
    /// after the pin is claimed.
    pub fn set_input(&self, pin: u8, level: Level) {
        let mut g = self.lock();
        set_input_locked(&mut g, pin, level);
        drop(g);
        self.changed.notify_all();
    }

    /// Presses a push button wired active-low (to ground, with the pull-up): low for `hold`,
    /// then released. Blocks for `hold`.
    pub fn press(&self, pin: u8, hold: Duration) {
        self.set_input(pin, Level::Low);
        std::thread::sleep(hold);
        self.set_input(pin, Level::High);
    }

    /// Wires a simulated appliance. `working = false` makes it ignore the relay (a dead
    /// appliance or a broken wire), to exercise failure reporting.
    pub fn wire(&self, appliance: Appliance, working: bool) {
        let mut g = self.lock();
        let (sense, sense_active_low) = match appliance {
            Appliance::Pulse {
                sense,
                sense_active_low,
                ..
            }
            | Appliance::Level {
                sense,
                sense_active_low,
                ..
            } => (sense, sense_active_low),
        };
        if !g.external.contains_key(&sense) {
            set_input_locked(&mut g, sense, Level::inactive(sense_active_low));
        }
        g.appliances.retain(|(a, _)| a != &appliance);
        g.appliances.push((appliance, working));
    }

    /// Breaks or mends a wired appliance.
    pub fn set_working(&self, out: u8, working: bool) {
        let mut g = self.lock();
        for (a, w) in g.appliances.iter_mut() {
            let o = match a {
                Appliance::Pulse { out, .. } | Appliance::Level { out, .. } => *out,
            };
            if o == out {
                *w = working;
            }
        }
    }

    /// Every claimed pin and its level.
    pub fn pins(&self) -> Vec<SimPin> {
        self.lock()
            .pins
            .iter()
            .map(|(&pin, p)| SimPin {
                pin,
                mode: p.mode,
                level: p.level,
                pull: p.pull,
            })
            .collect()
    }

    /// The level of one pin, claimed or not (unclaimed inputs read their external level).
    pub fn level(&self, pin: u8) -> Option<Level> {
        let g = self.lock();
        g.pins
            .get(&pin)
            .map(|p| p.level)
            .or_else(|| g.external.get(&pin).copied())
    }

    /// Every level an output has had since it was claimed, oldest first (bounded), to prove that
    /// claiming never glitched it.
    pub fn history(&self, pin: u8) -> Vec<Level> {
        self.lock()
            .pins
            .get(&pin)
            .map(|p| p.history.clone())
            .unwrap_or_default()
    }
}

fn set_input_locked(g: &mut Inner, pin: u8, level: Level) {
    g.external.insert(pin, level);
    if let Some(p) = g.pins.get_mut(&pin) {
        if p.mode == SimMode::Input && p.level != level {
            p.level = level;
            if g.edges.len() >= EDGES {
                g.edges.pop_front();
            }
            g.edges.push_back(Edge {
                pin,
                level,
                at: Instant::now(),
            });
        }
    }
}

fn push_history(p: &mut Pin, level: Level) {
    if p.history.len() >= HISTORY {
        p.history.remove(0);
    }
    p.history.push(level);
}

/// Lets wired appliances react to an output change from `old` to `new` on `pin`.
fn appliances_react(g: &mut Inner, pin: u8, old: Level, new: Level) {
    let mut effects = Vec::new();
    for (a, working) in &g.appliances {
        if !working {
            continue;
        }
        match *a {
            // The appliance acts on release, like a push button.
            Appliance::Pulse {
                out,
                out_active_low,
                sense,
                sense_active_low,
            } if out == pin && old.is_active(out_active_low) && !new.is_active(out_active_low) => {
                let cur = g
                    .pins
                    .get(&sense)
                    .map(|p| p.level)
                    .or_else(|| g.external.get(&sense).copied())
                    .unwrap_or(Level::inactive(sense_active_low));
                let now_on = !cur.is_active(sense_active_low);
                effects.push((sense, Level::from_bool(now_on != sense_active_low)));
            }
            Appliance::Level {
                out,
                out_active_low,
                sense,
                sense_active_low,
            } if out == pin => {
                let on = new.is_active(out_active_low);
                effects.push((sense, Level::from_bool(on != sense_active_low)));
            }
            _ => {}
        }
    }
    for (sense, level) in effects {
        set_input_locked(g, sense, level);
    }
}

impl PinBank for SimBank {
    fn kind(&self) -> BackendKind {
        BackendKind::Sim
    }

    fn claim_output(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        let mut g = self.lock();
        if g.pins.contains_key(&pin) {
            return Err(GpioError::PinBusy {
                pin,
                consumer: Some("pirouterd".into()),
            });
        }
        g.pins.insert(
            pin,
            Pin {
                mode: SimMode::Output,
                level,
                pull: None,
                history: vec![level],
            },
        );
        Ok(())
    }

    fn claim_input(&self, pin: u8, pull: Pull, _debounce: Duration) -> Result<(), GpioError> {
        let mut g = self.lock();
        if g.pins.contains_key(&pin) {
            return Err(GpioError::PinBusy {
                pin,
                consumer: Some("pirouterd".into()),
            });
        }
        let level = g.external.get(&pin).copied().unwrap_or(match pull {
            Pull::Up => Level::High,
            Pull::Down | Pull::Off => Level::Low,
        });
        g.pins.insert(
            pin,
            Pin {
                mode: SimMode::Input,
                level,
                pull: Some(pull),
                history: vec![level],
            },
        );
        Ok(())
    }

    fn write(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        let mut g = self.lock();
        let p = match g.pins.get_mut(&pin) {
            Some(p) if p.mode == SimMode::Output => p,
            _ => return Err(GpioError::NotClaimed { pin }),
        };
        let old = p.level;
        p.level = level;
        push_history(p, level);
        if old != level {
            appliances_react(&mut g, pin, old, level);
        }
        drop(g);
        self.changed.notify_all();
        Ok(())
    }

    fn read(&self, pin: u8) -> Result<Level, GpioError> {
        self.lock()
            .pins
            .get(&pin)
            .map(|p| p.level)
            .ok_or(GpioError::NotClaimed { pin })
    }

    fn wait_inputs(&self, timeout: Duration, edges: &mut Vec<Edge>) -> Result<bool, GpioError> {
        let g = self.lock();
        let (mut g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |g| g.edges.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        let woke = !g.edges.is_empty();
        edges.extend(g.edges.drain(..));
        Ok(woke)
    }

    fn as_sim(&self) -> Option<&SimBank> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_start_at_the_claimed_level_and_record_history() {
        let b = SimBank::new();
        b.claim_output(2, Level::High).expect("claim");
        b.write(2, Level::Low).expect("write");
        b.write(2, Level::High).expect("write");
        assert_eq!(b.history(2), vec![Level::High, Level::Low, Level::High]);
        assert!(matches!(
            b.claim_output(2, Level::High),
            Err(GpioError::PinBusy { pin: 2, .. })
        ));
        assert!(matches!(
            b.write(9, Level::High),
            Err(GpioError::NotClaimed { pin: 9 })
        ));
    }

    #[test]
    fn inputs_read_pull_then_external_level_and_wake_waiters() {
        let b = std::sync::Arc::new(SimBank::new());
        b.claim_input(17, Pull::Up, Duration::ZERO).expect("claim");
        assert_eq!(b.read(17).expect("read"), Level::High);
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            let mut e = Vec::new();
            let woke = b2.wait_inputs(Duration::from_secs(10), &mut e);
            (woke, e)
        });
        std::thread::sleep(Duration::from_millis(20));
        let before = Instant::now();
        b.set_input(17, Level::Low);
        let (woke, edges) = t.join().expect("join");
        assert!(woke.expect("wait"));
        assert_eq!(edges.len(), 1, "{edges:?}");
        assert_eq!((edges[0].pin, edges[0].level), (17, Level::Low));
        assert!(edges[0].at >= before);
        assert_eq!(b.read(17).expect("read"), Level::Low);
        let mut e = Vec::new();
        assert!(!b
            .wait_inputs(Duration::from_millis(5), &mut e)
            .expect("wait"));
        assert!(e.is_empty());
        // Changes made while nobody waits wake the next wait at once (no lost wake-up), and
        // every edge is kept in order with its own time.
        b.set_input(17, Level::High);
        std::thread::sleep(Duration::from_millis(5));
        b.set_input(17, Level::Low);
        b.set_input(17, Level::Low); // no change, no edge
        assert!(b
            .wait_inputs(Duration::from_secs(10), &mut e)
            .expect("wait"));
        let levels: Vec<Level> = e.iter().map(|e| e.level).collect();
        assert_eq!(levels, [Level::High, Level::Low]);
        assert!(e[1].at.duration_since(e[0].at) >= Duration::from_millis(5));
        e.clear();
        assert!(!b
            .wait_inputs(Duration::from_millis(5), &mut e)
            .expect("wait"));
        assert!(e.is_empty());
    }

    #[test]
    fn the_edge_queue_is_bounded() {
        let b = SimBank::new();
        b.claim_input(4, Pull::Up, Duration::ZERO).expect("claim");
        for i in 0..(EDGES + 10) {
            b.set_input(4, Level::from_bool(i % 2 == 1));
        }
        let mut e = Vec::new();
        assert!(b.wait_inputs(Duration::ZERO, &mut e).expect("wait"));
        assert_eq!(e.len(), EDGES);
        assert_eq!(e.last().map(|e| e.level), b.read(4).ok(), "newest kept");
    }

    #[test]
    fn pulse_appliance_toggles_on_release_unless_broken() {
        let b = SimBank::new();
        b.claim_output(2, Level::High).expect("claim");
        b.wire(
            Appliance::Pulse {
                out: 2,
                out_active_low: true,
                sense: 3,
                sense_active_low: false,
            },
            true,
        );
        b.claim_input(3, Pull::Off, Duration::ZERO).expect("claim");
        assert_eq!(b.read(3).expect("read"), Level::Low);
        b.write(2, Level::Low).expect("press");
        assert_eq!(b.read(3).expect("read"), Level::Low, "acts on release");
        b.write(2, Level::High).expect("release");
        assert_eq!(b.read(3).expect("read"), Level::High);
        b.set_working(2, false);
        b.write(2, Level::Low).expect("press");
        b.write(2, Level::High).expect("release");
        assert_eq!(b.read(3).expect("read"), Level::High, "broken: unchanged");
    }

    #[test]
    fn level_appliance_follows() {
        let b = SimBank::new();
        b.claim_output(5, Level::Low).expect("claim");
        b.wire(
            Appliance::Level {
                out: 5,
                out_active_low: false,
                sense: 6,
                sense_active_low: true,
            },
            true,
        );
        b.claim_input(6, Pull::Up, Duration::ZERO).expect("claim");
        assert_eq!(b.read(6).expect("read"), Level::High);
        b.write(5, Level::High).expect("on");
        assert_eq!(b.read(6).expect("read"), Level::Low);
    }
}
