//! NFLOG for real: a ruleset with `log group N prefix "..." drop` rules in a namespace, real
//! packets of each protocol (TCP SYN, UDP, ICMP echo, ICMPv6 echo) sent from a second
//! namespace over veth, and our reader (bound inside the first namespace) must see exactly
//! what was sent and what the rules' counters say.
#![allow(clippy::unwrap_used)]

mod common;
use common::in_ns;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{wait_for, Netns};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
};
use pirouterd::drops::aggregate::{Aggregator, Window};
use pirouterd::drops::{DropEvent, Proto, TcpFlags};
use pirouterd::sys::nflog::{NflogOptions, NflogSocket};

const RULESET: &str = r#"
table inet t {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "vfw" meta l4proto tcp tcp dport 2222 counter log prefix "nft-dropped: " group 5 drop comment "tcp"
        iifname "vfw" meta l4proto udp udp dport 6969 counter log prefix "nft-dropped: " group 5 drop comment "udp"
        iifname "vfw" icmp type echo-request counter log prefix "nft-dropped: " group 5 drop comment "icmp"
        iifname "vfw" icmpv6 type echo-request counter log prefix "v6-dropped: " group 6 drop comment "icmpv6"
    }
}
"#;

/// Two namespaces joined by veth: `fw` (10.77.0.1, fd00:77::1) holds the ruleset and the
/// reader, `peer` (10.77.0.2, fd00:77::2) sends.
fn setup(tag: &str) -> (Netns, Netns) {
    let fw = Netns::new(tag);
    let peer = Netns::new(tag);
    fw.veth(
        "vfw",
        "10.77.0.1/24,fd00:77::1/64",
        &peer,
        "vpeer",
        "10.77.0.2/24,fd00:77::2/64",
    );
    fw.nft_load(RULESET);
    (fw, peer)
}

struct Reader {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<DropEvent<'static>>>>,
    handle: Option<JoinHandle<(u64, u64)>>,
}

impl Reader {
    /// Starts a reader thread inside `ns`; returns once its groups are bound. `pause` keeps
    /// it from reading until the flag is cleared (to overflow its buffer on purpose).
    fn start(ns: &Netns, opts: NflogOptions, pause: Arc<AtomicBool>) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let path = ns.path();
        let (s, e) = (stop.clone(), events.clone());
        let handle = std::thread::spawn(move || {
            let f = File::open(path).expect("open netns");
            setns(f, CloneFlags::CLONE_NEWNET).expect("setns");
            let mut sock = NflogSocket::open(&opts).expect("bind NFLOG groups");
            tx.send(()).expect("ready");
            while !s.load(Ordering::SeqCst) {
                if pause.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                sock.recv_events(|ev| e.lock().unwrap().push(ev.clone().into_owned()))
                    .expect("recv");
            }
            let r = (sock.lost, sock.overruns);
            sock.close();
            r
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("reader bound its groups");
        Reader {
            stop,
            events,
            handle: Some(handle),
        }
    }

    fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Waits for `n` events, then a little longer to catch any extra, and stops.
    fn finish(mut self, n: usize) -> (Vec<DropEvent<'static>>, u64, u64) {
        wait_for(Duration::from_secs(10), || {
            (self.count() >= n).then_some(())
        });
        std::thread::sleep(Duration::from_millis(400));
        self.stop.store(true, Ordering::SeqCst);
        let (lost, overruns) = self.handle.take().unwrap().join().expect("reader thread");
        let ev = std::mem::take(&mut *self.events.lock().unwrap());
        (ev, lost, overruns)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Packets counted by each rule, by comment, from `nft -j list ruleset`.
fn rule_counters(ns: &Netns) -> BTreeMap<String, u64> {
    let j = ns.nft_json();
    let mut out = BTreeMap::new();
    for o in j["nftables"].as_array().expect("array") {
        let Some(rule) = o.get("rule") else { continue };
        let comment = rule["comment"].as_str().unwrap_or("").to_string();
        let packets = rule["expr"]
            .as_array()
            .expect("expr")
            .iter()
            .find_map(|e| e.get("counter"))
            .and_then(|c| c["packets"].as_u64())
            .expect("counter");
        out.insert(comment, packets);
    }
    out
}

/// A TCP SYN from `sport` to 10.77.0.1:`dport`, through a raw socket (so exactly one packet
/// leaves, no retransmissions). The kernel adds the IP header.
fn tcp_syn(fd: &std::os::fd::OwnedFd, sport: u16, dport: u16) {
    let src = Ipv4Addr::new(10, 77, 0, 2).octets();
    let dst = Ipv4Addr::new(10, 77, 0, 1).octets();
    let mut seg = [0u8; 20];
    seg[..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = TcpFlags::SYN;
    seg[14..16].copy_from_slice(&1024u16.to_be_bytes());
    // Checksum over the pseudo-header and the segment.
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&src);
    add(&dst);
    add(&[0, 6, 0, 20]);
    add(&seg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    seg[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let to = SockaddrIn::new(10, 77, 0, 1, 0);
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(fd),
        &seg,
        &to,
        MsgFlags::empty(),
    )
    .expect("send SYN");
}

#[test]
fn every_protocol_is_counted_exactly() {
    let (fw, peer) = setup("drops");
    let opts = NflogOptions {
        groups: vec![5, 6],
        ..NflogOptions::default()
    };
    let reader = Reader::start(&fw, opts, Arc::new(AtomicBool::new(false)));

    const TCP: u16 = 7;
    const UDP: u16 = 5;
    const ICMP: u16 = 3;
    const ICMP6: u16 = 4;
    in_ns(&peer, || {
        let raw = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::Tcp,
        )
        .expect("raw socket");
        for i in 0..TCP {
            tcp_syn(&raw, 40000 + i, 2222);
        }
        let udp = UdpSocket::bind("10.77.0.2:0").expect("udp bind");
        for i in 0..UDP {
            udp.send_to(&[i as u8; 30], "10.77.0.1:6969")
                .expect("udp send");
        }
    });
    let ping = |v6: bool, n: u16| {
        let count = n.to_string();
        let mut args = vec!["ping", "-c", &count, "-i", "0.2", "-W", "1", "-q"];
        args.extend(if v6 {
            ["-6", "fd00:77::1"]
        } else {
            ["-4", "10.77.0.1"]
        });
        // All requests are dropped, so ping reports failure: only the count matters here.
        let out = peer.exec(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("{n} packets transmitted, 0 received")),
            "{text}"
        );
    };
    ping(false, ICMP);
    ping(true, ICMP6);

    let total = usize::from(TCP + UDP + ICMP + ICMP6);
    let (events, lost, _) = reader.finish(total);
    assert_eq!(lost, 0);
    assert_eq!(events.len(), total, "{events:#?}");

    let counters = rule_counters(&fw);
    let mut by_proto: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        *by_proto
            .entry(e.proto.expect("proto").to_string())
            .or_default() += 1;
    }
    let expect = |name: &str, n: u16| {
        assert_eq!(counters[name], u64::from(n), "nft counter for {name}");
        assert_eq!(
            by_proto.get(name).copied().unwrap_or(0),
            u64::from(n),
            "seen {name}"
        );
    };
    expect("tcp", TCP);
    expect("udp", UDP);
    expect("icmp", ICMP);
    expect("icmpv6", ICMP6);

    for e in &events {
        assert_eq!(e.in_iface.as_str(), "vfw");
        assert!(e.out_iface.is_empty());
        assert_eq!(e.hook, Some(1), "input hook");
        assert!(e.mac_src.is_some(), "hardware address");
        match e.proto.unwrap() {
            Proto::Tcp => {
                assert_eq!(e.prefix, "nft-dropped: ");
                assert_eq!(e.src, Some("10.77.0.2".parse().unwrap()));
                assert_eq!(e.dport, Some(2222));
                assert!((40000..40000 + TCP).contains(&e.sport.unwrap()));
                assert_eq!(e.tcp_flags, Some(TcpFlags(TcpFlags::SYN)));
                assert_eq!(e.len, 40);
            }
            Proto::Udp => {
                assert_eq!(e.dport, Some(6969));
                assert_eq!(e.len, 20 + 8 + 30);
            }
            Proto::Icmp => assert_eq!(e.icmp, Some((8, 0))),
            Proto::Icmpv6 => {
                assert_eq!(e.prefix, "v6-dropped: ");
                assert_eq!(e.icmp, Some((128, 0)));
                assert_eq!(e.src, Some("fd00:77::2".parse().unwrap()));
                assert_eq!(e.dst, Some("fd00:77::1".parse().unwrap()));
            }
            p => panic!("unexpected protocol {p}"),
        }
    }
    let ports: Vec<u16> = events.iter().filter_map(|e| e.sport).collect();
    let mut uniq = ports.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(
        uniq.len(),
        ports.len() - usize::from(UDP) + 1,
        "each SYN once"
    );

    // The aggregator sums them the same way.
    let mut agg = Aggregator::default();
    let now = 1_767_225_600_000;
    for e in &events {
        agg.record(e, now);
    }
    let w = agg.window(Window::FiveMinutes, now, 10);
    assert_eq!(w.events, total as u64);
    assert_eq!(w.sources[0].key.addr.to_string(), "10.77.0.2");
    assert_eq!(w.sources[0].count, u64::from(TCP + UDP + ICMP));
    assert_eq!(w.ports[0].key.port, 2222);
    assert_eq!(w.ports[0].count, u64::from(TCP));
    assert_eq!(w.interfaces[0].key.name, "vfw");
    let prefixes: BTreeMap<String, u64> = w
        .prefixes
        .iter()
        .map(|p| (p.key.name.clone(), p.count))
        .collect();
    assert_eq!(prefixes["nft-dropped"], u64::from(TCP + UDP + ICMP));
    assert_eq!(prefixes["v6-dropped"], u64::from(ICMP6));
}

#[test]
fn overflowing_the_socket_buffer_is_counted_not_fatal() {
    let (fw, peer) = setup("dropsflood");
    let pause = Arc::new(AtomicBool::new(true));
    let opts = NflogOptions {
        groups: vec![5],
        rcvbuf: 4096,
        qthresh: 1,
        flush_timeout_cs: 1,
        ..NflogOptions::default()
    };
    let reader = Reader::start(&fw, opts, pause.clone());
    const FLOOD: usize = 3000;
    in_ns(&peer, || {
        let udp = UdpSocket::bind("10.77.0.2:0").expect("udp bind");
        let to: SocketAddr = "10.77.0.1:6969".parse().unwrap();
        for _ in 0..FLOOD {
            udp.send_to(&[0u8; 100], to).expect("udp send");
        }
    });
    // Let the reader drain what fit, then one more packet reveals the gap.
    pause.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    in_ns(&peer, || {
        let udp = UdpSocket::bind("10.77.0.2:0").expect("udp bind");
        udp.send_to(b"last", "10.77.0.1:6969").expect("udp send");
    });
    wait_for(Duration::from_secs(5), || {
        reader
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.len == 20 + 8 + 4)
            .then_some(())
    })
    .expect("the last packet arrives after the overflow");
    let (events, lost, overruns) = reader.finish(0);
    eprintln!(
        "flood: received {} lost {lost} overruns {overruns}",
        events.len()
    );
    let counters = rule_counters(&fw);
    assert_eq!(counters["udp"], FLOOD as u64 + 1);
    assert!(overruns >= 1, "the buffer overflowed");
    assert!(lost > 0, "losses were counted");
    assert!(events.len() < FLOOD, "some were lost: {}", events.len());
    assert_eq!(
        events.len() as u64 + lost,
        FLOOD as u64 + 1,
        "received + lost = sent"
    );
}

#[test]
fn a_group_bound_twice_is_refused_with_a_clear_error() {
    let (fw, _peer) = setup("dropsbusy");
    let opts = NflogOptions {
        groups: vec![9],
        ..NflogOptions::default()
    };
    let (tx, rx) = mpsc::channel();
    let path = fw.path();
    let h = std::thread::spawn(move || {
        let f = File::open(path).expect("open netns");
        setns(f, CloneFlags::CLONE_NEWNET).expect("setns");
        let first = NflogSocket::open(&opts).expect("first bind");
        let second = NflogSocket::open(&opts);
        tx.send(second.err().map(|e| e.to_string())).unwrap();
        drop(first);
    });
    h.join().unwrap();
    let err = rx.recv().unwrap().expect("second bind must fail");
    eprintln!("second bind: {err}");
    assert!(err.contains("group 9"), "{err}");
}
