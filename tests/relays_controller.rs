//! The controller on simulated pins: what reaches the pins, in what order, and what is
//! reported when the appliance does not follow.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pirouterd::relays::controller::{ControllerError, RelayError};
use pirouterd::relays::led::{LedConfig, Signal, Signals};
use pirouterd::relays::relay::Outcome;
use pirouterd::relays::switch::{SwitchConfig, SwitchMode};
use pirouterd::relays::{AtStart, Command, Controller, Drive, RelayConfig, Sense, Source};
use pirouterd::sys::clock::{Clock, SystemClock};
use pirouterd::sys::gpio::sim::{Appliance, SimBank};
use pirouterd::sys::gpio::{BackendKind, Edge, GpioError, Level, PinBank, Pull};

fn api() -> Source {
    Source::Api {
        client: "192.0.2.7".into(),
    }
}

fn fireplace() -> RelayConfig {
    RelayConfig {
        name: "fireplace".into(),
        pin: 2,
        active_low: true,
        drive: Drive::Pulse {
            width: Duration::from_millis(10),
        },
        sense: Some(Sense {
            pin: 3,
            active_low: false,
            pull: Pull::Down,
            delay: Duration::from_millis(20),
        }),
        max_on: Some(Duration::from_secs(4 * 3600)),
        min_off: None,
        at_start: AtStart::Off,
        switch: Some(SwitchConfig {
            pin: 17,
            pull: Pull::Up,
            active_low: true,
            debounce: Duration::from_millis(40),
            mode: SwitchMode::Toggle,
        }),
    }
}

fn porch() -> RelayConfig {
    RelayConfig {
        name: "porch-light".into(),
        pin: 5,
        active_low: true,
        drive: Drive::Level,
        sense: None,
        max_on: None,
        min_off: None,
        at_start: AtStart::Off,
        switch: None,
    }
}

fn wire(sim: &SimBank, working: bool) {
    sim.wire(
        Appliance::Pulse {
            out: 2,
            out_active_low: true,
            sense: 3,
            sense_active_low: false,
        },
        working,
    );
}

fn controller(sim: Arc<SimBank>, relays: Vec<RelayConfig>, state: Option<PathBuf>) -> Controller {
    Controller::new(
        relays,
        vec![],
        sim,
        Arc::new(SystemClock),
        state,
        Arc::new(Signals::new()),
        None,
    )
    .expect("controller")
}

fn pulses(history: &[Level]) -> usize {
    history.iter().filter(|l| **l == Level::Low).count()
}

#[test]
fn claiming_never_glitches_an_active_low_relay() {
    let sim = Arc::new(SimBank::new());
    let c = controller(sim.clone(), vec![porch()], None);
    c.boot();
    assert!(
        sim.history(5).iter().all(|l| *l == Level::High),
        "the relay pin was never low: {:?}",
        sim.history(5)
    );
    c.request("porch-light", Command::On { for_: None }, api())
        .expect("on");
    assert_eq!(sim.level(5), Some(Level::Low));
}

#[test]
fn pulse_failure_is_reported_after_exactly_two_pulses() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, false); // the appliance ignores the relay
    let c = controller(sim.clone(), vec![fireplace()], None);
    c.boot();
    let err = c
        .request("fireplace", Command::On { for_: None }, api())
        .expect_err("must fail");
    let RelayError::Failed(msg) = &err else {
        panic!("expected Failed, got {err:?}")
    };
    assert!(msg.contains("still reads off after 2 pulses"), "{msg}");
    assert_eq!(pulses(&sim.history(2)), 2, "{:?}", sim.history(2));
    assert_eq!(sim.level(2), Some(Level::High), "button released");
    let v = &c.views()[0];
    assert!(!v.on);
    assert_eq!(v.fault.as_deref(), Some(msg.as_str()));
    let ev = c.events(0);
    let last = &ev.last().expect("logged").change;
    assert!(last.failed);

    // Mended: the next request works and clears the fault.
    sim.set_working(2, true);
    let ok = c
        .request("fireplace", Command::On { for_: None }, api())
        .expect("on");
    assert_eq!(ok.outcome, Outcome::Changed);
    assert!(ok.view.on);
    assert!(ok.view.fault.is_none());
}

#[test]
fn a_pulse_that_misses_once_is_retried_and_confirmed() {
    // An appliance that ignores the first press only: the sim's appliance is broken until the
    // first pulse has been sent, then mended by a helper thread watching the pin.
    let sim = Arc::new(SimBank::new());
    wire(&sim, false);
    let c = Arc::new(controller(sim.clone(), vec![fireplace()], None));
    c.boot();
    let s2 = sim.clone();
    let mender = std::thread::spawn(move || {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if pulses(&s2.history(2)) >= 1 && s2.level(2) == Some(Level::High) {
                s2.set_working(2, true);
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let ok = c
        .request("fireplace", Command::On { for_: None }, api())
        .expect("confirmed on the second pulse");
    mender.join().expect("join");
    assert!(ok.view.on);
    assert_eq!(pulses(&sim.history(2)), 2);
    assert!(ok
        .change
        .and_then(|c| c.note)
        .unwrap_or_default()
        .contains("second pulse"));
}

#[test]
fn an_appliance_found_on_is_turned_off_by_drive_all_safe() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, true);
    sim.set_input(3, Level::High); // lit at the wall before pirouterd started
    let c = controller(sim.clone(), vec![fireplace()], None);
    let r = c.drive_all_safe();
    assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
    assert_eq!(sim.level(3), Some(Level::Low), "appliance off");
    assert_eq!(pulses(&sim.history(2)), 1);
}

/// The controller's service loop on its own thread, stopped and joined when dropped (also
/// when an assertion fails first).
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn run_loop(c: &Arc<Controller>, each_pass: impl FnMut(&Controller) + Send + 'static) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let (c, stop2) = (c.clone(), stop.clone());
    let thread = Some(std::thread::spawn(move || c.run(&stop2, each_pass)));
    Running { stop, thread }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn switch_bounces_are_ignored_and_a_press_toggles() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, true);
    let c = Arc::new(controller(sim.clone(), vec![fireplace()], None));
    c.boot();
    let _running = run_loop(&c, |_| {});

    // Contact bounce: 5 short blips well under the 40ms debounce.
    for _ in 0..5 {
        sim.set_input(17, Level::Low);
        std::thread::sleep(Duration::from_millis(3));
        sim.set_input(17, Level::High);
        std::thread::sleep(Duration::from_millis(3));
    }
    std::thread::sleep(Duration::from_millis(150));
    assert!(!c.views()[0].on, "bounces did nothing");
    assert!(c
        .events(0)
        .iter()
        .all(|l| l.change.source != Source::Switch));

    // A real press.
    sim.press(17, Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !c.views()[0].on && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let v = &c.views()[0];
    assert!(v.on);
    assert_eq!(v.source, "switch");
    assert_eq!(sim.level(3), Some(Level::High));
}

/// Presses are judged by their edge times: one made before the service loop first runs, and
/// one that comes and goes while the loop is busy, both count; a bounce seen late does not.
#[test]
fn presses_count_by_edge_time_while_the_loop_is_busy() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, true);
    let c = Arc::new(controller(sim.clone(), vec![fireplace()], None));
    c.boot();
    // Pressed and released before the loop exists.
    sim.press(17, Duration::from_millis(60));
    let passes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let passes2 = passes.clone();
    // Every pass of the loop takes 400 ms: far longer than any press below.
    let running = run_loop(&c, move |_| {
        passes2.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(400));
    });
    let wait_on = |want: bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.views()[0].on != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        c.views()[0].on == want
    };
    assert!(wait_on(true), "the press before the loop started was lost");
    assert_eq!(c.views()[0].source, "switch");
    // Wait until the loop is inside a pass, then press and release within it.
    let p = passes.load(Ordering::SeqCst);
    while passes.load(Ordering::SeqCst) == p {
        std::thread::sleep(Duration::from_millis(1));
    }
    sim.press(17, Duration::from_millis(60));
    assert!(wait_on(false), "a press inside one busy pass was lost");
    // A 10 ms blip (debounce is 40 ms) inside a busy pass is still a bounce.
    let p = passes.load(Ordering::SeqCst);
    while passes.load(Ordering::SeqCst) == p {
        std::thread::sleep(Duration::from_millis(1));
    }
    sim.press(17, Duration::from_millis(10));
    let p = passes.load(Ordering::SeqCst);
    while passes.load(Ordering::SeqCst) < p + 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!c.views()[0].on, "a bounce toggled the fireplace");
    drop(running);
    let switch_changes = c
        .events(0)
        .iter()
        .filter(|l| l.change.source == Source::Switch)
        .count();
    assert_eq!(switch_changes, 2);
}

#[test]
fn an_appliance_switched_at_the_wall_is_followed_with_its_auto_off() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, true);
    let c = Arc::new(controller(sim.clone(), vec![fireplace()], None));
    c.boot();
    let _running = run_loop(&c, |_| {});
    // Someone uses the fireplace's own switch: the sense pin goes high.
    sim.set_input(3, Level::High);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !c.views()[0].on && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let v = &c.views()[0];
    assert!(v.on);
    assert_eq!(v.source, "sense");
    assert!(v.auto_off_at_ms.is_some(), "max_on applies to it too");
    assert_eq!(
        pulses(&sim.history(2)),
        0,
        "pirouterd did not press anything"
    );
}

#[test]
fn leds_follow_their_signals() {
    let sim = Arc::new(SimBank::new());
    let signals = Arc::new(Signals::new());
    let c = Controller::new(
        vec![porch()],
        vec![
            LedConfig {
                name: "ra".into(),
                pin: 22,
                active_low: false,
                signal: Signal::RaBlock,
            },
            LedConfig {
                name: "any".into(),
                pin: 23,
                active_low: true,
                signal: Signal::AnyRelayOn,
            },
        ],
        sim.clone(),
        Arc::new(SystemClock),
        None,
        signals.clone(),
        None,
    )
    .expect("controller");
    c.boot();
    c.update_leds();
    assert_eq!(sim.level(22), Some(Level::Low));
    assert_eq!(sim.level(23), Some(Level::High), "active-low LED dark");
    signals.set_ra_block(Some(true));
    c.request("porch-light", Command::On { for_: None }, api())
        .expect("on");
    c.update_leds();
    assert_eq!(sim.level(22), Some(Level::High));
    assert_eq!(sim.level(23), Some(Level::Low));
    c.drive_all_safe();
    assert_eq!(sim.level(22), Some(Level::Low), "LEDs dark on the way out");
}

/// A bank that is not the simulator (for refusals that depend on the backend).
struct NotSim(SimBank);

impl PinBank for NotSim {
    fn kind(&self) -> BackendKind {
        BackendKind::Cdev
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
        self.0.wait_inputs(t, edges)
    }
}

#[test]
fn pressing_a_switch_from_software_is_refused_on_real_backends() {
    let c = Controller::new(
        vec![fireplace()],
        vec![],
        Arc::new(NotSim(SimBank::new())),
        Arc::new(SystemClock),
        None,
        Arc::new(Signals::new()),
        None,
    )
    .expect("controller");
    let err = c.press_switch("fireplace").expect_err("refused");
    assert!(
        matches!(err, RelayError::NotSim(BackendKind::Cdev)),
        "{err:?}"
    );
}

#[test]
fn config_mistakes_are_refused_before_any_pin_is_touched() {
    let sim = Arc::new(SimBank::new());
    let mut twice = porch();
    twice.name = "other".into();
    let err = Controller::new(
        vec![porch(), twice],
        vec![],
        sim.clone(),
        Arc::new(SystemClock),
        None,
        Arc::new(Signals::new()),
        None,
    )
    .err()
    .expect("refused");
    assert!(
        matches!(err, ControllerError::PinTwice { pin: 5, .. }),
        "{err}"
    );
    assert!(sim.pins().is_empty(), "nothing claimed");
}

#[test]
fn an_unsaved_change_is_reported() {
    let sim = Arc::new(SimBank::new());
    let c = controller(
        sim,
        vec![porch()],
        Some(PathBuf::from("/nonexistent-pirouterd-dir/relays.json")),
    );
    let err = c
        .request("porch-light", Command::On { for_: None }, api())
        .expect_err("cannot save");
    assert!(matches!(err, RelayError::Persist { .. }), "{err:?}");
}

/// A clock the test moves by hand.
struct ManualClock {
    base: Instant,
    offset_ms: Mutex<u64>,
    wall0: u64,
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.wall0 + *self.offset_ms.lock().expect("lock")
    }
    fn monotonic(&self) -> Instant {
        self.base + Duration::from_millis(*self.offset_ms.lock().expect("lock"))
    }
}

#[test]
fn auto_off_runs_on_the_injected_clock_and_restore_keeps_the_deadline() {
    let dir = std::env::temp_dir().join(format!("pr-relays-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let state = dir.join("relays.json");
    let _ = std::fs::remove_file(&state);
    let clock = Arc::new(ManualClock {
        base: Instant::now(),
        offset_ms: Mutex::new(0),
        wall0: 1_700_000_000_000,
    });
    let cfg = RelayConfig {
        max_on: Some(Duration::from_secs(3600)),
        at_start: AtStart::Restore,
        ..porch()
    };
    let sim = Arc::new(SimBank::new());
    let c = Controller::new(
        vec![cfg.clone()],
        vec![],
        sim.clone(),
        clock.clone(),
        Some(state.clone()),
        Arc::new(Signals::new()),
        None,
    )
    .expect("controller");
    c.boot();
    c.request("porch-light", Command::On { for_: None }, api())
        .expect("on");
    let deadline = c.views()[0].auto_off_at_ms.expect("deadline");
    assert_eq!(deadline, 1_700_000_000_000 + 3_600_000);

    // 20 minutes later pirouterd restarts.
    *clock.offset_ms.lock().expect("lock") = 20 * 60_000;
    c.drive_all_safe();
    drop(c);
    let sim2 = Arc::new(SimBank::new());
    let c2 = Controller::new(
        vec![cfg],
        vec![],
        sim2.clone(),
        clock.clone(),
        Some(state.clone()),
        Arc::new(Signals::new()),
        None,
    )
    .expect("controller");
    c2.boot();
    let v = &c2.views()[0];
    assert!(v.on, "restored");
    assert_eq!(
        v.auto_off_at_ms,
        Some(deadline),
        "not extended by the restart"
    );
    assert_eq!(sim2.level(5), Some(Level::Low));

    // Just before the deadline nothing happens; at it, the timer turns it off.
    *clock.offset_ms.lock().expect("lock") = 60 * 60_000 - 1;
    c2.tick();
    assert!(c2.views()[0].on);
    *clock.offset_ms.lock().expect("lock") = 60 * 60_000;
    c2.tick();
    let v = &c2.views()[0];
    assert!(!v.on);
    assert_eq!(v.source, "timer");
    assert_eq!(sim2.level(5), Some(Level::High));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn readers_never_wait_for_a_pulse_and_see_it_under_way() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, true);
    let mut cfg = fireplace();
    if let Some(s) = cfg.sense.as_mut() {
        s.delay = Duration::from_millis(2000);
    }
    let c = Arc::new(controller(sim.clone(), vec![cfg], None));
    c.boot();
    let c2 = c.clone();
    let t = std::thread::spawn(move || c2.request("fireplace", Command::On { for_: None }, api()));
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let v = c.views().remove(0);
    // Waiting for the pulse would take ~1.9 s more; 1 s leaves room for a loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "views() waited {:?} for the pulse",
        start.elapsed()
    );
    assert!(!v.on, "not on until confirmed");
    assert_eq!(v.changing_to, Some(true));
    t.join().expect("join").expect("on");
    let v = c.views().remove(0);
    assert!(v.on);
    assert_eq!(v.changing_to, None);
}

#[test]
fn a_press_during_a_slow_pulse_is_queued_not_lost() {
    let sim = Arc::new(SimBank::new());
    wire(&sim, true);
    let mut cfg = fireplace();
    if let Some(s) = cfg.sense.as_mut() {
        s.delay = Duration::from_millis(300);
    }
    let c = Arc::new(controller(sim.clone(), vec![cfg], None));
    c.boot();
    let _running = run_loop(&c, |_| {});
    std::thread::sleep(Duration::from_millis(50)); // the loop reads the switch's rest level
    sim.press(17, Duration::from_millis(80)); // starts turning on (300 ms read-back)
                                              // Released for longer than the debounce (a shorter release is contact bounce).
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        c.views()[0].changing_to,
        Some(true),
        "first press still under way"
    );
    sim.press(17, Duration::from_millis(80)); // pressed while that is under way
    let deadline = Instant::now() + Duration::from_secs(5);
    let switched = || {
        c.events(0)
            .iter()
            .filter(|l| l.change.source == Source::Switch && l.change.from != l.change.to)
            .count()
    };
    while switched() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(switched(), 2, "{:?}", c.events(0));
    assert!(!c.views()[0].on, "on, then off again");
    assert_eq!(sim.level(3), Some(Level::Low));
}

#[test]
fn a_switch_press_refused_by_min_off_is_in_the_event_log() {
    let sim = Arc::new(SimBank::new());
    let cfg = RelayConfig {
        min_off: Some(Duration::from_secs(600)),
        switch: Some(SwitchConfig {
            pin: 17,
            pull: Pull::Up,
            active_low: true,
            debounce: Duration::from_millis(20),
            mode: SwitchMode::Toggle,
        }),
        ..porch()
    };
    let c = Arc::new(controller(sim.clone(), vec![cfg], None));
    c.boot();
    c.request("porch-light", Command::On { for_: None }, api())
        .expect("on");
    c.request("porch-light", Command::Off, api()).expect("off");
    let _running = run_loop(&c, |_| {});
    std::thread::sleep(Duration::from_millis(50));
    sim.press(17, Duration::from_millis(60));
    let deadline = Instant::now() + Duration::from_secs(3);
    let refused = || {
        c.events(0).into_iter().find(|l| {
            l.change.source == Source::Switch && l.change.failed && l.change.from == l.change.to
        })
    };
    while refused().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = refused().expect("refusal logged");
    let note = r.change.note.expect("note");
    assert!(note.contains("switch press refused"), "{note}");
    assert!(note.contains("min_off (10m)"), "{note}");
    assert!(!c.views()[0].on);
    assert_eq!(sim.level(5), Some(Level::High));
}
