//! Relay costs: the pure step, a change through the controller (with and without the fsync'd
//! state file), 50 concurrent requests on one relay (serialised), and how often the service
//! loop wakes when nothing happens. Run: `cargo bench --bench relays`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pirouterd::relays::led::{LedConfig, Signal, Signals};
use pirouterd::relays::relay::{step, Event, RelayState};
use pirouterd::relays::switch::{SwitchConfig, SwitchMode};
use pirouterd::relays::{AtStart, Command, Controller, Drive, Now, RelayConfig, Source};
use pirouterd::sys::clock::SystemClock;
use pirouterd::sys::gpio::sim::SimBank;
use pirouterd::sys::gpio::{BackendKind, Edge, GpioError, Level, PinBank, Pull};

fn porch(switch: bool) -> RelayConfig {
    RelayConfig {
        name: "porch-light".into(),
        pin: 5,
        active_low: true,
        drive: Drive::Level,
        sense: None,
        max_on: Some(Duration::from_secs(3600)),
        min_off: None,
        at_start: AtStart::Off,
        switch: switch.then_some(SwitchConfig {
            pin: 17,
            pull: Pull::Up,
            active_low: true,
            debounce: Duration::from_millis(50),
            mode: SwitchMode::Toggle,
        }),
    }
}

/// Counts blocking `wait_inputs` calls: one per service-loop pass (each pass also drains edges
/// without waiting before it reads the switches; those are not wake-ups).
struct Counting(SimBank, AtomicU64);

impl PinBank for Counting {
    fn kind(&self) -> BackendKind {
        BackendKind::Sim
    }
    fn claim_output(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        self.0.claim_output(pin, level)
    }
    fn claim_input(&self, pin: u8, pull: Pull, d: Duration) -> Result<(), GpioError> {
        self.0.claim_input(pin, pull, d)
    }
    fn write(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        self.0.write(pin, level)
    }
    fn read(&self, pin: u8) -> Result<Level, GpioError> {
        self.0.read(pin)
    }
    fn wait_inputs(&self, t: Duration, edges: &mut Vec<Edge>) -> Result<bool, GpioError> {
        if !t.is_zero() {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
        self.0.wait_inputs(t, edges)
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn controller(
    bank: Arc<dyn PinBank>,
    leds: Vec<LedConfig>,
    state: Option<std::path::PathBuf>,
) -> Controller {
    let c = Controller::new(
        vec![porch(true)],
        leds,
        bank,
        Arc::new(SystemClock),
        state,
        Arc::new(Signals::new()),
        None,
    )
    .expect("controller");
    c.boot();
    c
}

fn main() {
    // 1. The pure step.
    let cfg = porch(false);
    let mut s = RelayState::initial(Now::at(0));
    let n = 1_000_000u64;
    let t = Instant::now();
    for i in 0..n {
        let command = if i % 2 == 0 {
            Command::On { for_: None }
        } else {
            Command::Off
        };
        let p = step(
            &cfg,
            &s,
            Event::Request {
                command,
                source: Source::Switch,
            },
            Now::at(i),
        )
        .expect("step");
        s = p.state;
    }
    let per = t.elapsed() / n as u32;
    println!("pure step (on/off alternating, {n} events): {per:?} per event");

    // 2. A change through the controller, with and without the state file.
    let dir = std::env::temp_dir().join(format!("pr-bench-relays-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (label, state) in [
        ("no state file", None),
        ("state file (fsync + rename)", Some(dir.join("relays.json"))),
    ] {
        let c = controller(Arc::new(SimBank::new()), vec![], state);
        let mut lat = Vec::new();
        for i in 0..400 {
            let cmd = if i % 2 == 0 {
                Command::On { for_: None }
            } else {
                Command::Off
            };
            let t = Instant::now();
            c.request("porch-light", cmd, Source::Switch)
                .expect("request");
            lat.push(t.elapsed());
        }
        println!(
            "controller change, {label}: median {:?}, p99 {:?} (400 changes)",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }

    // 3. 50 concurrent toggles on one relay: serialised, each sees the last one's state.
    let c = Arc::new(controller(
        Arc::new(SimBank::new()),
        vec![],
        Some(dir.join("relays.json")),
    ));
    let t = Instant::now();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                c.request(
                    "porch-light",
                    Command::Toggle { for_: None },
                    Source::Switch,
                )
                .expect("toggle")
            })
        })
        .collect();
    for th in threads {
        th.join().expect("join");
    }
    let changes = c
        .events(0)
        .iter()
        .filter(|l| l.change.from != l.change.to)
        .count();
    println!(
        "50 concurrent toggles: {:?} total, {changes} changes logged, final on = {}",
        t.elapsed(),
        c.views()[0].on
    );

    // 4. Idle service-loop wake-ups per second.
    for (label, leds) in [
        ("no LEDs", vec![]),
        (
            "heartbeat LED",
            vec![LedConfig {
                name: "hb".into(),
                pin: 23,
                active_low: false,
                signal: Signal::Heartbeat,
            }],
        ),
    ] {
        let bank = Arc::new(Counting(SimBank::new(), AtomicU64::new(0)));
        let c = Arc::new(controller(bank.clone(), leds, None));
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (c.clone(), stop.clone());
        let th = std::thread::spawn(move || c2.run(&s2, |_| {}));
        std::thread::sleep(Duration::from_millis(200));
        let before = bank.1.load(Ordering::Relaxed);
        let secs = 5;
        std::thread::sleep(Duration::from_secs(secs));
        let wakes = bank.1.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::SeqCst);
        th.join().expect("join");
        println!(
            "idle service loop, {label}: {:.1} wake-ups/s",
            wakes as f64 / secs as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
