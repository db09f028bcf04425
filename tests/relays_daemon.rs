//! Relays through the real binary on the simulated GPIO backend: HTTP changes, concurrency,
//! auto-off, restart and restore, SIGTERM, the simulated switch, `pirouterd relays off`.
mod common;

use common::{wait_for, Daemon, TempDir};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "relay-token-0123456789abcdef";

/// Relays for the tests: a pulse fireplace with a sense pin and a push button, a porch light
/// (level, active-low) with a maintained wall switch and restore, and a gas heater with
/// min_off.
const RELAYS: &str = r#"
[gpio]
backend = "sim"

[[relay]]
name = "fireplace"
pin = 2
active_low = true
drive = "pulse"
pulse = "20ms"
sense_pin = 3
sense_delay = "30ms"
max_on = "4h"
switch_pin = 17
switch_mode = "toggle"
switch_debounce = "20ms"

[[relay]]
name = "porch-light"
pin = 5
active_low = true
max_on = "1h"
at_start = "restore"
switch_pin = 27
switch_mode = "follow"
switch_debounce = "20ms"

[[relay]]
name = "heater"
pin = 6
min_off = "10m"

[[led]]
name = "any-on"
pin = 22
signal = "any_relay_on"
"#;

fn write_config(dir: &TempDir) -> String {
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\ntoken_file = \"{}\"\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n{RELAYS}",
            token.display(),
            dir.0.display()
        ),
    );
    cfg.to_str().expect("utf8").to_string()
}

fn start(cfg: &str) -> Daemon {
    Daemon::start(&["serve", "--config", cfg, "--listen", "127.0.0.1:0"])
}

fn post(d: &Daemon, path: &str, body: &str) -> (u16, Value) {
    let (s, _, b) = d.request("POST", path, Some(TOKEN), Some(body));
    let v = serde_json::from_slice(&b).unwrap_or(Value::Null);
    (s, v)
}

fn relay(d: &Daemon, name: &str) -> Value {
    d.get_json(&format!("/api/v1/relays/{name}"))
}

fn pin_level(d: &Daemon, pin: u64) -> String {
    let all = d.get_json("/api/v1/relays");
    all["sim_pins"]
        .as_array()
        .expect("sim_pins")
        .iter()
        .find(|p| p["pin"] == pin)
        .map(|p| p["level"].as_str().expect("level").to_string())
        .expect("pin listed")
}

fn relay_events(d: &Daemon, name: &str) -> Vec<Value> {
    d.get_json("/api/v1/events?limit=1000")["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "relay" && e["details"]["relay"] == name)
        .cloned()
        .collect()
}

fn metric(d: &Daemon, line_start: &str) -> f64 {
    let (s, body) = d.get("/metrics", None);
    assert_eq!(s, 200);
    let text = String::from_utf8(body).expect("utf8");
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in:\n{text}"))
}

fn saved(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("relays.json")).expect("state file");
    let v: Value = serde_json::from_str(&text).expect("json");
    v["relays"][name].clone()
}

#[test]
fn toggle_over_http_drives_the_pin_and_is_logged_with_its_client() {
    let dir = TempDir::new("relays-http");
    let d = start(&write_config(&dir));
    let all = d.get_json("/api/v1/relays");
    assert_eq!(all["backend"], "sim");
    assert_eq!(all["relays"].as_array().expect("relays").len(), 3);
    assert_eq!(pin_level(&d, 5), "high", "active-low relay starts released");

    // Changes need the token.
    let (s, _, _) = d.request(
        "POST",
        "/api/v1/relays/porch-light",
        None,
        Some(r#"{"on":true}"#),
    );
    assert_eq!(s, 401);
    assert_eq!(relay(&d, "porch-light")["on"], false);

    let (s, v) = post(&d, "/api/v1/relays/porch-light", r#"{"toggle":true}"#);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["outcome"], "changed");
    assert_eq!(v["relay"]["on"], true);
    assert_eq!(v["relay"]["source"], "api");
    assert_eq!(v["relay"]["client"], "127.0.0.1");
    assert_eq!(pin_level(&d, 5), "low");
    assert_eq!(metric(&d, "pirouterd_relay_on{relay=\"porch-light\"}"), 1.0);
    // Each relay's max_on, for the over-max alert in monitoring/pirouterd-rules.yml.
    assert_eq!(
        metric(&d, "pirouterd_relay_max_on_seconds{relay=\"porch-light\"}"),
        3600.0
    );
    assert_eq!(
        metric(&d, "pirouterd_relay_max_on_seconds{relay=\"fireplace\"}"),
        14400.0
    );
    // The LED bound to any_relay_on follows within a service-loop pass.
    assert!(
        wait_for(Duration::from_secs(10), || (pin_level(&d, 22) == "high")
            .then_some(()))
        .is_some()
    );

    let (s, v) = post(&d, "/api/v1/relays/porch-light", r#"{"toggle":true}"#);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["relay"]["on"], false);
    assert_eq!(pin_level(&d, 5), "high");
    assert_eq!(
        metric(
            &d,
            "pirouterd_relay_switch_total{relay=\"porch-light\",source=\"api\"}"
        ),
        2.0
    );
    let ev = relay_events(&d, "porch-light");
    let api: Vec<&Value> = ev
        .iter()
        .filter(|e| e["source"] == "api 127.0.0.1")
        .collect();
    assert_eq!(api.len(), 2, "{ev:?}");

    // Bad requests say what is wrong.
    for (body, code) in [
        (r#"{"on":false,"for":"5m"}"#, "bad_request"),
        (r#"{"toggle":false}"#, "bad_request"),
        (r#"{"on":true,"for":"5 minutes"}"#, "bad_for"),
        (r#"{"on":"yes"}"#, "bad_json"),
        (r#"{"onn":true}"#, "bad_json"),
    ] {
        let (s, v) = post(&d, "/api/v1/relays/porch-light", body);
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}");
    }
    let (s, v) = post(&d, "/api/v1/relays/nope", r#"{"on":true}"#);
    assert_eq!(s, 404, "{v}");
    // `for` longer than max_on is refused by a safety rule.
    let (s, v) = post(
        &d,
        "/api/v1/relays/porch-light",
        r#"{"on":true,"for":"2h"}"#,
    );
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "for_exceeds_max_on");

    // The relay metrics pass promtool (apt: prometheus).
    let (_, metrics) = d.get("/metrics", None);
    common::promtool_check_metrics(&String::from_utf8(metrics).expect("utf8"));
}

#[test]
fn pulse_relay_is_confirmed_by_its_sense_pin() {
    let dir = TempDir::new("relays-pulse");
    let d = start(&write_config(&dir));
    let (s, v) = post(&d, "/api/v1/relays/fireplace", r#"{"on":true,"for":"45m"}"#);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["relay"]["on"], true);
    assert_eq!(pin_level(&d, 3), "high", "the simulated appliance is on");
    assert_eq!(
        pin_level(&d, 2),
        "high",
        "the button is released after the pulse"
    );
    let since = v["relay"]["since"].as_u64().expect("since");
    let off_at = v["relay"]["auto_off_at"].as_u64().expect("auto_off_at");
    assert!((off_at - since).abs_diff(45 * 60_000) < 2_000, "{v}");
    // On again restarts the timer without a pulse (a pulse would turn it off).
    let (s, v) = post(&d, "/api/v1/relays/fireplace", r#"{"on":true}"#);
    assert_eq!(s, 200);
    assert_eq!(v["outcome"], "timer_restarted");
    assert_eq!(pin_level(&d, 3), "high");
    let (s, v) = post(&d, "/api/v1/relays/fireplace", r#"{"on":false}"#);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["relay"]["on"], false);
    assert_eq!(pin_level(&d, 3), "low");
}

#[test]
fn min_off_refusal_is_a_409_with_the_reason() {
    let dir = TempDir::new("relays-minoff");
    let d = start(&write_config(&dir));
    assert_eq!(post(&d, "/api/v1/relays/heater", r#"{"on":true}"#).0, 200);
    assert_eq!(post(&d, "/api/v1/relays/heater", r#"{"on":false}"#).0, 200);
    let (s, v) = post(&d, "/api/v1/relays/heater", r#"{"on":true}"#);
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "min_off");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains("min_off (10m)"), "{msg}");
    // The remaining time is rounded up to whole seconds: "10m" when the refusal comes within
    // the same second as the turn-off, "9m59s" a little later. Either way it is (9m, 10m].
    let left = msg
        .split("can be turned on again in ")
        .nth(1)
        .and_then(|t| pirouterd::duration::parse(t.trim_end_matches('.')).ok())
        .unwrap_or_else(|| panic!("no remaining time in {msg:?}"));
    assert!(
        left > Duration::from_secs(9 * 60) && left <= Duration::from_secs(600),
        "{msg}"
    );
    assert_eq!(relay(&d, "heater")["on"], false);
}

#[test]
fn fifty_concurrent_conflicting_requests_end_consistent_and_all_logged() {
    let dir = TempDir::new("relays-race");
    let d = std::sync::Arc::new(start(&write_config(&dir)));
    let bodies = [r#"{"on":true}"#, r#"{"on":false}"#, r#"{"toggle":true}"#];
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let d = d.clone();
            let body = bodies[i % 3];
            std::thread::spawn(move || post(&d, "/api/v1/relays/porch-light", body).0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("join"), 200);
    }
    let r = relay(&d, "porch-light");
    let on = r["on"].as_bool().expect("on");
    // The pin agrees with the state.
    assert_eq!(pin_level(&d, 5), if on { "low" } else { "high" });
    // Every change is logged, each starting where the previous ended, the last one where the
    // relay is now, and the counter agrees.
    let changes: Vec<(bool, bool)> = relay_events(&d, "porch-light")
        .iter()
        .map(|e| {
            (
                e["details"]["from"].as_bool().expect("from"),
                e["details"]["to"].as_bool().expect("to"),
            )
        })
        .filter(|(f, t)| f != t)
        .collect();
    assert!(!changes.is_empty());
    for w in changes.windows(2) {
        assert_eq!(w[0].1, w[1].0, "chain broken: {changes:?}");
    }
    assert_eq!(changes.last().expect("last").1, on);
    assert_eq!(
        metric(
            &d,
            "pirouterd_relay_switch_total{relay=\"porch-light\",source=\"api\"}"
        ) as usize,
        changes.len()
    );
    // The saved state is the final state.
    assert_eq!(saved(&dir.0, "porch-light")["on"], on);

    // A pulse relay under concurrent toggles: the appliance (sense pin) ends where the relay
    // says, which fails if two pulses ever interleave.
    let threads: Vec<_> = (0..9)
        .map(|_| {
            let d = d.clone();
            std::thread::spawn(move || post(&d, "/api/v1/relays/fireplace", r#"{"toggle":true}"#).0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("join"), 200);
    }
    let f = relay(&d, "fireplace");
    assert_eq!(f["on"], true, "9 toggles from off end on: {f}");
    assert_eq!(pin_level(&d, 3), "high");
    assert_eq!(f["fault"], Value::Null);
}

#[test]
fn auto_off_fires_and_is_logged_as_timer() {
    let dir = TempDir::new("relays-autooff");
    let d = start(&write_config(&dir));
    let (s, v) = post(
        &d,
        "/api/v1/relays/porch-light",
        r#"{"on":true,"for":"1s"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let r = wait_for(Duration::from_secs(5), || {
        let r = relay(&d, "porch-light");
        (r["on"] == false).then_some(r)
    })
    .expect("auto-off within 5s");
    assert_eq!(r["source"], "timer");
    assert_eq!(pin_level(&d, 5), "high");
    let ev = relay_events(&d, "porch-light");
    assert!(ev.iter().any(|e| e["source"] == "timer"), "{ev:?}");
    assert_eq!(
        metric(
            &d,
            "pirouterd_relay_switch_total{relay=\"porch-light\",source=\"timer\"}"
        ),
        1.0
    );
}

#[test]
fn sigterm_leaves_relays_safe_and_a_restart_restores_without_extending_the_deadline() {
    let dir = TempDir::new("relays-restart");
    let cfg = write_config(&dir);
    let mut d = start(&cfg);
    let (s, v) = post(
        &d,
        "/api/v1/relays/porch-light",
        r#"{"on":true,"for":"30m"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let deadline = v["relay"]["auto_off_at"].as_u64().expect("deadline");
    assert_eq!(
        post(&d, "/api/v1/relays/fireplace", r#"{"on":true}"#).0,
        200
    );
    assert_eq!(pin_level(&d, 3), "high");

    let st = d
        .guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    let err = d.stderr();
    // Both relays driven to their safe state on the way out: the level relay released, the
    // fireplace pulsed off and confirmed by its sense pin.
    assert!(err.contains("relay porch-light: set GPIO5 high"), "{err}");
    assert!(
        err.contains("relay porch-light on -> off (shutdown)"),
        "{err}"
    );
    assert!(err.contains("relay fireplace: pulse GPIO2 low"), "{err}");
    assert!(
        err.contains("relay fireplace on -> off (shutdown)"),
        "{err}"
    );
    assert!(err.contains("relay fireplace: safe"), "{err}");
    // The wish is kept for restore, the physical turn-off is recorded.
    let s = saved(&dir.0, "porch-light");
    assert_eq!(s["on"], true);
    assert_eq!(s["auto_off_at_ms"].as_u64(), Some(deadline));
    assert!(s["off_since_ms"].as_u64().is_some());

    let d2 = start(&cfg);
    let r = relay(&d2, "porch-light");
    assert_eq!(r["on"], true, "restored: {r}");
    assert_eq!(r["source"], "boot");
    assert_eq!(
        r["auto_off_at"].as_u64(),
        Some(deadline),
        "deadline not extended"
    );
    assert_eq!(pin_level(&d2, 5), "low");
    // at_start = off for the fireplace: it stays off after the restart.
    assert_eq!(relay(&d2, "fireplace")["on"], false);
    let ev = relay_events(&d2, "porch-light");
    assert!(
        ev.iter()
            .any(|e| e["source"] == "boot"
                && e["message"].as_str().unwrap_or("").contains("restored")),
        "{ev:?}"
    );
}

#[test]
fn a_simulated_switch_press_toggles_and_follow_switch_follows() {
    let dir = TempDir::new("relays-switch");
    let d = start(&write_config(&dir));
    let (s, v) = post(&d, "/api/v1/relays/fireplace/press", "");
    assert_eq!(s, 200, "{v}");
    let r = wait_for(Duration::from_secs(10), || {
        let r = relay(&d, "fireplace");
        (r["on"] == true).then_some(r)
    })
    .expect("press turned the fireplace on");
    assert_eq!(r["source"], "switch");
    assert_eq!(pin_level(&d, 3), "high");
    assert_eq!(post(&d, "/api/v1/relays/fireplace/press", "").0, 200);
    wait_for(Duration::from_secs(10), || {
        (relay(&d, "fireplace")["on"] == false).then_some(())
    })
    .expect("second press turned it off");

    // The porch light's wall switch is maintained: one flip on, the next off.
    assert_eq!(post(&d, "/api/v1/relays/porch-light/press", "").0, 200);
    wait_for(Duration::from_secs(10), || {
        (relay(&d, "porch-light")["on"] == true).then_some(())
    })
    .expect("flip on");
    assert_eq!(post(&d, "/api/v1/relays/porch-light/press", "").0, 200);
    wait_for(Duration::from_secs(10), || {
        (relay(&d, "porch-light")["on"] == false).then_some(())
    })
    .expect("flip off");
    assert_eq!(
        metric(
            &d,
            "pirouterd_relay_switch_total{relay=\"fireplace\",source=\"switch\"}"
        ),
        2.0
    );
    // A relay without a switch has nothing to press; pressing needs the token.
    assert_eq!(post(&d, "/api/v1/relays/heater/press", "").0, 404);
    let (s, _, _) = d.request("POST", "/api/v1/relays/fireplace/press", None, None);
    assert_eq!(s, 401);
}

#[test]
fn relays_off_command_drives_safe_and_records_the_turn_off() {
    let dir = TempDir::new("relays-off");
    let cfg = write_config(&dir);
    // A state file as a crashed daemon would leave it: porch light on.
    std::fs::write(
        dir.0.join("relays.json"),
        r#"{"version":1,"relays":{"porch-light":{"on":true,"since_ms":1000,"auto_off_at_ms":99999999999999,"source":"api"}}}"#,
    )
    .expect("write");
    let out = std::process::Command::new(common::bin())
        .args(["relays", "off", "--config", &cfg])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["fireplace", "porch-light", "heater"] {
        assert!(stdout.contains(&format!("{name}: off (sim)")), "{stdout}");
    }
    let s = saved(&dir.0, "porch-light");
    assert_eq!(s["on"], true, "the wish is kept for restore");
    assert!(s["off_since_ms"].as_u64().expect("off_since") > 1000);
}

#[test]
fn the_demo_has_a_fireplace_and_a_porch_light_that_work() {
    let mut d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let out = wait_for(Duration::from_secs(5), || {
        let o = d.stdout();
        o.contains("token for changes").then_some(o)
    })
    .expect("the demo prints its token");
    let token = out
        .lines()
        .find_map(|l| l.split("token for changes").nth(1))
        .and_then(|rest| rest.rsplit(' ').next())
        .expect("token")
        .trim()
        .to_string();
    let all = d.get_json("/api/v1/relays");
    assert_eq!(all["backend"], "sim");
    let names: Vec<&str> = all["relays"]
        .as_array()
        .expect("relays")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["fireplace", "porch-light"]);
    let (s, _, b) = d.request(
        "POST",
        "/api/v1/relays/fireplace",
        Some(&token),
        Some(r#"{"on":true}"#),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(relay(&d, "fireplace")["on"], true);
    assert_eq!(pin_level(&d, 3), "high", "the simulated fireplace is lit");
    let st = d
        .guard
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exits on Ctrl-C");
    assert!(st.success(), "{}", d.stderr());
    assert!(
        d.stderr().contains("relay fireplace: safe"),
        "{}",
        d.stderr()
    );
}

#[test]
fn auto_falling_back_to_simulated_pins_is_not_reported_as_safe() {
    // This machine is not a Raspberry Pi (CI and the dev VM have no device-tree model), so
    // `auto` picks simulated pins: the daemon says so, and `relays off` fails rather than
    // pretend it drove real relays.
    assert!(
        !std::fs::read_to_string("/proc/device-tree/model")
            .unwrap_or_default()
            .starts_with("Raspberry Pi"),
        "this test expects a non-Pi machine"
    );
    let dir = TempDir::new("relays-auto");
    let cfg_text = std::fs::read_to_string(write_config(&dir)).expect("read");
    let cfg = dir.file(
        "auto.toml",
        &cfg_text.replace("backend = \"sim\"", "backend = \"auto\""),
    );
    let cfg = cfg.to_str().expect("utf8");
    let out = std::process::Command::new(common::bin())
        .args(["relays", "off", "--config", cfg])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing real was driven"), "{err}");

    let d = start(cfg);
    let st = d.get_json("/api/v1/status");
    let gpio = &st["components"]["gpio"];
    assert_eq!(gpio["state"], "degraded", "{gpio}");
    assert!(
        gpio["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("relays are simulated"),
        "{gpio}"
    );
    assert_eq!(d.get_json("/api/v1/relays")["backend"], "sim");
}
