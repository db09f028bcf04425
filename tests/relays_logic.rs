//! The pure relay state machine, rule by rule, with an injected clock.

use std::time::Duration;

use pirouterd::relays::relay::{
    step, Action, ConfigError, Event, Outcome, Plan, Refusal, RelayState,
};
use pirouterd::relays::store::Saved;
use pirouterd::relays::{AtStart, Command, Drive, Now, RelayConfig, Sense, Source};
use pirouterd::sys::gpio::{Level, Pull};

const MIN: Duration = Duration::from_secs(60);
const T0: u64 = 1_700_000_000_000;

fn api() -> Source {
    Source::Api {
        client: "192.0.2.7".into(),
    }
}

fn porch() -> RelayConfig {
    RelayConfig {
        name: "porch-light".into(),
        pin: 5,
        active_low: true,
        drive: Drive::Level,
        sense: None,
        max_on: Some(60 * MIN),
        min_off: None,
        at_start: AtStart::Off,
        switch: None,
    }
}

fn fireplace() -> RelayConfig {
    RelayConfig {
        name: "fireplace".into(),
        pin: 2,
        active_low: true,
        drive: Drive::Pulse {
            width: Duration::from_millis(100),
        },
        sense: Some(Sense {
            pin: 3,
            active_low: false,
            pull: Pull::Down,
            delay: Duration::from_secs(1),
        }),
        max_on: Some(240 * MIN),
        min_off: Some(10 * MIN),
        at_start: AtStart::Off,
        switch: None,
    }
}

fn on(for_: Option<Duration>) -> Event {
    Event::Request {
        command: Command::On { for_ },
        source: api(),
    }
}

fn off() -> Event {
    Event::Request {
        command: Command::Off,
        source: api(),
    }
}

fn booted(cfg: &RelayConfig, now: Now) -> RelayState {
    step(
        cfg,
        &RelayState::initial(now),
        Event::Boot {
            saved: None,
            sensed: cfg.sense.map(|_| false),
        },
        now,
    )
    .expect("boot")
    .state
}

/// Runs a plan's confirmation with what the sense pin reads at each read-back.
fn confirm_with(cfg: &RelayConfig, mut plan: Plan, reads: &[bool], now: Now) -> (Plan, usize) {
    let mut pulses = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Pulse { .. }))
        .count();
    let mut reads = reads.iter();
    while plan.confirm.is_some() {
        let sensed = *reads.next().expect("a read-back was expected");
        plan = step(cfg, &plan.state, Event::Confirm { sensed }, now).expect("confirm");
        pulses += plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Pulse { .. }))
            .count();
    }
    assert!(reads.next().is_none(), "fewer read-backs than expected");
    (plan, pulses)
}

#[test]
fn level_relay_turns_on_with_active_low_pin_and_logs_the_source() {
    let cfg = porch();
    let now = Now::at(T0);
    let s = booted(&cfg, now);
    let p = step(&cfg, &s, on(None), now.plus(MIN)).expect("on");
    assert_eq!(
        p.actions,
        vec![Action::Set {
            pin: 5,
            level: Level::Low
        }]
    );
    assert!(p.state.on);
    assert_eq!(p.outcome, Outcome::Changed);
    let c = p.change.as_ref().expect("change");
    assert_eq!((c.from, c.to), (false, true));
    assert_eq!(c.source, api());
    assert_eq!(
        p.to_string(),
        "relay porch-light: set GPIO5 low; relay porch-light off -> on (api 192.0.2.7)"
    );
    let p = step(&cfg, &p.state, off(), now.plus(2 * MIN)).expect("off");
    assert_eq!(
        p.actions,
        vec![Action::Set {
            pin: 5,
            level: Level::High
        }]
    );
    assert!(!p.state.on);
}

#[test]
fn auto_off_fires_at_max_on_and_not_before() {
    let cfg = porch();
    let t = Now::at(T0);
    let s = step(&cfg, &booted(&cfg, t), on(None), t).expect("on").state;
    assert_eq!(s.auto_off_at_ms, Some(T0 + 3_600_000));
    let p = step(&cfg, &s, Event::Tick, t.plus(59 * MIN)).expect("tick");
    assert_eq!(p.outcome, Outcome::Unchanged);
    assert!(p.state.on);
    let p = step(&cfg, &s, Event::Tick, t.plus(60 * MIN)).expect("tick");
    assert!(!p.state.on);
    let c = p.change.expect("change");
    assert_eq!(c.source, Source::Timer);
    assert!(c.note.expect("note").contains("auto-off after 1h"));
}

#[test]
fn turning_on_again_restarts_the_timer() {
    let cfg = porch();
    let t = Now::at(T0);
    let s = step(&cfg, &booted(&cfg, t), on(None), t).expect("on").state;
    let p = step(&cfg, &s, on(None), t.plus(50 * MIN)).expect("again");
    assert_eq!(p.outcome, Outcome::TimerRestarted);
    assert_eq!(p.state.auto_off_at_ms, Some(T0 + 110 * 60_000));
    assert_eq!(p.state.since_ms, T0, "still on since the first turn-on");
    // The old deadline passes without turning it off ...
    let q = step(&cfg, &p.state, Event::Tick, t.plus(61 * MIN)).expect("tick");
    assert!(q.state.on);
    // ... the new one does.
    let q = step(&cfg, &p.state, Event::Tick, t.plus(110 * MIN)).expect("tick");
    assert!(!q.state.on);
}

#[test]
fn for_shortens_the_on_time_but_never_past_max_on() {
    let cfg = porch();
    let t = Now::at(T0);
    let s = booted(&cfg, t);
    let p = step(&cfg, &s, on(Some(45 * MIN)), t).expect("on for 45m");
    assert_eq!(p.state.auto_off_at_ms, Some(T0 + 45 * 60_000));
    let err = step(&cfg, &s, on(Some(61 * MIN)), t).expect_err("too long");
    assert_eq!(
        err,
        Refusal::ForTooLong {
            relay: "porch-light".into(),
            for_: 61 * MIN,
            max_on: 60 * MIN
        }
    );
    assert!(err.to_string().contains("longer than its max_on 1h"));
    assert!(matches!(
        step(&cfg, &s, on(Some(Duration::ZERO)), t),
        Err(Refusal::ZeroFor { .. })
    ));
}

#[test]
fn a_backwards_ntp_jump_never_extends_the_on_time() {
    let cfg = porch();
    let t = Now::at(T0);
    let s = step(&cfg, &booted(&cfg, t), on(None), t).expect("on").state;
    // Wall clock jumps back a day; monotonic time keeps going.
    let later = Now {
        wall_ms: T0 - 86_400_000,
        mono_ms: T0 + 3_600_000,
    };
    let p = step(&cfg, &s, Event::Tick, later).expect("tick");
    assert!(!p.state.on, "monotonic deadline fired");
}

#[test]
fn min_off_refuses_with_the_time_left_and_then_allows() {
    let cfg = RelayConfig {
        min_off: Some(10 * MIN),
        ..porch()
    };
    let t = Now::at(T0);
    let s = step(&cfg, &booted(&cfg, t), on(None), t).expect("on").state;
    let s = step(&cfg, &s, off(), t.plus(MIN)).expect("off").state;
    let err = step(&cfg, &s, on(None), t.plus(5 * MIN)).expect_err("refused");
    assert_eq!(
        err,
        Refusal::MinOff {
            relay: "porch-light".into(),
            min_off: 10 * MIN,
            remaining: 6 * MIN
        }
    );
    assert_eq!(
        err.to_string(),
        "porch-light was turned off less than min_off (10m) ago: it can be turned on again in 6m"
    );
    // A toggle that would turn it on is refused the same way; turning off is never refused.
    assert!(step(
        &cfg,
        &s,
        Event::Request {
            command: Command::Toggle { for_: None },
            source: Source::Switch
        },
        t.plus(5 * MIN)
    )
    .is_err());
    assert!(step(&cfg, &s, off(), t.plus(5 * MIN)).is_ok());
    let p = step(&cfg, &s, on(None), t.plus(11 * MIN)).expect("allowed");
    assert!(p.state.on);
}

#[test]
fn min_off_survives_a_restart_through_the_saved_turn_off_time() {
    let cfg = RelayConfig {
        min_off: Some(10 * MIN),
        ..porch()
    };
    let saved = Saved {
        on: false,
        since_ms: T0,
        auto_off_at_ms: None,
        off_since_ms: Some(T0),
        source: "api".into(),
        client: None,
    };
    // New process: monotonic time starts at 0.
    let t2 = Now {
        wall_ms: T0 + 3 * 60_000,
        mono_ms: 0,
    };
    let s = step(
        &cfg,
        &RelayState::initial(t2),
        Event::Boot {
            saved: Some(saved),
            sensed: None,
        },
        t2,
    )
    .expect("boot")
    .state;
    let err = step(&cfg, &s, on(None), t2).expect_err("refused");
    assert!(matches!(err, Refusal::MinOff { remaining, .. } if remaining == 7 * MIN));
}

#[test]
fn toggle_flips_and_takes_for() {
    let cfg = porch();
    let t = Now::at(T0);
    let tog = |f| Event::Request {
        command: Command::Toggle { for_: f },
        source: Source::Switch,
    };
    let s = step(&cfg, &booted(&cfg, t), tog(Some(5 * MIN)), t)
        .expect("toggle")
        .state;
    assert!(s.on);
    assert_eq!(s.auto_off_at_ms, Some(T0 + 300_000));
    assert_eq!(s.source, Source::Switch);
    let s = step(&cfg, &s, tog(None), t.plus(MIN))
        .expect("toggle")
        .state;
    assert!(!s.on);
}

#[test]
fn off_when_off_changes_nothing_and_logs_nothing() {
    let cfg = porch();
    let t = Now::at(T0);
    let s = booted(&cfg, t);
    let p = step(&cfg, &s, off(), t).expect("off");
    assert_eq!(p.outcome, Outcome::Unchanged);
    assert!(p.change.is_none());
    assert_eq!(p.state, s);
}

#[test]
fn pulse_turns_on_only_after_the_sense_pin_confirms() {
    let cfg = fireplace();
    let t = Now::at(T0);
    let s = booted(&cfg, t);
    let p = step(&cfg, &s, on(None), t.plus(MIN)).expect("on");
    assert_eq!(p.outcome, Outcome::Pending);
    assert_eq!(
        p.actions,
        vec![Action::Pulse {
            pin: 2,
            active: Level::Low,
            idle: Level::High,
            width: Duration::from_millis(100)
        }]
    );
    assert!(!p.state.on, "not on until confirmed");
    assert_eq!(
        p.to_string(),
        "relay fireplace: pulse GPIO2 low for 100ms, read sense GPIO3 after 1s"
    );
    let (p, pulses) = confirm_with(&cfg, p, &[true], t.plus(MIN));
    assert_eq!(pulses, 1);
    assert_eq!(p.outcome, Outcome::Changed);
    assert!(p.state.on);
    assert_eq!(p.state.source, api());
    assert!(p.state.auto_off_at_ms.is_some());
}

#[test]
fn pulse_retries_once_then_succeeds() {
    let cfg = fireplace();
    let t = Now::at(T0);
    let p = step(&cfg, &booted(&cfg, t), on(None), t).expect("on");
    let (p, pulses) = confirm_with(&cfg, p, &[false, true], t);
    assert_eq!(pulses, 2);
    assert!(p.state.on);
    assert!(p
        .change
        .expect("change")
        .note
        .expect("note")
        .contains("second pulse"));
}

#[test]
fn pulse_failure_is_reported_after_two_pulses_and_state_follows_the_sense_pin() {
    let cfg = fireplace();
    let t = Now::at(T0);
    let p = step(&cfg, &booted(&cfg, t), on(None), t).expect("on");
    let (p, pulses) = confirm_with(&cfg, p, &[false, false], t);
    assert_eq!(pulses, 2, "one retry, no more");
    let Outcome::Failed(msg) = &p.outcome else {
        panic!("expected failure, got {:?}", p.outcome)
    };
    assert!(msg.contains("fireplace did not turn on"), "{msg}");
    assert!(
        msg.contains("GPIO3 still reads off after 2 pulses"),
        "{msg}"
    );
    assert!(!p.state.on);
    assert_eq!(p.state.fault.as_deref(), Some(msg.as_str()));
    assert!(p.change.expect("change").failed);
}

#[test]
fn pulse_never_presses_when_the_appliance_is_already_there() {
    let cfg = fireplace();
    let t = Now::at(T0);
    let (s, _) = confirm_with(
        &cfg,
        step(&cfg, &booted(&cfg, t), on(None), t).expect("on"),
        &[true],
        t,
    );
    // On again: timer restart only, no pulse (a pulse would turn it off).
    let p = step(&cfg, &s.state, on(None), t.plus(MIN)).expect("again");
    assert!(p.actions.iter().all(|a| !matches!(a, Action::Pulse { .. })));
    assert!(p.confirm.is_none());
    assert!(p.state.on);
}

#[test]
fn appliance_switched_at_the_wall_is_followed_and_gets_its_auto_off() {
    let cfg = fireplace();
    let t = Now::at(T0);
    let s = booted(&cfg, t);
    let p = step(&cfg, &s, Event::Sensed { on: true }, t.plus(MIN)).expect("sensed");
    assert!(p.state.on);
    assert_eq!(p.state.source, Source::Sense);
    assert_eq!(p.state.auto_off_at_ms, Some(T0 + 60_000 + 240 * 60_000));
    // And the timer turns it off with a pulse.
    let p = step(&cfg, &p.state, Event::Tick, t.plus(241 * MIN)).expect("tick");
    assert!(matches!(p.actions[..], [Action::Pulse { .. }]));
    let (p, _) = confirm_with(&cfg, p, &[false], t.plus(241 * MIN));
    assert!(!p.state.on);
    assert_eq!(p.state.source, Source::Timer);
}

#[test]
fn at_start_off_turns_off_an_appliance_found_on() {
    let cfg = fireplace();
    let t = Now::at(T0);
    let p = step(
        &cfg,
        &RelayState::initial(t),
        Event::Boot {
            saved: None,
            sensed: Some(true),
        },
        t,
    )
    .expect("boot");
    assert!(matches!(p.actions[..], [Action::Pulse { .. }]));
    let (p, _) = confirm_with(&cfg, p, &[false], t);
    assert!(!p.state.on);
    let c = p.change.expect("change");
    assert_eq!(c.source, Source::Boot);
    assert_eq!((c.from, c.to), (true, false));
}

fn restore(cfg: &RelayConfig, saved: Option<Saved>, now: Now) -> Plan {
    let cfg = RelayConfig {
        at_start: AtStart::Restore,
        ..cfg.clone()
    };
    step(
        &cfg,
        &RelayState::initial(now),
        Event::Boot {
            saved,
            sensed: None,
        },
        now,
    )
    .expect("boot")
}

fn saved_on(since: u64, deadline: Option<u64>) -> Saved {
    Saved {
        on: true,
        since_ms: since,
        auto_off_at_ms: deadline,
        off_since_ms: None,
        source: "api".into(),
        client: Some("192.0.2.7".into()),
    }
}

#[test]
fn restore_brings_back_on_with_the_same_absolute_deadline() {
    let cfg = porch();
    let deadline = T0 + 60 * 60_000;
    // Restarted 20 minutes in, with a fresh monotonic clock.
    let now = Now {
        wall_ms: T0 + 20 * 60_000,
        mono_ms: 0,
    };
    let p = restore(&cfg, Some(saved_on(T0, Some(deadline))), now);
    assert!(p.state.on);
    assert_eq!(p.state.auto_off_at_ms, Some(deadline), "not extended");
    assert_eq!(p.state.auto_off_mono, Some(40 * 60_000));
    assert_eq!(
        p.actions,
        vec![Action::Set {
            pin: 5,
            level: Level::Low
        }]
    );
    let c = p.change.expect("change");
    assert_eq!(c.source, Source::Boot);
    assert!(c.note.expect("note").contains("auto-off in 40m"));
}

#[test]
fn restore_stays_off_when_the_deadline_passed_or_the_clock_is_wrong() {
    let cfg = porch();
    let p = restore(
        &cfg,
        Some(saved_on(T0, Some(T0 + 60_000))),
        Now::at(T0 + 120_000),
    );
    assert!(!p.state.on);
    assert!(p
        .change
        .expect("change")
        .note
        .expect("note")
        .contains("deadline passed while pirouterd was down"));
    // Clock before the saved turn-on (no RTC, NTP not synced yet).
    let p = restore(&cfg, Some(saved_on(T0, Some(T0 + 60_000))), Now::at(T0 - 1));
    assert!(!p.state.on);
    // Nothing saved, or saved off.
    assert!(!restore(&cfg, None, Now::at(T0)).state.on);
    let mut off = saved_on(T0, None);
    off.on = false;
    assert!(!restore(&cfg, Some(off), Now::at(T0)).state.on);
}

#[test]
fn restore_and_at_start_on_respect_min_off() {
    let cfg = RelayConfig {
        min_off: Some(10 * MIN),
        ..porch()
    };
    let mut s = saved_on(T0, None);
    s.off_since_ms = Some(T0 + 60_000); // driven off at shutdown
    let p = restore(&cfg, Some(s), Now::at(T0 + 2 * 60_000));
    assert!(!p.state.on);
    assert!(p
        .change
        .expect("change")
        .note
        .expect("note")
        .contains("min_off (10m) refuses a turn-on for another 9m"));
}

#[test]
fn shutdown_drives_safe() {
    let cfg = porch();
    let t = Now::at(T0);
    let s = step(&cfg, &booted(&cfg, t), on(None), t).expect("on").state;
    let p = step(&cfg, &s, Event::Shutdown, t).expect("shutdown");
    assert_eq!(
        p.actions,
        vec![Action::Set {
            pin: 5,
            level: Level::High
        }]
    );
    assert!(!p.state.on);
    assert_eq!(p.change.expect("change").source, Source::Shutdown);
    let saved = Saved::at_shutdown(&s, T0 + 5);
    assert!(saved.on, "the wish survives for restore");
    assert_eq!(
        saved.off_since_ms,
        Some(T0 + 5),
        "the turn-off counts for min_off"
    );
}

#[test]
fn conflicting_requests_applied_in_sequence_end_consistent() {
    // 50 requests, applied one after another as the controller serialises them: the final
    // state is the last applied one, and every real change is logged exactly once.
    let cfg = porch();
    let t = Now::at(T0);
    let mut s = booted(&cfg, t);
    let mut changes = Vec::new();
    for i in 0..50u64 {
        let command = match i % 3 {
            0 => Command::On { for_: None },
            1 => Command::Off,
            _ => Command::Toggle { for_: None },
        };
        let p = step(
            &cfg,
            &s,
            Event::Request {
                command,
                source: api(),
            },
            t.plus(Duration::from_millis(i)),
        )
        .expect("step");
        if let Some(c) = &p.change {
            if c.from != c.to {
                changes.push(c.clone());
            }
        }
        s = p.state;
    }
    for w in changes.windows(2) {
        assert_eq!(
            w[0].to, w[1].from,
            "each change starts where the last ended"
        );
    }
    assert_eq!(changes.last().map(|c| c.to), Some(s.on));
}

#[test]
fn config_rules() {
    let mut c = fireplace();
    c.sense = None;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::PulseWithoutSense { .. })
    ));
    let mut c = fireplace();
    c.drive = Drive::Pulse {
        width: Duration::from_secs(11),
    };
    assert!(matches!(c.validate(), Err(ConfigError::PulseWidth { .. })));
    let mut c = porch();
    c.name = "porch light".into();
    assert!(matches!(c.validate(), Err(ConfigError::Name(_))));
    let mut c = porch();
    c.max_on = Some(Duration::ZERO);
    assert!(matches!(c.validate(), Err(ConfigError::Zero { .. })));
    assert!(fireplace().validate().is_ok());
}
