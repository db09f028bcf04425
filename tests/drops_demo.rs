//! The demo's dropped traffic reaches the drops panel: its ruleset logs drops to NFLOG group
//! 1 and its traffic thread scans ports the ruleset drops.
#![allow(clippy::unwrap_used)]

mod common;

use common::{wait_for, Daemon};
use std::time::Duration;

#[test]
fn demo_drops_move() {
    let mut d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let v = wait_for(Duration::from_secs(20), || {
        let v = d.get_json("/api/v1/drops?window=5m");
        (v["events"].as_u64().unwrap_or(0) > 0).then_some(v)
    })
    .unwrap_or_else(|| panic!("no drops counted in the demo:\n{}", d.stderr()));
    assert_eq!(v["listening"], true);
    assert_eq!(v["groups"], serde_json::json!([1]));
    assert_eq!(v["interfaces"][0]["name"], "wan0");
    assert!(v["recent"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["in_iface"] == "wan0"));
    let (code, body) = d.get("/metrics", None);
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.lines()
            .any(|l| l.starts_with("pirouterd_drops_total{") && l.contains("iface=\"wan0\"")),
        "{text}"
    );
    let st = d
        .guard
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exits");
    assert!(st.success(), "{}", d.stderr());
}
