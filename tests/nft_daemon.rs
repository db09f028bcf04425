//! The firewall area through the real binary: `pirouterd serve` inside a namespace with a
//! ruleset, real packets, `GET /api/v1/firewall` compared with `nft -j`, set elements after a
//! real knock, early refresh on a ruleset change, the `status` section, the missing
//! CAP_NET_ADMIN message, and the demo's ruleset in the API.
mod common;
mod nft_support;

use std::process::Command;
use std::time::Duration;

use common::{bin, wait_for, Daemon, Netns, TempDir};
use nft_support::{nft_view, tcp_syn, udp_send};

const RULESET: &str = r#"
table inet fw {
	set Step1 {
		type ipv4_addr
		timeout 5s
	}
	set blocklist {
		type ipv4_addr
		flags timeout
		elements = { 192.0.2.66 timeout 1h, 192.0.2.67 }
	}
	counter knocks {
	}
	chain accounting {
		ip daddr 10.78.0.1 udp dport 53 counter return comment "nft(service=dns;dir=in)"
		ip daddr 10.78.0.1 tcp dport 22 counter return comment "nft(service=ssh;dir=in)"
	}
	chain input {
		type filter hook input priority filter; policy accept;
		jump accounting
		ip saddr @blocklist counter drop
		tcp dport 36 add @Step1 { ip saddr } counter name "knocks" drop
		udp dport 9999 counter drop
	}
}
"#;

fn serve_in(ns: &Netns, dir: &TempDir, interval: &str, prefix: &[&str]) -> Daemon {
    let sock = dir.0.join("http.sock");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\nlisten = [\"unix:{}\"]\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n[firewall]\ninterval = \"{interval}\"\n",
            sock.display(),
            dir.0.display()
        ),
    );
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name])
        .args(prefix)
        .arg(bin());
    cmd.args(["serve", "--config", cfg.to_str().expect("utf8")]);
    Daemon::start_cmd(cmd)
}

fn firewall(d: &Daemon) -> Option<serde_json::Value> {
    let (code, body) = d.get("/api/v1/firewall", None);
    (code == 200).then(|| serde_json::from_slice(&body).expect("json"))
}

#[test]
fn serve_publishes_the_ruleset_with_counters_sets_and_changes() {
    let r = Netns::new("nftd");
    let c = Netns::new("nftd");
    r.veth("veth0", "10.78.0.1/24", &c, "veth1", "10.78.0.2/24");
    r.nft_load(RULESET);
    let dir = TempDir::new("nftd");
    // A long interval: only the kernel's change announcement can refresh early.
    let d = serve_in(&r, &dir, "60s", &[]);
    let first =
        wait_for(Duration::from_secs(10), || firewall(&d)).expect("first snapshot published");
    assert_eq!(first["rules"].as_array().map(|a| a.len()), Some(6));
    assert_eq!(first["rule_count"], 6);
    // The page's lean form: everything but the rules.
    let lean = d.get_json("/api/v1/firewall?rules=0");
    assert!(lean.get("rules").is_none(), "{lean}");
    assert_eq!(lean["rule_count"], 6);
    assert_eq!(lean["chains"], first["chains"]);
    let (code, body) = d.get("/api/v1/firewall?rules=maybe", None);
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));

    // The component is up with a summary.
    let st = d.get_json("/api/v1/status");
    assert_eq!(st["components"]["nftables"]["state"], "up", "{st}");
    assert_eq!(st["components"]["nftables"]["detail"]["rules"], 6);

    // Traffic, then a ruleset change: the change makes the daemon sample at once, so the
    // counters it shows afterwards are those of after the traffic.
    udp_send(&c, "10.78.0.1", 53, 3, 50);
    udp_send(&c, "10.78.0.1", 9999, 2, 10);
    tcp_syn(&c, "10.78.0.1", 36);
    r.run(&[
        "nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", "4242", "counter", "accept",
    ]);
    let v = wait_for(Duration::from_secs(5), || {
        firewall(&d).filter(|v| v["rules"].as_array().map(|a| a.len()) == Some(7))
    })
    .expect("the added rule shows within 5 s although the interval is 60 s");
    assert_ne!(v["generation"], first["generation"]);
    let events = d.get_json("/api/v1/events");
    assert!(
        events.to_string().contains("nftables ruleset changed"),
        "{events}"
    );

    // Every rule's counter, the named counter and set sizes equal nft -j (no traffic since).
    let j = nft_view(&r.nft_json());
    for rule in v["rules"].as_array().expect("rules") {
        let key = (
            rule["family"].as_str().unwrap_or_default().to_string(),
            rule["table"].as_str().unwrap_or_default().to_string(),
            rule["chain"].as_str().unwrap_or_default().to_string(),
            rule["handle"].as_u64().unwrap_or_default(),
        );
        let (p, b, has, _) = &j.rules[&key];
        assert_eq!(
            (rule["packets"].as_u64(), rule["bytes"].as_u64()),
            (Some(*p), Some(*b)),
            "{rule}"
        );
        assert_eq!(rule["has_counter"].as_bool(), Some(*has));
    }
    let dns = v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["labels"]["service"] == "dns")
        .expect("dns rule");
    assert_eq!(dns["packets"], 3);
    assert_eq!(
        dns["text"],
        "ip daddr 10.78.0.1 udp dport 53 counter return"
    );
    let knocks = &v["counters"][0];
    assert_eq!(knocks["name"], "knocks");
    assert_eq!(
        knocks["packets"].as_u64(),
        Some(j.counters[&("inet".into(), "fw".into(), "knocks".into())].0)
    );
    assert_eq!(knocks["packets"], 1);
    let chain = v["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|c| c["name"] == "input")
        .expect("input");
    assert_eq!(
        (
            chain["hook"].as_str(),
            chain["policy"].as_str(),
            chain["priority"].as_i64()
        ),
        (Some("input"), Some("accept"), Some(0))
    );

    // The knocker is in Step1 with an expiry; the blocklist shows its timed element.
    let (code, body) = d.get("/api/v1/firewall/sets/inet/fw/Step1", None);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let s: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(s["items"][0]["key"], "10.78.0.2");
    assert!(
        s["items"][0]["expires_ms"]
            .as_u64()
            .is_some_and(|ms| ms <= 5000),
        "{s}"
    );
    let bl = d.get_json("/api/v1/firewall/sets/inet/fw/blocklist");
    assert_eq!(bl["elements"], 2);
    let timed = bl["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["key"] == "192.0.2.66")
        .expect("timed");
    assert_eq!(timed["timeout"], "1h");
    let (code, body) = d.get("/api/v1/firewall/sets/inet/fw/nope", None);
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    let (code, _) = d.get("/api/v1/firewall/sets/bogus/fw/x", None);
    assert_eq!(code, 400);

    // `pirouterd status` shows the firewall section.
    let out = Command::new(bin())
        .args([
            "status",
            "--config",
            dir.0.join("p.toml").to_str().expect("utf8"),
        ])
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("FIREWALL"), "{text}");
    assert!(text.contains("7 rules"), "{text}");
    assert!(text.contains("blocklist (ipv4_addr): 2 elements"), "{text}");
    drop(d);
}

#[test]
fn without_cap_net_admin_the_component_says_what_to_do() {
    let r = Netns::new("nftdcap");
    r.nft_load(RULESET);
    let dir = TempDir::new("nftdcap");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let d = serve_in(
        &r,
        &dir,
        "1s",
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ],
    );
    let st = wait_for(Duration::from_secs(10), || {
        let st = d.get_json("/api/v1/status");
        (st["components"]["nftables"]["state"] == "degraded").then_some(st)
    })
    .expect("nftables degraded");
    assert_eq!(
        st["components"]["nftables"]["last_error"],
        "pirouterd needs CAP_NET_ADMIN to read nftables; run it from the systemd unit or as root"
    );
    let (code, body) = d.get("/api/v1/firewall", None);
    assert_eq!(code, 503);
    assert!(String::from_utf8_lossy(&body).contains("CAP_NET_ADMIN"));
}

#[test]
fn the_demo_ruleset_shows_in_the_api() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let v = wait_for(Duration::from_secs(15), || firewall(&d)).expect("demo firewall snapshot");
    let texts: Vec<&str> = v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["text"].as_str())
        .collect();
    assert!(
        texts.contains(&"tcp dport 36 add @Step1 { ip saddr } counter name \"knocks\" drop"),
        "{texts:#?}"
    );
    assert!(
        texts.contains(&"oifname \"wan0\" ip saddr 192.168.1.0/24 counter masquerade"),
        "{texts:#?}"
    );
    let acct = v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["labels"]["service"] == "ssh")
        .expect("labelled rule");
    assert_eq!(acct["chain"], "accounting");
    assert!(v["sets"]
        .as_array()
        .expect("sets")
        .iter()
        .any(|s| s["name"] == "blocklist" && s["elements"] == 2));
}
