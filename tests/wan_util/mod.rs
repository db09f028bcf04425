//! Helpers for the WAN tests: run code on a thread that entered a test namespace (network
//! namespaces are per thread, so sockets opened there live in it), listen for router
//! advertisements, read the RA block from `nft -j`.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
};
use pirouterd::wan::ra::RouterAdvert;

use crate::common::Netns;

/// Enters `ns` on the current thread (network namespace only).
pub fn enter(ns: &Netns) {
    let f = std::fs::File::open(ns.path()).expect("open netns");
    setns(f, CloneFlags::CLONE_NEWNET).expect("setns");
}

pub use crate::common::in_ns as in_netns;

/// Two namespaces joined by a veth: `router` (iface `lan0`) and `client` (iface `eth0`),
/// IPv6 duplicate address detection off so link-local addresses are usable at once.
pub fn router_and_client(tag: &str) -> (Netns, Netns) {
    let router = Netns::new(tag);
    let client = Netns::new(tag);
    for ns in [&router, &client] {
        ns.run(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        ns.run(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    }
    router.veth("lan0", "fd00:8::1/64", &client, "eth0", "fd00:8::2/64");
    // wait until both link-local addresses exist (needed as RA source)
    for (ns, dev) in [(&router, "lan0"), (&client, "eth0")] {
        let ok = crate::common::wait_for(Duration::from_secs(5), || {
            let out = ns.run(&["ip", "-6", "addr", "show", "dev", dev, "scope", "link"]);
            (out.contains("fe80") && !out.contains("tentative")).then_some(())
        });
        assert!(ok.is_some(), "no link-local address on {dev}");
    }
    (router, client)
}

/// A raw ICMPv6 socket in a namespace that forwards every RA it receives to a channel.
pub struct RaListener {
    pub rx: mpsc::Receiver<RouterAdvert>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl RaListener {
    pub fn start(ns: &Netns) -> RaListener {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let path = ns.path();
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("open netns");
            setns(file, CloneFlags::CLONE_NEWNET).expect("setns");
            let sock: OwnedFd = socket(
                AddressFamily::Inet6,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::IcmpV6,
            )
            .expect("raw icmpv6 socket");
            setsockopt(
                &sock,
                sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(0, 100_000),
            )
            .expect("timeout");
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::SeqCst) {
                if let Ok(n) = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    if let Some(ra) = RouterAdvert::parse(&buf[..n]) {
                        let _ = tx.send(ra);
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listener ready");
        RaListener {
            rx,
            stop,
            handle: Some(handle),
        }
    }

    /// Collects the RAs that arrive within `window`.
    pub fn collect(&self, window: Duration) -> Vec<RouterAdvert> {
        let deadline = std::time::Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.rx.recv_timeout(left) {
                Ok(ra) => out.push(ra),
                Err(_) => return out,
            }
        }
    }
}

impl Drop for RaListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The `table inet pirouterd` objects from `nft -j list ruleset` in `ns`, if the table exists.
pub struct NftView {
    pub table: serde_json::Value,
    pub chains: Vec<serde_json::Value>,
    pub rules: Vec<serde_json::Value>,
}

pub fn pirouterd_table(ns: &Netns) -> Option<NftView> {
    let j = ns.nft_json();
    let items = j["nftables"].as_array().expect("nftables array").clone();
    let ours = |o: &serde_json::Value| o["family"] == "inet" && o["table"] == "pirouterd";
    let table = items
        .iter()
        .filter_map(|o| o.get("table"))
        .find(|t| t["family"] == "inet" && t["name"] == "pirouterd")?
        .clone();
    Some(NftView {
        table,
        chains: items
            .iter()
            .filter_map(|o| o.get("chain"))
            .filter(|c| ours(c))
            .cloned()
            .collect(),
        rules: items
            .iter()
            .filter_map(|o| o.get("rule"))
            .filter(|r| ours(r))
            .cloned()
            .collect(),
    })
}

/// Packets counted by the drop rule according to `nft -j`.
pub fn nft_drop_count(view: &NftView) -> u64 {
    view.rules
        .iter()
        .filter(|r| {
            r["expr"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x.get("drop").is_some()))
        })
        .flat_map(|r| r["expr"].as_array().cloned().unwrap_or_default())
        .filter_map(|x| x.get("counter").and_then(|c| c["packets"].as_u64()))
        .sum()
}
