//! Helpers shared by the nftables tests: running library code inside
//! a test namespace, sending packets from one, and reading `nft -j list ruleset` into the
//! same shape as a snapshot for comparison.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use pirouterd::firewall::{Family, RulesetSnapshot};
use serde_json::Value;

use crate::common::Netns;

pub use crate::common::in_ns;

fn sockaddr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip address"), port)
}

/// Sends one TCP SYN (connect attempt, short timeout) from inside `ns`.
pub fn tcp_syn(ns: &Netns, to: &str, port: u16) {
    let addr = sockaddr(to, port);
    in_ns(ns, move || {
        let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    });
}

/// Sends `n` UDP datagrams of `len` bytes from inside `ns`.
pub fn udp_send(ns: &Netns, to: &str, port: u16, n: usize, len: usize) {
    let addr = sockaddr(to, port);
    in_ns(ns, move || {
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let s = UdpSocket::bind(bind).expect("bind");
        for _ in 0..n {
            let _ = s.send_to(&vec![7u8; len], addr);
        }
    });
}

/// (family, table, chain, handle) of a rule.
pub type RuleKey = (String, String, String, u64);
/// (family, table, name) of a named object or set.
pub type ObjKey = (String, String, String);

/// What `nft -j list ruleset` says, keyed like the snapshot.
#[derive(Debug, Default)]
pub struct NftView {
    /// (family, table, chain, handle) -> (packets, bytes, has_counter, exprs)
    pub rules: HashMap<RuleKey, (u64, u64, bool, Value)>,
    /// (family, table, name) -> (packets, bytes)
    pub counters: HashMap<ObjKey, (u64, u64)>,
    /// (family, table, name) -> (bytes, used)
    pub quotas: HashMap<ObjKey, (u64, u64)>,
    /// (family, table, name) -> element count
    pub sets: HashMap<ObjKey, usize>,
    /// (family, table, name, handle) of chains
    pub chains: Vec<(String, String, String)>,
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

pub fn nft_view(j: &Value) -> NftView {
    let mut out = NftView::default();
    for o in j["nftables"].as_array().expect("nftables array") {
        if let Some(r) = o.get("rule") {
            let (mut p, mut b, mut has) = (0, 0, false);
            for e in r["expr"].as_array().into_iter().flatten() {
                if let Some(c) = e.get("counter") {
                    if c.get("packets").is_some() {
                        has = true;
                        p += c["packets"].as_u64().unwrap_or(0);
                        b += c["bytes"].as_u64().unwrap_or(0);
                    }
                }
            }
            let key = (
                s(r, "family"),
                s(r, "table"),
                s(r, "chain"),
                r["handle"].as_u64().expect("handle"),
            );
            out.rules.insert(key, (p, b, has, r["expr"].clone()));
        } else if let Some(c) = o.get("counter") {
            out.counters.insert(
                (s(c, "family"), s(c, "table"), s(c, "name")),
                (
                    c["packets"].as_u64().unwrap_or(0),
                    c["bytes"].as_u64().unwrap_or(0),
                ),
            );
        } else if let Some(q) = o.get("quota") {
            out.quotas.insert(
                (s(q, "family"), s(q, "table"), s(q, "name")),
                (
                    q["bytes"].as_u64().unwrap_or(0),
                    q["used"].as_u64().unwrap_or(0),
                ),
            );
        } else if let Some(st) = o.get("set").or_else(|| o.get("map")) {
            let n = st["elem"].as_array().map(|a| a.len()).unwrap_or(0);
            out.sets
                .insert((s(st, "family"), s(st, "table"), s(st, "name")), n);
        } else if let Some(c) = o.get("chain") {
            out.chains
                .push((s(c, "family"), s(c, "table"), s(c, "name")));
        }
    }
    out
}

/// Checks snapshot `a`, then nft's view `j`, then snapshot `b`, taken in that order with no
/// ruleset change in between: every counter nft saw lies between what `a` and `b` saw, and
/// equals them when they agree. Returns how many rules had packets (to prove traffic).
pub fn check_same_moment(a: &RulesetSnapshot, j: &NftView, b: &RulesetSnapshot) -> usize {
    assert_eq!(
        a.generation, b.generation,
        "ruleset changed during the comparison"
    );
    // Every rule, both ways.
    let ours: HashMap<_, _> = a
        .rules
        .iter()
        .map(|r| {
            (
                (
                    r.family().to_string(),
                    r.table().to_string(),
                    r.chain().to_string(),
                    r.handle,
                ),
                r,
            )
        })
        .collect();
    assert_eq!(ours.len(), a.rules.len(), "rule keys are unique");
    assert_eq!(ours.len(), j.rules.len(), "same number of rules as nft -j");
    let later: HashMap<_, _> = b
        .rules
        .iter()
        .map(|r| {
            (
                (
                    r.family().to_string(),
                    r.table().to_string(),
                    r.chain().to_string(),
                    r.handle,
                ),
                r,
            )
        })
        .collect();
    let mut hit = 0;
    for (key, (p, by, has, _)) in &j.rules {
        let r = ours
            .get(key)
            .unwrap_or_else(|| panic!("rule {key:?} missing from the snapshot"));
        let r2 = later.get(key).expect("rule in second snapshot");
        assert_eq!(
            r.has_counter(),
            *has,
            "has_counter of {key:?}: {}",
            r.text()
        );
        assert!(!r.undecodable, "rule {key:?} undecodable: {}", r.text());
        assert!(
            r.packets() <= *p && *p <= r2.packets() && r.bytes() <= *by && *by <= r2.bytes(),
            "counter of {key:?} ({}): ours {}/{} .. {}/{}, nft {p}/{by}",
            r.text(),
            r.packets(),
            r.bytes(),
            r2.packets(),
            r2.bytes()
        );
        if r.counter == r2.counter {
            assert_eq!((r.packets(), r.bytes()), (*p, *by), "counter of {key:?}");
        }
        if *p > 0 {
            hit += 1;
        }
    }
    // Named counters and quotas.
    let mut named = 0;
    for o in &a.objects {
        let key = (
            o.family.to_string(),
            o.table.to_string(),
            o.name.to_string(),
        );
        match &o.value {
            pirouterd::firewall::ObjectValue::Counter(c) => {
                let (p, by) = j
                    .counters
                    .get(&key)
                    .unwrap_or_else(|| panic!("counter {key:?} not in nft -j"));
                let c2 = b
                    .counters()
                    .find(|(o2, _)| o2.name == o.name && o2.table == o.table)
                    .map(|x| x.1)
                    .expect("counter in b");
                assert!(
                    c.packets <= *p && *p <= c2.packets && c.bytes <= *by && *by <= c2.bytes,
                    "named counter {key:?}"
                );
                named += 1;
            }
            pirouterd::firewall::ObjectValue::Quota {
                bytes, consumed, ..
            } => {
                let (qb, used) = j
                    .quotas
                    .get(&key)
                    .unwrap_or_else(|| panic!("quota {key:?} not in nft -j"));
                assert_eq!(bytes, qb, "quota size {key:?}");
                assert!(consumed <= used, "quota used {key:?}");
            }
            _ => {}
        }
    }
    assert_eq!(
        named,
        j.counters.len(),
        "every named counter is in the snapshot"
    );
    // Set element counts.
    assert_eq!(
        a.sets.len(),
        j.sets.len(),
        "same named sets and maps as nft -j"
    );
    for st in &a.sets {
        let key = (
            st.family.to_string(),
            st.table.to_string(),
            st.name.to_string(),
        );
        let n = j
            .sets
            .get(&key)
            .unwrap_or_else(|| panic!("set {key:?} not in nft -j"));
        let later = b
            .set(st.family, &st.table, &st.name)
            .and_then(|x| x.element_count);
        if st.element_count == later {
            assert_eq!(
                st.element_count,
                Some(*n as u64),
                "element count of {key:?}"
            );
        }
    }
    hit
}

/// Family of an nft -j family string.
pub fn fam(s: &str) -> Family {
    Family::parse(s).expect("family")
}
