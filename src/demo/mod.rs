//! `pirouterd demo`: the whole product on any Linux machine, in one command.
//!
//! Binds its web listener on the host's 127.0.0.1 first, then moves into a private user +
//! network namespace where it builds a small router: `lo`, and a veth `wan0` whose peer
//! `isp0` lives in a second namespace playing "the internet" (198.51.100.2 plus a few
//! documentation-range sources). It loads the example ruleset in [`RULESET`] with the real
//! kernel (`nft -f`), and a traffic thread inside the internet namespace sends a little
//! traffic at the router: allowed SSH and web, scans that get dropped and logged, a
//! blocklisted source, and now and then a port-knocking sequence. Nothing leaves the
//! namespaces; everything vanishes when the demo exits.

pub mod traffic;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use crate::app::App;
use crate::config::{Config, GpioBackendKind, ListenAddr};
use crate::daemon;
use crate::http::server;
use crate::sys::clock::SystemClock;
use crate::sys::netns;

/// The example router ruleset the demo loads.
pub const RULESET: &str = include_str!("ruleset.nft");

/// The router's WAN interface in the demo.
pub const WAN_IF: &str = "wan0";
/// The internet side of the veth.
pub const PEER_IF: &str = "isp0";
/// The router's WAN address.
pub const ROUTER_V4: &str = "198.51.100.1";
/// The internet peer's main address.
pub const PEER_V4: &str = "198.51.100.2";
/// The router's WAN IPv6 address.
pub const ROUTER_V6: &str = "2001:db8:ffff::1";
/// The internet peer's IPv6 address.
pub const PEER_V6: &str = "2001:db8:ffff::2";
/// Extra internet sources (scanners, a blocklisted host, a knocker), all on the peer.
pub const PEER_SOURCES: &[&str] = &[
    "203.0.113.10",
    "203.0.113.11",
    "203.0.113.12",
    "203.0.113.13",
    "203.0.113.66",
    "198.51.100.200",
];

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The listener could not be bound.
    #[error(transparent)]
    Http(#[from] server::HttpError),
    /// No private namespaces.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// A setup command (`ip`, `nft`, `unshare`) is missing or failed.
    #[error("demo setup: `{command}` failed: {message}")]
    Setup { command: String, message: String },
    /// The daemon failed.
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    /// The temporary state directory could not be created.
    #[error("cannot create the demo's state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The demo's config: every area on, simulated GPIO, state in a temporary directory.
pub fn config(listen: Vec<ListenAddr>, state_dir: PathBuf) -> Config {
    let mut c = Config::default();
    if !listen.is_empty() {
        c.http.listen = listen;
    }
    c.state.dir = state_dir;
    c.gpio.backend = GpioBackendKind::Sim;
    crate::relays::area::demo_config(&mut c);
    c.wan.interface = Some(WAN_IF.into());
    // Short debounce so a newcomer flapping the simulated WAN sees the RA block within seconds.
    c.wan.down_after = std::time::Duration::from_secs(3);
    c.wan.up_after = std::time::Duration::from_secs(5);
    c.drops.nflog_groups = vec![1];
    c.firewall.managed_sets = vec![crate::config::SetRef {
        family: "inet".into(),
        table: "filter".into(),
        set: "blocklist".into(),
    }];
    c
}

/// Runs the demo until Ctrl-C. Must be called while the process is single-threaded.
pub fn run(listen: Vec<ListenAddr>) -> Result<(), DemoError> {
    let state_dir = std::env::temp_dir().join(format!("pirouterd-demo-{}", std::process::id()));
    std::fs::create_dir_all(&state_dir).map_err(|source| DemoError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    let _cleanup = RemoveDir(state_dir.clone());
    let mut cfg = config(listen, state_dir.clone());
    // NAT64 from a fake `jool` printing recorded output (labelled as sample data).
    match crate::nat64::demo::prepare(&state_dir) {
        Ok(jool) => cfg.nat64.jool = jool,
        Err(e) => log::warn!("demo: cannot write the sample jool: {e}"),
    }
    // Bound in the host's namespace, so the browser on this machine can reach it.
    let bound = server::bind(&cfg.http.listen, cfg.http.client_timeout)?;
    netns::enter_private()?;
    let peer = build_network()?;
    load_ruleset()?;

    let token = random_token();
    let app = Arc::new(App::new(
        cfg,
        Arc::new(SystemClock),
        Some(token.clone()),
        true,
    ));
    app.wan.set_demo_peer(peer.pid());
    traffic::start(app.clone(), peer.pid());
    let result = daemon::run(app, bound, |addrs| {
        for a in addrs {
            if let Some(path) = a.strip_prefix("unix:") {
                println!("pirouterd demo serving on unix socket {path}");
            } else {
                println!("pirouterd demo: open http://{a}/");
            }
        }
        println!("token for changes (paste it into the page when it asks): {token}");
        println!("press Ctrl-C to stop; the demo's namespaces vanish with it");
        let _ = std::io::stdout().flush();
    });
    drop(peer);
    result.map_err(DemoError::from)
}

struct RemoveDir(PathBuf);
impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The internet namespace's child process, killed on drop (setup failures included).
struct PeerGuard(Option<Child>);
impl PeerGuard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }
}
impl Drop for PeerGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn cmd(args: &[&str]) -> Result<(), DemoError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DemoError::Setup {
            command: args.join(" "),
            message: format!(
                "{e} (the demo needs iproute2, nftables and util-linux: see the README)"
            ),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DemoError::Setup {
            command: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Starts the "internet" namespace (a sleeping child in its own network namespace, killed
/// with us), and wires `wan0` <-> `isp0` between them.
fn build_network() -> Result<PeerGuard, DemoError> {
    cmd(&["ip", "link", "set", "lo", "up"])?;
    let peer = Command::new("setpriv")
        .args([
            "--pdeathsig",
            "KILL",
            "--",
            "unshare",
            "--net",
            "--",
            "sleep",
            "infinity",
        ])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| DemoError::Setup {
            command: "setpriv ... unshare --net sleep".into(),
            message: e.to_string(),
        })?;
    let guard = PeerGuard(Some(peer));
    let pid = guard.pid().to_string();
    // The child needs a moment to unshare; its namespace differs from ours once it has.
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    for _ in 0..100 {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
        if theirs.is_some() && theirs != ours {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let peer_ns = |args: &[&str]| {
        let mut full = vec!["nsenter", "--net", "-t", pid.as_str()];
        full.extend_from_slice(args);
        cmd(&full)
    };
    cmd(&[
        "ip", "link", "add", WAN_IF, "type", "veth", "peer", "name", PEER_IF,
    ])?;
    cmd(&["ip", "link", "set", PEER_IF, "netns", &pid])?;
    cmd(&[
        "ip",
        "addr",
        "add",
        &format!("{ROUTER_V4}/24"),
        "dev",
        WAN_IF,
    ])?;
    cmd(&[
        "ip",
        "addr",
        "add",
        &format!("{ROUTER_V6}/64"),
        "dev",
        WAN_IF,
        "nodad",
    ])?;
    cmd(&["ip", "link", "set", WAN_IF, "up"])?;
    cmd(&["ip", "route", "add", "203.0.113.0/24", "via", PEER_V4])?;
    peer_ns(&["ip", "link", "set", "lo", "up"])?;
    peer_ns(&[
        "ip",
        "addr",
        "add",
        &format!("{PEER_V4}/24"),
        "dev",
        PEER_IF,
    ])?;
    peer_ns(&[
        "ip",
        "addr",
        "add",
        &format!("{PEER_V6}/64"),
        "dev",
        PEER_IF,
        "nodad",
    ])?;
    for s in PEER_SOURCES {
        peer_ns(&["ip", "addr", "add", &format!("{s}/32"), "dev", PEER_IF])?;
    }
    peer_ns(&["ip", "link", "set", PEER_IF, "up"])?;
    peer_ns(&["ip", "route", "add", "default", "via", ROUTER_V4])?;
    Ok(guard)
}

fn load_ruleset() -> Result<(), DemoError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DemoError::Setup {
            command: "nft -f -".into(),
            message: format!(
                "{e}: the demo loads its ruleset with the nft command (Debian package nftables)"
            ),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(RULESET.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| DemoError::Setup {
        command: "nft -f -".into(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(DemoError::Setup {
            command: "nft -f -".into(),
            message: String::from_utf8_lossy(&out.stderr).into(),
        });
    }
    Ok(())
}

/// 32 random bytes from the kernel, hex.
fn random_token() -> String {
    let mut buf = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
