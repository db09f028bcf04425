//! The demo's traffic: a thread that moves into the "internet" namespace and sends a few
//! packets a second at the router, so counters, drops and sets move. Every packet goes to
//! the router's WAN address inside the demo's own namespaces; nothing reaches a real network.

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::{PEER_V4, PEER_V6, ROUTER_V4, ROUTER_V6};
use crate::app::App;

/// Ports scanners like; the demo ruleset drops and logs them.
const SCANNED: &[u16] = &[445, 3389, 8080, 5900, 1433, 25, 6379, 9200];
const SCANNERS: &[&str] = &["203.0.113.10", "203.0.113.11", "203.0.113.12"];
const BLOCKED: &str = "203.0.113.66";
const KNOCKER: &str = "203.0.113.13";

/// Starts the router's tiny web listener (so allowed web traffic completes a handshake) and
/// the traffic thread in the namespace of `peer_pid`.
pub fn start(app: Arc<App>, peer_pid: u32) {
    if let Ok(l) = TcpListener::bind((ROUTER_V4, 443)) {
        let _ = std::thread::Builder::new()
            .name("demo-web".into())
            .spawn(move || {
                for c in l.incoming() {
                    drop(c);
                }
            });
    }
    let spawned = std::thread::Builder::new()
        .name("demo-traffic".into())
        .spawn(move || {
            let ns = match File::open(format!("/proc/{peer_pid}/ns/net")) {
                Ok(f) => f,
                Err(e) => {
                    return log::warn!("demo traffic: cannot open the internet namespace: {e}")
                }
            };
            // Only this thread moves; the rest of the daemon stays in the router's namespace.
            if let Err(e) = setns(ns.as_fd(), CloneFlags::CLONE_NEWNET) {
                return log::warn!("demo traffic: cannot enter the internet namespace: {e}");
            }
            let mut tick: u64 = 0;
            while !app.is_stopping() {
                one_tick(tick);
                tick += 1;
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    if let Err(e) = spawned {
        log::warn!("demo traffic: cannot start: {e}");
    }
}

fn one_tick(tick: u64) {
    let router4: IpAddr = ROUTER_V4.parse().unwrap_or(IpAddr::from([198, 51, 100, 1]));
    let router6: IpAddr = ROUTER_V6
        .parse()
        .unwrap_or(IpAddr::from([0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1]));
    let i = tick as usize;
    // Allowed: DNS and web from the peer.
    udp(
        PEER_V4,
        SocketAddr::new(router4, 53),
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
    );
    if tick % 2 == 0 {
        syn(
            PEER_V4,
            SocketAddr::new(router4, if tick % 4 == 0 { 443 } else { 80 }),
        );
    }
    // Dropped and logged: scans from a few sources.
    syn(
        SCANNERS[i % SCANNERS.len()],
        SocketAddr::new(router4, SCANNED[i % SCANNED.len()]),
    );
    // Dropped by the blocklist.
    if tick % 3 == 0 {
        syn(BLOCKED, SocketAddr::new(router4, 22));
    }
    // Refused loudly (reset) and dropped silently.
    if tick % 5 == 0 {
        syn(SCANNERS[0], SocketAddr::new(router4, 23));
        udp(
            PEER_V4,
            SocketAddr::new(router4, 1900),
            b"M-SEARCH * HTTP/1.1\r\n\r\n",
        );
    }
    // IPv6: dropped and logged.
    if tick % 4 == 1 {
        udp(PEER_V6, SocketAddr::new(router6, 5353), b"v6 probe");
        syn(PEER_V6, SocketAddr::new(router6, 8080));
    }
    // Every 30 s a knock sequence opens SSH for the knocker, which then connects.
    if tick % 60 == 10 {
        for port in [36, 15, 42] {
            syn(KNOCKER, SocketAddr::new(router4, port));
            std::thread::sleep(Duration::from_millis(50));
        }
        syn(KNOCKER, SocketAddr::new(router4, 22));
    }
}

fn udp(from: &str, to: SocketAddr, payload: &[u8]) {
    if let Ok(s) = UdpSocket::bind((from, 0)) {
        let _ = s.send_to(payload, to);
    }
}

/// Sends one TCP SYN from `from` (non-blocking connect, then close).
fn syn(from: &str, to: SocketAddr) {
    let Ok(src) = from.parse::<IpAddr>() else {
        return;
    };
    let family = if src.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let Ok(fd) = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return;
    };
    let src = SockaddrStorage::from(SocketAddr::new(src, 0));
    let dst = SockaddrStorage::from(to);
    if bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &src).is_ok() {
        let _ = connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &dst);
        // Give an accepted SYN time to complete its handshake before the socket closes.
        std::thread::sleep(Duration::from_millis(5));
    }
}
