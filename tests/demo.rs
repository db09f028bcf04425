//! `pirouterd demo` as a newcomer runs it: it serves on 127.0.0.1, says it is a demo, prints
//! its URL and token, and leaves nothing behind when stopped.
mod common;

use common::Daemon;
use std::time::Duration;

/// The demo's "internet" namespace is a child `sleep infinity` of the demo process.
fn peer_children(demo_pid: u32) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &demo_pid.to_string(), "-f", "^sleep infinity$"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn demo_serves_its_page_and_cleans_up() {
    let mut d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let s = d.get_json("/api/v1/status");
    assert_eq!(s["demo"], true);
    let (code, body) = d.get("/", None);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("pirouterd"));
    let out = common::wait_for(Duration::from_secs(5), || {
        let o = d.stdout();
        o.contains("token for changes").then_some(o)
    })
    .expect("the demo prints its URL and token");
    assert!(out.contains(&format!("open http://{}/", d.addr)), "{out}");
    let demo_pid = d.guard.pid();
    // The nftables component reads the demo's own namespace: its counts are the kernel's.
    let nft = common::wait_for(Duration::from_secs(15), || {
        let s = d.get_json("/api/v1/status");
        (s["components"]["nftables"]["state"] == "up")
            .then(|| s["components"]["nftables"]["detail"].clone())
    })
    .expect("the nftables component comes up in the demo namespace");
    let out = std::process::Command::new("nsenter")
        .args([
            "-t",
            &demo_pid.to_string(),
            "-U",
            "-n",
            "--preserve-credentials",
            "nft",
            "-j",
            "list",
            "ruleset",
        ])
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kernel: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft -j");
    let count = |kind: &str| {
        kernel["nftables"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|o| o.get(kind).is_some())
            .count() as u64
    };
    assert_eq!(nft["tables"].as_u64(), Some(count("table")), "{nft}");
    assert_eq!(nft["rules"].as_u64(), Some(count("rule")), "{nft}");
    assert!(count("rule") > 20, "the example ruleset is loaded");
    let peers = peer_children(demo_pid);
    assert_eq!(
        peers.len(),
        1,
        "the internet namespace runs while the demo does"
    );
    let st = d
        .guard
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exits on Ctrl-C");
    assert!(st.success(), "{}", d.stderr());
    let gone = common::wait_for(Duration::from_secs(5), || (!alive(peers[0])).then_some(()));
    assert!(
        gone.is_some(),
        "the demo's internet namespace process is gone after exit"
    );
}
