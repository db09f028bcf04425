//! The drops area through the real binary: `pirouterd analyze` on files and standard input,
//! and `pirouterd serve` inside a namespace whose ruleset logs drops to NFLOG, with real
//! packets from a second namespace, checked against `nft -j list ruleset` through the API
//! and the metrics.
#![allow(clippy::unwrap_used)]

mod common;
use common::in_ns;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, wait_for, Daemon, Netns, TempDir};

const SEED_V6: &str = "Jan  3 04:18:26 home1 kernel: verbose-nft-dropped: IN=att OUT=vlan69 MACSRC=0c:a4:02:c9:06:d5 MACDST=bc:9a:8e:88:56:c0 MACPROTO=86dd SRC=2a06:4880:6000:0000:0000:0000:0000:0089 DST=2600:1700:3040:13e1:0000:0000:0000:0069 LEN=64 TC=0 HOPLIMIT=241 FLOWLBL=270679 PROTO=TCP SPT=36289 DPT=55553 SEQ=3101165342 ACK=0 WINDOW=14600 RES=0x00 SYN URGP=0 OPT (020405A0)";
const SEED_V4: &str = "Jan  3 05:03:21 home2 kernel: nft-dropped: IN=astound OUT= MAC=66:69:69:69:69:69:6c:9c:ed:92:00:26:08:00 SRC=79.124.56.246 DST=207.229.169.25 LEN=40 TOS=0x00 PREC=0x00 TTL=239 ID=47457 PROTO=TCP SPT=56038 DPT=6961 WINDOW=1024 RES=0x00 SYN URGP=0 ";

/// A kern.log: the seed's two lines, more scans, an unrelated kernel message and a line cut
/// short mid-address (line 6).
fn kern_log() -> String {
    let mut lines = vec![SEED_V6.to_string(), SEED_V4.to_string()];
    for i in 0..3 {
        lines.push(format!(
            "Jan  3 05:1{i}:00 home2 kernel: nft-dropped: IN=astound OUT= SRC=79.124.56.246 DST=207.229.169.25 LEN=44 TTL=50 ID=1 PROTO=UDP SPT=5000 DPT=69 LEN=24 "
        ));
    }
    lines.insert(
        3,
        "Jan  3 05:04:00 home2 kernel: usb 1-1: new high-speed USB device".into(),
    );
    lines.insert(
        5,
        "Jan  3 05:05:00 home2 kernel: nft-dropped: IN=astound OUT= SRC=79.12".into(),
    );
    lines.join("\n") + "\n"
}

#[test]
fn analyze_summarises_files_and_stdin() {
    let dir = TempDir::new("analyze");
    let log = dir.file("kern.log", &kern_log());
    let out = Command::new(bin())
        .args(["analyze", "--json", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["lines"], 7);
    assert_eq!(r["packets"], 5);
    assert_eq!(r["bytes"], 64 + 40 + 3 * 44);
    assert_eq!(r["other_lines"], 1);
    assert_eq!(r["unparseable"], 1);
    assert_eq!(r["unparseable_lines"][0]["line"], 6);
    assert_eq!(r["sources"][0]["key"], "79.124.56.246");
    assert_eq!(r["sources"][0]["count"], 4);
    assert_eq!(r["ports"][0]["key"], "69/udp");
    assert_eq!(r["ports"][0]["count"], 3);
    let hosts: BTreeMap<String, u64> = r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["key"].as_str().unwrap().to_string(),
                h["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        BTreeMap::from([("home1".into(), 1), ("home2".into(), 4)])
    );
    assert_eq!(r["first"], "Jan  3 04:18:26");
    assert_eq!(r["last"], "Jan  3 05:12:00");
    assert_eq!(r["span_seconds"], 53 * 60 + 34);

    // Standard input, a prefix filter and the readable table.
    let mut child = Command::new(bin())
        .args(["analyze", "--prefix", "verbose-nft", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(kern_log().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("1 dropped packets (64 bytes) in 7 lines"),
        "{text}"
    );
    // The cut line does not name this prefix either, so it is filtered, not unparseable.
    assert!(
        text.contains("5 with other prefixes, 0 unparseable"),
        "{text}"
    );
    assert!(text.contains("2a06:4880:6000::89"), "{text}");
    assert!(text.contains("55553/tcp"), "{text}");

    // A missing file is reported and fails the run; the other input is still analysed.
    let out = Command::new(bin())
        .args(["analyze", "/nonexistent/kern.log", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/kern.log"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("5 dropped packets"));
    // --top limits the rows.
    let out = Command::new(bin())
        .args(["analyze", "--json", "--top", "1", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(r["hosts"][0]["key"], "home2");
    // No input at all is a usage error.
    let out = Command::new(bin()).args(["analyze"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

const RULESET: &str = r#"
table inet fw {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "vfw" tcp dport 2222 counter log prefix "nft-dropped: " group 3 drop comment "tcp"
        iifname "vfw" udp dport 6969 counter log prefix "nft-dropped: " group 3 drop comment "udp"
        iifname "vfw" icmp type echo-request counter log prefix "nft-dropped: " group 3 drop comment "icmp"
        iifname "vfw" icmpv6 type echo-request counter log prefix "v6-dropped: " group 3 drop comment "icmpv6"
    }
}
"#;

fn rule_counters(ns: &Netns) -> BTreeMap<String, u64> {
    let j = ns.nft_json();
    j["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .map(|r| {
            let packets = r["expr"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|e| e.get("counter"))
                .and_then(|c| c["packets"].as_u64())
                .unwrap();
            (r["comment"].as_str().unwrap().to_string(), packets)
        })
        .collect()
}

#[test]
fn serve_counts_real_drops_like_the_ruleset() {
    let fw = Netns::new("dropsd");
    let peer = Netns::new("dropsd");
    fw.veth(
        "vfw",
        "10.78.0.1/24,fd00:78::1/64",
        &peer,
        "vpeer",
        "10.78.0.2/24,fd00:78::2/64",
    );
    fw.nft_load(RULESET);

    let dir = TempDir::new("dropsd");
    let sock = dir.0.join("http.sock");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\nlisten = [\"unix:{}\"]\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n[drops]\nnflog_groups = [3]\n",
            sock.display(),
            dir.0.display()
        ),
    );
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &fw.name, bin(), "serve", "--config"])
        .arg(&cfg);
    let mut d = Daemon::start_cmd(cmd);

    let up = wait_for(Duration::from_secs(10), || {
        let s = d.get_json("/api/v1/status");
        let c = s["components"]["drops"].clone();
        (c["state"] == "up" || d.get_json("/api/v1/drops")["listening"] == true).then_some(s)
    });
    assert!(up.is_some(), "drops component comes up: {}", d.stderr());

    const TCP: u64 = 3;
    const UDP: u64 = 4;
    const ICMP: u64 = 2;
    const ICMP6: u64 = 2;
    in_ns(&peer, || {
        for _ in 0..TCP {
            // One SYN each: the first retransmission would come after 1 s.
            let r = TcpStream::connect_timeout(
                &"10.78.0.1:2222".parse::<SocketAddr>().unwrap(),
                Duration::from_millis(300),
            );
            assert!(r.is_err(), "the SYN is dropped");
        }
        let udp = UdpSocket::bind("10.78.0.2:0").unwrap();
        for _ in 0..UDP {
            udp.send_to(b"hello", "10.78.0.1:6969").unwrap();
        }
    });
    for (v6, n) in [(false, ICMP), (true, ICMP6)] {
        let count = n.to_string();
        let mut args = vec!["ping", "-c", &count, "-i", "0.2", "-W", "1", "-q"];
        args.extend(if v6 {
            ["-6", "fd00:78::1"]
        } else {
            ["-4", "10.78.0.1"]
        });
        peer.exec(&args);
    }
    let total = TCP + UDP + ICMP + ICMP6;
    let counters = rule_counters(&fw);
    assert_eq!(counters["tcp"], TCP);
    assert_eq!(counters["udp"], UDP);
    assert_eq!(counters["icmp"], ICMP);
    assert_eq!(counters["icmpv6"], ICMP6);

    // The view is republished within a second of the packets.
    let drops = wait_for(Duration::from_secs(10), || {
        let v = d.get_json("/api/v1/drops?window=5m");
        (v["events"] == total).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "drops reach {total}: {}\n{}",
            d.get_json("/api/v1/drops"),
            d.stderr()
        )
    });
    std::thread::sleep(Duration::from_millis(1200));
    let drops_later = d.get_json("/api/v1/drops?window=1h&limit=3");
    assert_eq!(drops_later["events"], total, "no extra events");
    assert_eq!(drops_later["window"], "1h");
    assert!(drops_later["recent"].as_array().unwrap().len() <= 3);

    let proto: BTreeMap<String, u64> = drops["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("tcp".to_string(), counters["tcp"]),
        ("udp".into(), counters["udp"]),
        ("icmp".into(), counters["icmp"]),
        ("icmpv6".into(), counters["icmpv6"]),
    ]
    .into();
    assert_eq!(proto, expected, "per protocol, as the rules counted");
    assert_eq!(drops["sources"][0]["addr"], "10.78.0.2");
    assert_eq!(drops["sources"][0]["count"], TCP + UDP + ICMP);
    assert_eq!(drops["interfaces"][0]["name"], "vfw");
    assert_eq!(drops["ports"][0]["port"], 6969);
    assert_eq!(drops["ports"][0]["proto"], "udp");
    assert_eq!(drops["totals"]["lost"], 0);
    // Each prefix links to the rules that log with it (from the firewall snapshot).
    let linked = wait_for(Duration::from_secs(10), || {
        let v = d.get_json("/api/v1/drops");
        let p = v["prefixes"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "v6-dropped")?
            .clone();
        (!p["rules"].as_array()?.is_empty()).then_some(v)
    })
    .unwrap_or_else(|| panic!("prefixes linked to rules: {}", d.get_json("/api/v1/drops")));
    for p in linked["prefixes"].as_array().unwrap() {
        let comments: Vec<&str> = p["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["table"], "fw");
                assert_eq!(r["chain"], "input");
                r["comment"].as_str().unwrap()
            })
            .collect();
        match p["name"].as_str().unwrap() {
            "nft-dropped" => assert_eq!(comments, ["tcp", "udp", "icmp"]),
            "v6-dropped" => assert_eq!(comments, ["icmpv6"]),
            other => panic!("unexpected prefix {other}"),
        }
    }
    assert_eq!(drops["recent"][0]["in_iface"], "vfw");
    assert_eq!(
        drops["recent"].as_array().unwrap().len() as u64,
        total.min(10)
    );

    // Metrics: one series per (proto, iface, prefix), summing to the total; no addresses.
    let (code, body) = d.get("/metrics", None);
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pirouterd_drops_total{"))
        .collect();
    let sum: u64 = series
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, total, "{text}");
    assert!(
        series.contains(
            &"pirouterd_drops_total{proto=\"icmpv6\",iface=\"vfw\",prefix=\"v6-dropped\"} 2"
        ),
        "{series:?}"
    );
    assert!(text.contains("pirouterd_nflog_lost_total 0"), "{text}");
    common::promtool_check_metrics(&text);
    assert!(!text.contains("10.78.0.2"), "no per-address series");
    assert!(
        text.contains("pirouterd_component_up{component=\"drops\"} 1"),
        "{text}"
    );

    // Bad window: 400 naming the parameter.
    let (code, body) = d.get("/api/v1/drops?window=7m", None);
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body).contains("window"));

    let st = d
        .guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert!(st.success(), "{}", d.stderr());
}

#[test]
fn a_busy_group_degrades_the_component_and_the_daemon_keeps_serving() {
    let fw = Netns::new("dropsbusy");
    fw.nft_load(RULESET);
    let dir = TempDir::new("dropsbusy");
    let mk = |name: &str| {
        dir.file(
            &format!("{name}.toml"),
            &format!(
                "[http]\nlisten = [\"unix:{}\"]\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n[drops]\nnflog_groups = [3]\n",
                dir.0.join(format!("{name}.sock")).display(),
                dir.0.display()
            ),
        )
    };
    let (a, b) = (mk("a"), mk("b"));
    let start = |cfg: &std::path::Path| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &fw.name, bin(), "serve", "--config"])
            .arg(cfg);
        Daemon::start_cmd(cmd)
    };
    let first = start(&a);
    wait_for(Duration::from_secs(10), || {
        (first.get_json("/api/v1/drops")["listening"] == true).then_some(())
    })
    .expect("first daemon binds group 3");
    let second = start(&b);
    let status = wait_for(Duration::from_secs(10), || {
        let s = second.get_json("/api/v1/status");
        (s["components"]["drops"]["state"] == "degraded").then_some(s)
    })
    .expect("second daemon reports drops degraded");
    let err = status["components"]["drops"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("group 3"), "{err}");
    assert!(err.contains("another program"), "{err}");
    // Still serving.
    let (code, _) = second.get("/healthz", None);
    assert!(code == 200 || code == 503, "healthz answers: {code}");
    drop(first);
}
