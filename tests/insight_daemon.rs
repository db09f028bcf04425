//! Firewall insight through the real binary, run inside a namespace with its own ruleset:
//! traffic from a second namespace makes a rule hot and leaves others dead; `nft -f`
//! reloads keep identity, first-seen and last-hit and are events; a restart keeps them
//! (state file); SIGKILL while the daemon writes state, many times, never leaves a torn
//! file; managed-set changes over HTTP (checked with `nft list set`); a real Prometheus
//! server scrapes the daemon and a rule's rate is queried back from it.
mod common;
use common::in_ns;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bin, wait_for, Daemon, Netns, TempDir};
use pirouterd::firewall::persist;

const TOKEN: &str = "insight-test-token-0123456789";

const RULESET: &str = "table inet fw {
  set blocklist { type ipv4_addr; flags interval; }
  set knock { type ipv4_addr; flags timeout; }
  set private { type ipv4_addr; }
  chain input { type filter hook input priority 0; ip saddr @blocklist counter drop; }
}
";

fn daemon_in(ns: &Netns, dir: &TempDir) -> Daemon {
    daemon_with(ns, dir, "", None)
}

/// The daemon in `ns`, on a unix socket in `dir` (reachable from the host) or on `tcp`
/// inside the namespace.
fn daemon_with(ns: &Netns, dir: &TempDir, extra: &str, tcp: Option<&str>) -> Daemon {
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\ntoken_file = \"{}\"\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n\
             [firewall]\ninterval = \"1s\"\nmanaged_sets = [\"inet/fw/blocklist\", \"inet/fw/knock\"]\n{extra}",
            token.display(),
            dir.0.display()
        ),
    );
    let listen = match tcp {
        Some(a) => a.to_string(),
        None => format!("unix:{}", dir.0.join("http.sock").display()),
    };
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, bin(), "serve", "--config"])
        .arg(&cfg)
        .arg("--listen")
        .arg(listen);
    Daemon::start_cmd(cmd)
}

fn body(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

fn listed(ns: &Netns, set: &str) -> String {
    let out = ns.run(&["nft", "list", "set", "inet", "fw", set]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn managed_sets_over_http() {
    let ns = Netns::new("insd");
    ns.nft_load(RULESET);
    let dir = TempDir::new("insd");
    let d = daemon_in(&ns, &dir);
    let path = "/api/v1/firewall/sets/inet/fw/blocklist/elements";

    let (s, _, b) = d.request(
        "POST",
        path,
        Some(TOKEN),
        Some(r#"{"elements": ["192.0.2.7", "203.0.113.0/24"]}"#),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let v = body(&b);
    let got: Vec<&str> = v["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|e| e["element"].as_str().expect("element"))
        .collect();
    assert_eq!(got, ["192.0.2.7", "203.0.113.0/24"]);
    assert!(listed(&ns, "blocklist").contains("elements = { 192.0.2.7, 203.0.113.0/24 }"));

    // Timed allowlist entry, read back with its expiry.
    let (s, _, b) = d.request(
        "POST",
        "/api/v1/firewall/sets/inet/fw/knock/elements",
        Some(TOKEN),
        Some(r#"{"elements": ["198.51.100.9"], "timeout": "10m"}"#),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(body(&b)["elements"][0]["timeout_ms"], 600_000);
    assert!(listed(&ns, "knock").contains("198.51.100.9 timeout 10m expires"));

    // Bad element: 400 naming it, nothing applied.
    let before = listed(&ns, "blocklist");
    let (s, _, b) = d.request(
        "POST",
        path,
        Some(TOKEN),
        Some(r#"{"elements": ["192.0.2.8", "192.0.2.999"]}"#),
    );
    assert_eq!(s, 400);
    let e = body(&b);
    assert_eq!(e["error"]["code"], "bad_element");
    assert!(e["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("192.0.2.999"));
    assert_eq!(listed(&ns, "blocklist"), before);

    // Not in managed_sets: 403, even though the set exists.
    let (s, _, b) = d.request(
        "POST",
        "/api/v1/firewall/sets/inet/fw/private/elements",
        Some(TOKEN),
        Some(r#"{"elements": ["192.0.2.1"]}"#),
    );
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&b));
    assert!(!listed(&ns, "private").contains("192.0.2.1"));

    // No token: 401 before anything else.
    let (s, _, _) = d.request("POST", path, None, Some(r#"{"elements": ["192.0.2.1"]}"#));
    assert_eq!(s, 401);

    // Remove one; removing an absent one is refused by the kernel and changes nothing.
    let (s, _, b) = d.request(
        "DELETE",
        path,
        Some(TOKEN),
        Some(r#"{"elements": ["192.0.2.7"]}"#),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert!(listed(&ns, "blocklist").contains("elements = { 203.0.113.0/24 }"));
    let (s, _, b) = d.request(
        "DELETE",
        path,
        Some(TOKEN),
        Some(r#"{"elements": ["203.0.113.0/24", "192.0.2.77"]}"#),
    );
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    assert!(body(&b)["error"]["message"]
        .as_str()
        .expect("m")
        .contains("192.0.2.77"));
    assert!(listed(&ns, "blocklist").contains("elements = { 203.0.113.0/24 }"));

    // Bad JSON field and a bad timeout name the field.
    let (s, _, b) = d.request(
        "POST",
        path,
        Some(TOKEN),
        Some(r#"{"element": ["1.2.3.4"]}"#),
    );
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    let (s, _, b) = d.request(
        "POST",
        path,
        Some(TOKEN),
        Some(r#"{"elements": ["1.2.3.4"], "timeout": "soon"}"#),
    );
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&b).contains("timeout"));

    // The change is in the event log with its source.
    let ev = d.get_json("/api/v1/events");
    let text = ev.to_string();
    assert!(text.contains("nft add element inet fw blocklist"), "{text}");
    assert!(text.contains("api "), "{text}");

    // The rules endpoint answers (bad sort is a 400).
    let r = d.get_json("/api/v1/firewall/rules?sort=hot&limit=5");
    assert!(r["rules"].is_array());
    let (s, _) = d.get("/api/v1/firewall/rules?sort=cold", None);
    assert_eq!(s, 400);
}

#[test]
fn corrupt_state_file_is_set_aside_and_reported() {
    let ns = Netns::new("insd");
    ns.nft_load(RULESET);
    let dir = TempDir::new("insd");
    dir.file("firewall-rules.json", "{\"version\":1,\"saved_ms\":0,\"rul");
    let d = daemon_in(&ns, &dir);
    let ev = d.get_json("/api/v1/events").to_string();
    assert!(ev.contains("firewall rule history not restored"), "{ev}");
    let aside: Vec<String> = std::fs::read_dir(&dir.0)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("firewall-rules.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "set aside for the operator");
    assert!(d.get_json("/healthz")["status"] == "serving");
}

const ROUTER: &str = r#"flush ruleset
table inet fw {
  set blocklist { type ipv4_addr; flags interval; }
  set knock { type ipv4_addr; flags timeout; }
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request counter comment "nft(svc=ping;dir=in)"
    tcp dport 9 counter comment "nft(svc=discard;dir=in)"
    udp dport 7 counter
    ip saddr 10.250.0.0/16 accept
  }
}
"#;

/// `udp dport 7` gone, `udp dport 53` new, the rest unchanged.
const ROUTER_V2: &str = r#"flush ruleset
table inet fw {
  set blocklist { type ipv4_addr; flags interval; }
  set knock { type ipv4_addr; flags timeout; }
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request counter comment "nft(svc=ping;dir=in)"
    tcp dport 9 counter comment "nft(svc=discard;dir=in)"
    udp dport 53 counter comment "nft(svc=dns;dir=in)"
    ip saddr 10.250.0.0/16 accept
  }
}
"#;

fn rule<'a>(v: &'a serde_json::Value, comment: &str) -> &'a serde_json::Value {
    v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["comment"] == comment)
        .unwrap_or_else(|| panic!("no rule {comment} in {v}"))
}

#[test]
fn hot_dead_reload_and_restart_through_the_daemon() {
    let a = Netns::new("insr");
    let b = Netns::new("insr");
    a.veth("ra", "10.78.0.1/30", &b, "rb", "10.78.0.2/30");
    a.nft_load(ROUTER);
    let dir = TempDir::new("insr");
    let mut d = daemon_in(&a, &dir);
    // The first sample is the baseline; traffic after it is a hit.
    wait_for(Duration::from_secs(10), || {
        (d.get_json("/api/v1/firewall/rules")["sampled"] == true).then_some(())
    })
    .expect("first sample");
    b.run(&["ping", "-c", "5", "-i", "0.05", "-W", "1", "10.78.0.1"]);
    let hot = wait_for(Duration::from_secs(10), || {
        let v = d.get_json("/api/v1/firewall/rules?sort=hot&limit=2");
        (v["rules"][0]["comment"] == "nft(svc=ping;dir=in)"
            && v["rules"][0]["rate_pps"].as_f64().is_some_and(|r| r > 0.0))
        .then_some(v)
    })
    .expect("the ping rule becomes the hottest");
    let ping = &hot["rules"][0];
    assert!(ping["packets"].as_u64().expect("packets") >= 5, "{ping}");
    assert_eq!(ping["labels"]["svc"], "ping");
    assert!(ping["last_hit"].is_string());
    let first_seen = ping["first_seen"].clone();

    let dead = d.get_json("/api/v1/firewall/rules?sort=dead");
    assert_eq!(dead["rules"][0]["never_hit"], true, "{dead}");
    let last = dead["rules"]
        .as_array()
        .expect("rules")
        .last()
        .expect("one")
        .clone();
    assert_eq!(
        last["measurable"], false,
        "the uncounted accept goes last: {last}"
    );
    assert!(last["hint"].as_str().expect("hint").contains("counter"));

    // Reload: identity, first-seen and last-hit survive; the reload is an event.
    a.nft_load(ROUTER_V2);
    let ev = wait_for(Duration::from_secs(10), || {
        let e = d.get_json("/api/v1/events").to_string();
        e.contains("1 rules added, 1 removed, 0 changed")
            .then_some(e)
    })
    .expect("reload event");
    assert!(
        ev.contains("udp dport 7"),
        "the removed rule is named: {ev}"
    );
    let v = d.get_json("/api/v1/firewall/rules");
    let p = rule(&v, "nft(svc=ping;dir=in)");
    assert_eq!(p["first_seen"], first_seen);
    assert_eq!(
        p["last_hit"], ping["last_hit"],
        "no traffic since: last hit kept"
    );
    assert_eq!(p["packets"], 0, "the kernel counter restarted");
    assert!(p["packets_since_first_seen"].as_u64().expect("total") >= 5);

    // The metrics pass promtool and carry the nfprom labels.
    let (s, m) = d.get("/metrics", None);
    assert_eq!(s, 200);
    let text = String::from_utf8_lossy(&m);
    assert!(text.contains("pirouterd_nft_rule_packets_total{family=\"inet\",table=\"fw\",chain=\"input\",comment=\"nft(svc=ping;dir=in)\",rule=\"\",dir=\"in\",svc=\"ping\"} 0"), "{text}");
    assert!(
        text.contains(
            "pirouterd_nft_rules_never_hit{family=\"inet\",table=\"fw\",chain=\"input\"} 2"
        ),
        "{text}"
    );
    common::promtool_check_metrics(&String::from_utf8_lossy(&m));

    // Restart: SIGTERM saves, the next daemon restores.
    d.guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert!(dir.0.join("firewall-rules.json").exists());
    let d2 = daemon_in(&a, &dir);
    let v = wait_for(Duration::from_secs(10), || {
        let v = d2.get_json("/api/v1/firewall/rules");
        (v["sampled"] == true).then_some(v)
    })
    .expect("sampled after restart");
    let p = rule(&v, "nft(svc=ping;dir=in)");
    assert_eq!(
        p["first_seen"], first_seen,
        "first-seen survives the restart"
    );
    assert_eq!(
        p["last_hit"], ping["last_hit"],
        "last-hit survives the restart"
    );
    assert_eq!(rule(&v, "nft(svc=discard;dir=in)")["never_hit"], true);
}

#[test]
fn sigkill_while_the_daemon_writes_state_never_tears_the_file() {
    let a = Netns::new("insk");
    a.nft_load(ROUTER);
    let dir = TempDir::new("insk");
    let path = dir.0.join("firewall-rules.json");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64 | 1);
    let mut whole = 0;
    let rounds = 12;
    for _ in 0..rounds {
        let mut d = daemon_in(&a, &dir);
        // Every reload makes the daemon save its rule state.
        let stop = Arc::new(AtomicBool::new(false));
        let reloader = {
            let stop = stop.clone();
            let name = a.name.clone();
            std::thread::spawn(move || {
                let mut v2 = false;
                while !stop.load(Ordering::Relaxed) {
                    let rs = if v2 { ROUTER_V2 } else { ROUTER };
                    v2 = !v2;
                    let mut c = Command::new("ip")
                        .args(["netns", "exec", &name, "nft", "-f", "-"])
                        .stdin(std::process::Stdio::piped())
                        .spawn()
                        .expect("nft");
                    use std::io::Write;
                    let _ = c.stdin.take().expect("stdin").write_all(rs.as_bytes());
                    let _ = c.wait();
                    std::thread::sleep(Duration::from_millis(150));
                }
            })
        };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(1200 + seed % 1500));
        d.guard
            .signal_and_wait("KILL", Duration::from_secs(5))
            .expect("killed");
        stop.store(true, Ordering::Relaxed);
        reloader.join().expect("reloader");
        let l = persist::load(&dir.0, 0);
        assert!(
            l.problem.is_none(),
            "state file torn by SIGKILL: {:?}",
            l.problem
        );
        if path.exists() || !l.states.is_empty() {
            whole += 1;
            assert!(
                l.states.len() >= 4,
                "a whole save holds every rule: {}",
                l.states.len()
            );
        }
    }
    assert!(
        whole >= rounds / 2,
        "the daemon saved in too few rounds: {whole}/{rounds}"
    );
}

#[test]
fn prometheus_scrapes_a_rule_rate() {
    let a = Netns::new("insp");
    let b = Netns::new("insp");
    a.veth("pa", "10.79.0.1/30", &b, "pb", "10.79.0.2/30");
    a.nft_load(ROUTER);
    let dir = TempDir::new("insp");
    let _d = daemon_with(&a, &dir, "", Some("127.0.0.1:19880"));
    let prom_cfg = dir.file(
        "prometheus.yml",
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: pirouterd\n    static_configs:\n      - targets: ['127.0.0.1:19880']\n",
    );
    let data = dir.0.join("tsdb");
    let _prom = a.spawn(&[
        "prometheus",
        &format!("--config.file={}", prom_cfg.display()),
        &format!("--storage.tsdb.path={}", data.display()),
        "--web.listen-address=127.0.0.1:19090",
        "--log.level=warn",
    ]);
    // 10 pings a second for the whole test (bounded: 60 s at most).
    let _ping = b.spawn(&["ping", "-q", "-i", "0.1", "-w", "60", "10.79.0.1"]);
    let query = "rate(pirouterd_nft_rule_packets_total{svc=\"ping\"}[5s])";
    let enc: String = query
        .bytes()
        .map(|c| match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (c as char).to_string(),
            c => format!("%{c:02X}"),
        })
        .collect();
    let rate = in_ns(&a, move || {
        wait_for(Duration::from_secs(45), || {
            let req = format!(
                "GET /api/v1/query?query={enc} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
            );
            let mut s = std::net::TcpStream::connect("127.0.0.1:19090").ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            use std::io::{Read, Write};
            s.write_all(req.as_bytes()).ok()?;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            let (status, _, body) = common::parse_http(&buf);
            if status != 200 {
                return None;
            }
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            let r = v["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<f64>()
                .ok()?;
            // The first windows straddle the start of the pings; wait for a full one.
            (r >= 5.0).then_some(r)
        })
    })
    .expect("Prometheus returns the ping rule's rate, about 10 pings a second");
    assert!(rate <= 15.0, "about 10 pings a second: {rate}");
}
