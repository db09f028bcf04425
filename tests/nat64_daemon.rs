//! NAT64 through the real binary: `pirouterd serve` runs the fake `jool`
//! (`tests/fixtures/fake-jool/jool`, printing the recorded fixtures or failing as recorded) from
//! its configured path; the API, metrics, component status and events are checked over HTTP.
#![allow(clippy::unwrap_used)]
mod common;

use common::{wait_for, Daemon, TempDir};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes a `jool` wrapper into `dir` that runs the fake with the scenario read from
/// `dir/scenario` at every run (so a test can change it while the daemon runs), logging runs
/// to `dir/runs.log`.
fn fake_jool(dir: &TempDir, scenario: &str) -> PathBuf {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-jool/jool");
    dir.file("scenario", scenario);
    let script = format!(
        "#!/bin/sh\nexport FAKE_JOOL_SCENARIO=\"$(cat '{d}/scenario')\"\nexport FAKE_JOOL_LOG='{d}/runs.log'\nexec '{f}' \"$@\"\n",
        d = dir.0.display(),
        f = fake.display()
    );
    let p = dir.file("jool", &script);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn serve(dir: &TempDir, jool: &Path, nat64_extra: &str) -> Daemon {
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[state]\ndir = \"{}\"\n[nat64]\njool = \"{}\"\n{nat64_extra}\n",
            dir.0.display(),
            jool.display()
        ),
    );
    Daemon::start(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
}

/// Waits until the first round is published.
fn sampled(d: &Daemon) -> Value {
    wait_for(Duration::from_secs(20), || {
        let v = d.get_json("/api/v1/nat64");
        (v["sampled"] == true).then_some(v)
    })
    .unwrap_or_else(|| panic!("no NAT64 sample; stderr:\n{}", d.stderr()))
}

fn runs(dir: &TempDir) -> usize {
    std::fs::read_to_string(dir.0.join("runs.log"))
        .map(|s| s.lines().filter(|l| l.starts_with("end ")).count())
        .unwrap_or(0)
}

fn metrics(d: &Daemon) -> String {
    let (code, body) = d.get("/metrics", None);
    assert_eq!(code, 200);
    String::from_utf8(body).unwrap()
}

#[test]
fn api_and_metrics_from_a_healthy_jool_without_rerunning_it() {
    let dir = TempDir::new("nat64-ok");
    let jool = fake_jool(&dir, "ok");
    // One round at start, then none for an hour: every request below must be served from it.
    let d = serve(&dir, &jool, "interval = \"1h\"");
    let v = sampled(&d);
    assert_eq!(v["up"], true, "{v}");
    assert_eq!(v["sample_data"], false);
    assert_eq!(
        v["instances"].as_array().unwrap().len(),
        1,
        "guest is in another namespace"
    );
    let i = &v["instances"][0];
    assert_eq!(i["name"], "default");
    assert_eq!(i["status"], "running");
    assert_eq!(i["framework"], "netfilter");
    assert_eq!(i["summary"]["total"], 16);
    let by_proto: Vec<(String, u64, u64)> = i["summary"]["by_proto"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["proto"].as_str().unwrap().to_string(),
                p["sessions"].as_u64().unwrap(),
                p["bib_entries"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_proto,
        [
            ("tcp".into(), 9, 9),
            ("udp".into(), 4, 4),
            ("icmp".into(), 3, 3)
        ]
    );
    assert_eq!(
        i["summary"]["top_clients"][0]["address"],
        "2001:db8:100::1a"
    );
    assert_eq!(i["summary"]["top_clients"][0]["sessions"], 6);
    assert_eq!(i["summary"]["pool4"][0]["ports_total"], 4535);
    let counters = i["stats"].as_array().unwrap();
    assert_eq!(counters.len(), 83);
    let sess = counters
        .iter()
        .find(|c| c["name"] == "JSTAT_SESSIONS")
        .unwrap();
    assert_eq!(
        (sess["value"].as_u64(), sess["kind"].as_str()),
        (Some(16), Some("gauge"))
    );
    let status = d.get_json("/api/v1/status");
    assert_eq!(status["components"]["jool"]["state"], "up", "{status}");
    let runs_after_first_round = runs(&dir);
    // instance display; status of default and guest (skipped: other namespace); then for
    // default: stats, three session tables, pool4.
    assert_eq!(runs_after_first_round, 8);

    // Sessions: paging and filters.
    let page = d.get_json("/api/v1/nat64/sessions?limit=5");
    assert_eq!(
        (page["total"].as_u64(), page["limit"].as_u64()),
        (Some(16), Some(5))
    );
    let s = page["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 5);
    assert_eq!(s[0]["proto"], "tcp");
    assert_eq!(s[0]["ipv6_client"], "2001:db8:100::1a");
    assert_eq!(s[0]["ipv6_client_id"], 50234);
    assert_eq!(s[0]["ipv6_server"], "64:ff9b::c633:6407");
    assert_eq!(s[0]["ipv4_local"], "192.0.2.1");
    assert_eq!(s[0]["ipv4_local_id"], 61024);
    assert_eq!(s[0]["ipv4_server"], "198.51.100.7");
    assert_eq!(s[0]["expires_in"], "1:59:57.328");
    assert_eq!(s[0]["state"], "ESTABLISHED");
    let udp = d.get_json("/api/v1/nat64/sessions?proto=udp");
    assert_eq!(udp["total"], 4);
    assert!(udp["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["proto"] == "udp" && s["state"].is_null()));
    let client = d.get_json("/api/v1/nat64/sessions?client=2001:db8:100::1a");
    assert_eq!(client["total"], 6);
    let icmp64 = d.get_json("/api/v1/nat64/sessions?client=2001:db8:100::/64&proto=icmp");
    assert_eq!(icmp64["total"], 3);
    let last = d.get_json("/api/v1/nat64/sessions?offset=15&limit=100");
    assert_eq!(last["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(last["sessions"][0]["proto"], "icmp");
    for bad in [
        "/api/v1/nat64/sessions?proto=sctp",
        "/api/v1/nat64/sessions?client=nope",
        "/api/v1/nat64/sessions?limit=abc",
        "/api/v1/nat64/sessions?limit=100000",
    ] {
        let (code, body) = d.get(bad, None);
        assert_eq!(code, 400, "{bad}");
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["error"]["code"], "bad_query", "{bad}");
    }

    // Metrics: values, types, HELP, and promtool's approval.
    let m = metrics(&d);
    for line in [
        "pirouterd_jool_up 1",
        "pirouterd_jool_instance_up{jool_instance=\"default\"} 1",
        "pirouterd_jool_sessions{jool_instance=\"default\",proto=\"tcp\",state=\"ESTABLISHED\"} 3",
        "pirouterd_jool_sessions{jool_instance=\"default\",proto=\"tcp\",state=\"TRANS\"} 1",
        "pirouterd_jool_sessions{jool_instance=\"default\",proto=\"udp\",state=\"none\"} 4",
        "pirouterd_jool_sessions{jool_instance=\"default\",proto=\"icmp\",state=\"none\"} 3",
        "pirouterd_jool_stat_total{jool_instance=\"default\",name=\"JSTAT_POOL4_MISMATCH\"} 3102",
        "pirouterd_jool_stat_total{jool_instance=\"default\",name=\"JSTAT_JOOLD_ACKS\"} 0",
        "pirouterd_jool_stat{jool_instance=\"default\",name=\"JSTAT_SESSIONS\"} 16",
        "pirouterd_jool_stat{jool_instance=\"default\",name=\"JSTAT_BIB_ENTRIES\"} 16",
        "pirouterd_jool_bib_entries{jool_instance=\"default\",proto=\"tcp\"} 9",
        "pirouterd_jool_pool4_ports{jool_instance=\"default\",proto=\"tcp\"} 4535",
        "pirouterd_jool_pool4_ports_used{jool_instance=\"default\",proto=\"tcp\"} 9",
        "pirouterd_component_up{component=\"jool\"} 1",
        "# TYPE pirouterd_jool_stat_total counter",
        "# TYPE pirouterd_jool_stat gauge",
        "# TYPE pirouterd_jool_sessions gauge",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    assert!(m.contains("# HELP pirouterd_jool_up "));
    assert!(
        !m.contains("pirouterd_jool_stat_total{jool_instance=\"default\",name=\"JSTAT_SESSIONS\"}")
    );
    assert!(!m.contains("2001:db8"), "no per-address series");
    common::promtool_check_metrics(&m);

    // Every request above was answered from the snapshot.
    assert_eq!(runs(&dir), runs_after_first_round);
}

#[test]
fn failing_jool_degrades_the_component_and_recovers() {
    let dir = TempDir::new("nat64-nocap");
    let jool = fake_jool(&dir, "no-cap");
    let d = serve(&dir, &jool, "interval = \"1s\"\ninstances = [\"default\"]");
    let v = sampled(&d);
    assert_eq!(v["up"], false);
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("CAP_NET_ADMIN"), "{reason}");
    assert_eq!(v["instances"][0]["problems"][0]["code"], "no_capability");
    let st = d.get_json("/api/v1/status");
    assert_eq!(st["components"]["jool"]["state"], "degraded");
    assert!(st["components"]["jool"]["last_error"]
        .as_str()
        .unwrap()
        .contains("AmbientCapabilities=CAP_NET_ADMIN"));
    // The rest of the daemon carries on.
    let h = d.get_json("/healthz");
    assert_eq!(h["status"], "serving");
    assert!(h["degraded"]["jool"]
        .as_str()
        .unwrap()
        .contains("CAP_NET_ADMIN"));
    let m = metrics(&d);
    assert!(m.lines().any(|l| l == "pirouterd_jool_up 0"), "{m}");
    assert!(m
        .lines()
        .any(|l| l == "pirouterd_component_up{component=\"jool\"} 0"));
    // Counters need no capability: still exported.
    assert!(m.contains(
        "pirouterd_jool_stat_total{jool_instance=\"default\",name=\"JSTAT_RECEIVED6\"} 1843221"
    ));
    common::promtool_check_metrics(&m);

    // The operator fixes it: the next round is up, and the event log tells the story.
    std::fs::write(dir.0.join("scenario"), "ok").unwrap();
    wait_for(Duration::from_secs(20), || {
        (d.get_json("/api/v1/status")["components"]["jool"]["state"] == "up").then_some(())
    })
    .unwrap_or_else(|| panic!("jool never came up; stderr:\n{}", d.stderr()));
    let ev = d.get_json("/api/v1/events");
    let msgs: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "nat64")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs.first().is_some_and(|m| m.starts_with("NAT64 down: ")),
        "{msgs:?}"
    );
    assert!(
        msgs.last()
            .is_some_and(|m| m.starts_with("NAT64 up: 16 session")),
        "{msgs:?}"
    );
}

#[test]
fn each_recorded_failure_is_explained() {
    for (scenario, code, words) in [
        ("module-not-loaded", "module_not_loaded", "modprobe jool"),
        ("nat64-not-loaded", "nat64_module_not_loaded", "only SIIT"),
        (
            "version-mismatch",
            "version_mismatch",
            "update the kernel module",
        ),
        ("old-client", "client_too_old", "(68 counters read)"),
        ("garbage", "bad_output", "not text"),
    ] {
        let dir = TempDir::new("nat64-fail");
        let jool = fake_jool(&dir, scenario);
        let d = serve(&dir, &jool, "interval = \"1h\"");
        let v = sampled(&d);
        let reason = v["reason"].as_str().unwrap_or("");
        assert!(reason.contains(words), "{scenario}: {reason}");
        let codes = serde_json::to_string(&v).unwrap();
        assert!(
            codes.contains(&format!("\"code\":\"{code}\"")),
            "{scenario}: {v}"
        );
        let st = d.get_json("/api/v1/status");
        assert_eq!(st["components"]["jool"]["state"], "degraded", "{scenario}");
    }
}

#[test]
fn missing_jool_is_explained() {
    let dir = TempDir::new("nat64-missing");
    let d = serve(&dir, &dir.0.join("no-jool-here"), "");
    let v = sampled(&d);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("apt install jool-tools"),
        "{v}"
    );
    assert_eq!(v["problems"][0]["code"], "not_installed");
}

#[test]
fn hanging_jool_is_killed_and_does_not_delay_stop() {
    let dir = TempDir::new("nat64-hang");
    let jool = fake_jool(&dir, "hang");
    let mut d = serve(
        &dir,
        &jool,
        "timeout = \"500ms\"\ninterval = \"1s\"\ninstances = [\"default\"]",
    );
    let v = sampled(&d);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within"),
        "{v}"
    );
    // A round is under way (status hangs again each second); SIGTERM must not wait for it.
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = Instant::now();
    let st = d
        .guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(st.success(), "{}", d.stderr());
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t0.elapsed()
    );
}

#[test]
fn demo_shows_sample_nat64_data() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let v = sampled(&d);
    assert_eq!(v["sample_data"], true, "labelled as sample data: {v}");
    assert_eq!(v["up"], true, "{v}");
    assert_eq!(v["instances"][0]["summary"]["total"], 16);
    let page = d.get_json("/api/v1/nat64/sessions?limit=100");
    assert_eq!(page["sample_data"], true);
    assert_eq!(page["sessions"].as_array().unwrap().len(), 16);
}
