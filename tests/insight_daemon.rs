//! Firewall insight through the real binary, run inside a namespace with its own ruleset:
//! managed-set changes over HTTP (checked with `nft list set`), refusals with the right
//! status, the rules endpoint and the corrupt-state-file path at start.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{bin, Daemon, Netns, TempDir};

const TOKEN: &str = "insight-test-token-0123456789";

const RULESET: &str = "table inet fw {
  set blocklist { type ipv4_addr; flags interval; }
  set knock { type ipv4_addr; flags timeout; }
  set private { type ipv4_addr; }
  chain input { type filter hook input priority 0; ip saddr @blocklist counter drop; }
}
";

fn daemon_in(ns: &Netns, dir: &TempDir) -> Daemon {
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\ntoken_file = \"{}\"\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n\
             [firewall]\nmanaged_sets = [\"inet/fw/blocklist\", \"inet/fw/knock\"]\n",
            token.display(),
            dir.0.display()
        ),
    );
    let sock = dir.0.join("http.sock");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, bin(), "serve", "--config"])
        .arg(&cfg)
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()));
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
