//! What an operator wants at a glance, computed from one session table: sessions by protocol
//! and state, BIB entries in use, the busiest IPv6 clients, and how full pool4 is.

use super::session::{Proto, SessionTable, State};
use super::tables::Pool4Entry;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv6Addr;

/// Sessions of one protocol in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateCount {
    pub proto: Proto,
    /// Jool's state name; `null` for UDP and ICMP, which have none.
    pub state: Option<String>,
    pub sessions: u64,
}

/// An IPv6 client and how many sessions it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientCount {
    pub address: Ipv6Addr,
    pub sessions: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
}

/// Pool4 use for one protocol: ports (ICMP ids for ICMP) offered and ports bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool4Usage {
    pub proto: Proto,
    pub ports_total: u64,
    /// Distinct pool4 transport addresses held by sessions, i.e. dynamic BIB entries in use.
    pub ports_used: u64,
    /// `ports_used / ports_total`, 0 when the pool is empty.
    pub used_ratio: f64,
}

/// Per-protocol totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtoCount {
    pub proto: Proto,
    pub sessions: u64,
    /// BIB entries that have at least one session (distinct pool4 transport addresses).
    pub bib_entries: u64,
}

/// The aggregate view of one instance's sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub total: u64,
    pub by_proto: Vec<ProtoCount>,
    /// Non-zero counts only, protocols in TCP/UDP/ICMP order, known states first.
    pub by_state: Vec<StateCount>,
    pub top_clients: Vec<ClientCount>,
    /// Empty when pool4 could not be read.
    pub pool4: Vec<Pool4Usage>,
}

/// Summarises `table`; `pool4` when it was readable; the `top` busiest clients.
pub fn summarize(table: &SessionTable, pool4: Option<&[Pool4Entry]>, top: usize) -> SessionSummary {
    let mut known = [[0u64; State::KNOWN.len()]; 3];
    let mut other: HashMap<(Proto, u16), u64> = HashMap::new();
    let mut bib_keys: [Vec<u64>; 3] = Default::default();
    bib_keys[0].reserve(table.sessions.len());
    let mut clients: HashMap<u128, [u64; 3], BuildHasherDefault<AddrHasher>> = HashMap::default();
    for s in &table.sessions {
        let p = s.proto.index();
        match s.state.known_index() {
            Some(i) => known[p][i] += 1,
            None => {
                if let State::Other(k) = s.state {
                    *other.entry((s.proto, k)).or_default() += 1;
                }
            }
        }
        bib_keys[p].push((u64::from(s.v4_local) << 16) | u64::from(s.v4_local_id));
        clients.entry(s.v6_remote).or_default()[p] += 1;
    }

    let mut by_proto = Vec::with_capacity(3);
    let mut by_state = Vec::new();
    for proto in Proto::ALL {
        let p = proto.index();
        let keys = &mut bib_keys[p];
        // Jool prints sessions sorted by pool4 address and port: sort only if it did not.
        if !keys.windows(2).all(|w| w[0] <= w[1]) {
            keys.sort_unstable();
        }
        keys.dedup();
        let mut sessions = 0;
        for (i, &n) in known[p].iter().enumerate() {
            sessions += n;
            if n > 0 {
                by_state.push(StateCount {
                    proto,
                    state: State::KNOWN[i]
                        .known_name()
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                    sessions: n,
                });
            }
        }
        let mut others: Vec<_> = other.iter().filter(|((q, _), _)| *q == proto).collect();
        others.sort();
        for (&(_, k), &n) in others {
            sessions += n;
            by_state.push(StateCount {
                proto,
                state: Some(table.state_name(State::Other(k)).to_string()),
                sessions: n,
            });
        }
        by_proto.push(ProtoCount {
            proto,
            sessions,
            bib_entries: keys.len() as u64,
        });
    }

    let mut top_clients: Vec<ClientCount> = clients
        .into_iter()
        .map(|(a, c)| ClientCount {
            address: Ipv6Addr::from(a),
            sessions: c.iter().sum(),
            tcp: c[0],
            udp: c[1],
            icmp: c[2],
        })
        .collect();
    let key = |c: &ClientCount| (std::cmp::Reverse(c.sessions), c.address);
    if top_clients.len() > top && top > 0 {
        top_clients.select_nth_unstable_by_key(top - 1, key);
    }
    top_clients.truncate(top);
    top_clients.shrink_to_fit();
    top_clients.sort_unstable_by_key(key);

    let pool4 = pool4
        .map(|entries| {
            Proto::ALL
                .iter()
                .map(|&proto| {
                    let mut ranges: Vec<_> = entries
                        .iter()
                        .filter(|e| e.proto == proto)
                        .map(|e| (e.address, e.min_port, e.max_port))
                        .collect();
                    // The same range under several marks is one set of ports.
                    ranges.sort_unstable();
                    ranges.dedup();
                    let total: u64 = ranges
                        .iter()
                        .map(|&(_, lo, hi)| u64::from(hi.saturating_sub(lo)) + 1)
                        .sum();
                    let used = by_proto[proto.index()].bib_entries;
                    Pool4Usage {
                        proto,
                        ports_total: total,
                        ports_used: used,
                        used_ratio: if total == 0 {
                            0.0
                        } else {
                            used as f64 / total as f64
                        },
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    SessionSummary {
        total: table.sessions.len() as u64,
        by_proto,
        by_state,
        top_clients,
        pool4,
    }
}

/// A fast hasher for address keys. SipHash guards against chosen-key flooding, but clients
/// cannot choose which of our own LAN addresses exist in bulk cheaply enough to matter here, and
/// per-session SipHash is most of the aggregation time. Multiply-xorshift mixing.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
