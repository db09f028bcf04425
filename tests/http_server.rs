//! The real binary over real sockets: auth, limits, routing errors, unix listeners, idle
//! clients, SIGTERM.
mod common;

use common::{http_raw, Daemon, TempDir};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const TOKEN: &str = "test-token-0123456789abcdef";

/// A daemon with a token file and a state dir, listening on an ephemeral port.
fn daemon(extra: &str) -> (Daemon, TempDir) {
    let dir = TempDir::new("http");
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\ntoken_file = \"{}\"\nmax_body = 2048\n{extra}\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n",
            token.display(),
            dir.0.display()
        ),
    );
    let d = Daemon::start(&[
        "serve",
        "--config",
        cfg.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    (d, dir)
}

#[test]
fn reads_are_open_and_answer_json() {
    let (d, _dir) = daemon("");
    let s = d.get_json("/api/v1/status");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["components"]["http"]["state"], "up");
    let h = d.get_json("/healthz");
    assert_eq!(h["status"], "serving");
    let (code, body) = d.get("/", None);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("<title>pirouterd</title>"));
    let (code, body) = d.get("/metrics", None);
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("pirouterd_build_info{"), "{text}");
    assert!(
        text.contains("pirouterd_component_up{component=\"http\"} 1"),
        "{text}"
    );
}

#[test]
fn changes_without_or_with_a_wrong_token_are_refused() {
    let (d, _dir) = daemon("");
    let (code, headers, body) = d.request("POST", "/api/v1/relays/x", None, Some("{\"on\":true}"));
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    assert!(headers
        .iter()
        .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json error");
    assert_eq!(v["error"]["code"], "unauthorized");
    let (code, _, _) = d.request("POST", "/api/v1/relays/x", Some("nope"), Some("{}"));
    assert_eq!(code, 401);
    // With the right token the request passes auth and reaches routing.
    let (code, _, _) = d.request("DELETE", "/no/such/thing", Some(TOKEN), None);
    assert_eq!(code, 404);
}

#[test]
fn without_a_token_file_changes_say_how_to_set_one() {
    let dir = TempDir::new("notoken");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n",
            dir.0.display()
        ),
    );
    let d = Daemon::start(&[
        "serve",
        "--config",
        cfg.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let (code, _, body) = d.request(
        "POST",
        "/api/v1/wan/ra-block",
        Some("anything"),
        Some("{\"mode\":\"on\"}"),
    );
    assert_eq!(code, 403);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["error"]["code"], "no_token_configured");
    assert!(v["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("http.token_file"));
}

#[test]
fn limits_give_413_414_431_and_routing_gives_404_405() {
    let (d, _dir) = daemon("");
    let big = "x".repeat(4096);
    let (code, _, _) = d.request("POST", "/api/v1/relays/x", Some(TOKEN), Some(&big));
    assert_eq!(code, 413);
    let long = format!("/api/v1/status?{}", "a".repeat(9000));
    let (code, _) = d.get(&long, None);
    assert_eq!(code, 414);
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (code, _, _) = d.raw(
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{many}\r\n").as_bytes(),
    );
    assert_eq!(code, 431);
    // One huge header line is refused as soon as it passes the limit, not buffered whole.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let (code, _, _) = d.raw(huge.as_bytes());
    assert_eq!(code, 431);
    let (code, _) = d.get("/api/v1/nothing-here", None);
    assert_eq!(code, 404);
    let (code, headers, _) = d.request("PUT", "/api/v1/status", Some(TOKEN), None);
    assert_eq!(code, 405);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "allow" && v == "GET, HEAD"));
    // A body that is not JSON where JSON is expected is a 4xx, never a crash: the daemon
    // still answers afterwards.
    let (code, _, _) = d.raw(b"GARBAGE\r\n\r\n");
    assert!((400..500).contains(&code), "{code}");
    assert_eq!(d.get("/healthz", None).0, 200);
}

#[test]
fn unix_socket_listener_serves_and_is_removed_on_sigterm() {
    let dir = TempDir::new("unix");
    let sock = dir.0.join("http.sock");
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\nlisten = [\"unix:{}\"]\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n",
            sock.display(),
            dir.0.display()
        ),
    );
    let mut d = Daemon::start(&["serve", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(d.addr, format!("unix:{}", sock.display()));
    let (code, _, body) = http_raw(
        &d.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let status = d
        .guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "clean exit, got {status:?}; stderr:\n{}",
        d.stderr()
    );
    assert!(!sock.exists(), "the socket file is removed on stop");
    assert!(d.stderr().contains("SIGTERM: stopping"));
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let (mut d, _dir) = daemon("");
    // Start a request whose body arrives late: the worker is inside it when SIGTERM comes.
    let addr = d.addr.clone();
    let slow = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        let body = "{\"on\": true}";
        let head = format!(
            "POST /api/v1/relays/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("head");
        std::thread::sleep(Duration::from_millis(700));
        s.write_all(body.as_bytes()).expect("body");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        common::parse_http(&out).0
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = d
        .guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits");
    assert!(status.success());
    // The request was answered (404: no relays in this config), not cut off.
    assert_eq!(slow.join().expect("thread"), 404);
}

#[test]
fn idle_connections_do_not_starve_the_workers() {
    let (d, _dir) = daemon("workers = 2\nclient_timeout = \"3s\"");
    let addr = d.addr.clone();
    // 200 clients connect and send nothing (or half a request line).
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|i| {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(&addr).expect("connect");
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /heal");
            }
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (code, _) = d.get("/healthz", None);
    assert_eq!(
        code, 200,
        "a new client is answered while 200 idle ones are held open"
    );
    // After the client timeout the idle connections are closed by the server.
    std::thread::sleep(Duration::from_secs(4));
    let closed = idle
        .into_iter()
        .filter(|s| {
            use std::io::Read;
            let mut s = s;
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut b = [0u8; 256];
            // EOF, a 408, or a reset all mean the server let go; a timeout means it did not.
            match s.read(&mut b) {
                Ok(_n) => true,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        })
        .count();
    assert_eq!(
        closed, 200,
        "every idle connection was closed (EOF or 408) after client_timeout"
    );
}

#[test]
fn world_readable_token_file_is_refused_at_start() {
    let dir = TempDir::new("perm");
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = dir.file(
        "p.toml",
        &format!("[http]\ntoken_file = \"{}\"\n", token.display()),
    );
    let out = std::process::Command::new(common::bin())
        .args([
            "serve",
            "--config",
            cfg.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("world-readable") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn starts_before_its_lan_address_exists_and_serves_once_it_appears() {
    // At boot the LAN address may come later than the unit (DHCP, a bridge coming up).
    let ns = common::Netns::new("freebind");
    let dir = TempDir::new("freebind");
    let cfg = dir.file("p.toml", "[nat64]\nenabled = false\n");
    let mut cmd = std::process::Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &ns.name,
        common::bin(),
        "serve",
        "--config",
    ])
    .arg(&cfg)
    .args(["--listen", "10.77.0.1:9880", "--listen", "[fd77::1]:9880"]);
    let _d = Daemon::start_cmd(cmd);
    ns.run(&["ip", "addr", "add", "10.77.0.1/24", "dev", "lo"]);
    ns.run(&["ip", "addr", "add", "fd77::1/64", "dev", "lo", "nodad"]);
    for url in [
        "http://10.77.0.1:9880/healthz",
        "http://[fd77::1]:9880/healthz",
    ] {
        let body = ns.run(&["curl", "-sS", "--max-time", "5", url]);
        assert!(body.contains("\"status\":\"serving\""), "{url}: {body}");
    }
}
