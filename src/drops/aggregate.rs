//! Live drop statistics over the last 5 minutes, hour and day, in bounded memory.
//!
//! Each window is a ring of time buckets (30 s buckets for 5 min, 5 min buckets for 1 h,
//! 1 h buckets for 24 h). A bucket holds exact totals and one [`SpaceSaving`] summary per
//! dimension (source, destination, destination port + protocol, protocol, interface,
//! prefix), each of fixed capacity; a window's top-N merges its buckets. Old buckets are
//! recycled, never freed and reallocated, so memory reaches its ceiling after the first day at
//! the latest (the first minute under a flood, whose buckets are all full) and stays there,
//! however many addresses send.
//!
//! Time is an argument: [`Aggregator::record`] and [`Aggregator::window`] take `now_ms`
//! (Unix milliseconds). A clock that steps back is tolerated: the event goes into the newest
//! bucket.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use serde::Serialize;

use super::sketch::{merge_top, Hitter, SeededState, SpaceSaving};
use super::{prefix_label, DropEvent, IfName, Mac, Proto, TcpFlags};

/// The windows the API offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    FiveMinutes,
    Hour,
    Day,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::FiveMinutes, Window::Hour, Window::Day];

    /// `5m`, `1h`, `24h` as in `?window=`.
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "5m" => Some(Window::FiveMinutes),
            "1h" | "60m" => Some(Window::Hour),
            "24h" | "1d" => Some(Window::Day),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::FiveMinutes => "5m",
            Window::Hour => "1h",
            Window::Day => "24h",
        }
    }

    pub fn millis(self) -> u64 {
        match self {
            Window::FiveMinutes => 5 * 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
        }
    }

    fn bucket_millis(self) -> u64 {
        match self {
            Window::FiveMinutes => 30_000,
            Window::Hour => 5 * 60_000,
            Window::Day => 3_600_000,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Memory bounds. Every structure is capped by one of these, whatever the traffic.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Keys kept per dimension per time bucket (Space-Saving capacity).
    pub top_keys: usize,
    /// Recent events kept for the page.
    pub recent: usize,
    /// Distinct `(proto, iface, prefix)` metric series; more are counted under `other`.
    pub label_series: usize,
    /// Distinct prefixes interned; more still count, just with their own allocation.
    pub prefixes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            top_keys: 256,
            recent: 100,
            label_series: 256,
            prefixes: 64,
        }
    }
}

/// Destination port and protocol, the `DST, PROTO, DPT` question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortKey {
    pub proto: Proto,
    pub port: u16,
}

struct Bucket {
    start_ms: u64,
    events: u64,
    bytes: u64,
    src: SpaceSaving<IpAddr>,
    dst: SpaceSaving<IpAddr>,
    port: SpaceSaving<PortKey>,
    proto: SpaceSaving<Option<Proto>>,
    iface: SpaceSaving<IfName>,
    prefix: SpaceSaving<Arc<str>>,
}

impl Bucket {
    fn new(cap: usize) -> Bucket {
        Bucket {
            start_ms: 0,
            events: 0,
            bytes: 0,
            src: SpaceSaving::new(cap),
            dst: SpaceSaving::new(cap),
            port: SpaceSaving::new(cap),
            // Few distinct values; a small cap still bounds hostile input.
            proto: SpaceSaving::new(cap.min(32)),
            iface: SpaceSaving::new(cap.min(32)),
            prefix: SpaceSaving::new(cap.min(32)),
        }
    }

    /// Fills every summary to capacity once and empties it again, so all the memory the
    /// bucket will ever use is touched (resident) now, not page by page as traffic arrives:
    /// the daemon's footprint is known at start and stays flat under a flood.
    fn prefault(&mut self) {
        for i in 0..self.src.capacity().max(self.dst.capacity()) {
            let a = IpAddr::V6(Ipv6Addr::from(i as u128 + 1));
            self.src.offer(&a, 1);
            self.dst.offer(&a, 1);
        }
        for i in 0..self.port.capacity() {
            let p = PortKey {
                proto: Proto::Other((i >> 16) as u8),
                port: i as u16,
            };
            self.port.offer(&p, 1);
        }
        for i in 0..self.proto.capacity() {
            self.proto.offer(&Some(Proto::Other(i as u8)), 1);
        }
        for i in 0..self.iface.capacity() {
            self.iface.offer(&IfName::new(&format!("if{i}")), 1);
        }
        for i in 0..self.prefix.capacity() {
            let p: Arc<str> = Arc::from(format!("p{i}"));
            self.prefix.offer(&p, 1);
        }
        self.reset(0);
    }

    fn reset(&mut self, start_ms: u64) {
        self.start_ms = start_ms;
        self.events = 0;
        self.bytes = 0;
        self.src.clear();
        self.dst.clear();
        self.port.clear();
        self.proto.clear();
        self.iface.clear();
        self.prefix.clear();
    }
}

struct Tier {
    window: Window,
    buckets: VecDeque<Bucket>,
    spare: Vec<Bucket>,
}

impl Tier {
    fn keep(&self) -> usize {
        (self.window.millis() / self.window.bucket_millis()) as usize + 1
    }

    /// The bucket for `now_ms`, starting a new one (recycled) when its time has come.
    fn current(&mut self, now_ms: u64, cap: usize) -> &mut Bucket {
        let width = self.window.bucket_millis();
        let start = now_ms - now_ms % width;
        let need_new = match self.buckets.back() {
            None => true,
            Some(b) => start > b.start_ms,
        };
        if need_new {
            // Drop buckets that fell out of the window (all of them after a long silence).
            let keep = self.keep();
            let oldest_kept = start.saturating_sub(width * (keep as u64 - 1));
            while let Some(front) = self.buckets.front() {
                if front.start_ms < oldest_kept || self.buckets.len() >= keep {
                    if let Some(b) = self.buckets.pop_front() {
                        self.spare.push(b);
                    }
                } else {
                    break;
                }
            }
            let mut b = self.spare.pop().unwrap_or_else(|| Bucket::new(cap));
            b.reset(start);
            self.buckets.push_back(b);
        }
        // Just pushed or already present.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    fn in_window(&self, now_ms: u64) -> impl Iterator<Item = &Bucket> {
        let width = self.window.bucket_millis();
        let from = now_ms.saturating_sub(self.window.millis());
        self.buckets
            .iter()
            .filter(move |b| b.start_ms + width > from && b.start_ms <= now_ms)
    }
}

/// A recent dropped packet, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RecentDrop {
    pub time_ms: u64,
    #[serde(serialize_with = "ser_arc_str")]
    pub prefix: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<u8>,
    pub in_iface: IfName,
    pub out_iface: IfName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_src: Option<Mac>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub proto: Option<Proto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<TcpFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    pub len: u32,
}

fn ser_arc_str<S: serde::Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// One row of a top-N table. The true count lies in `count - error ..= count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked<K> {
    #[serde(flatten)]
    pub key: K,
    pub count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub error: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddrKey {
    pub addr: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRow {
    pub proto: Proto,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameKey {
    pub name: String,
}

/// A window's summary: exact totals and approximate top-N tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowReport {
    pub window: &'static str,
    /// The oldest bucket's start: the data covers `from_ms ..= now_ms`.
    pub from_ms: u64,
    pub now_ms: u64,
    pub events: u64,
    pub bytes: u64,
    pub sources: Vec<Ranked<AddrKey>>,
    pub destinations: Vec<Ranked<AddrKey>>,
    pub ports: Vec<Ranked<PortRow>>,
    pub protocols: Vec<Ranked<NameKey>>,
    pub interfaces: Vec<Ranked<NameKey>>,
    pub prefixes: Vec<Ranked<NameKey>>,
}

/// A metric series key: `pirouterd_drops_total{proto, iface, prefix}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelKey {
    pub proto: String,
    pub iface: String,
    pub prefix: String,
}

/// Live drop statistics; see the module docs.
pub struct Aggregator {
    limits: Limits,
    tiers: [Tier; 3],
    recent: VecDeque<RecentDrop>,
    total_events: u64,
    total_bytes: u64,
    lost: u64,
    labels: HashMap<(Option<Proto>, IfName, Arc<str>), u64, SeededState>,
    labels_overflow: u64,
    prefixes: Vec<Arc<str>>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new(Limits::default())
    }
}

impl Aggregator {
    pub fn new(limits: Limits) -> Aggregator {
        // Every bucket a tier will ever hold is allocated now, so memory is flat from the
        // first event on and a flood never causes an allocation.
        let tier = |window| {
            let mut t = Tier {
                window,
                buckets: VecDeque::new(),
                spare: Vec::new(),
            };
            let keep = t.keep();
            t.buckets.reserve(keep);
            t.spare = (0..keep)
                .map(|_| {
                    let mut b = Bucket::new(limits.top_keys);
                    b.prefault();
                    b
                })
                .collect();
            t
        };
        let mut a = Aggregator {
            limits,
            tiers: [
                tier(Window::FiveMinutes),
                tier(Window::Hour),
                tier(Window::Day),
            ],
            recent: VecDeque::with_capacity(limits.recent),
            total_events: 0,
            total_bytes: 0,
            lost: 0,
            labels: HashMap::with_capacity_and_hasher(limits.label_series, SeededState::default()),
            labels_overflow: 0,
            prefixes: Vec::with_capacity(limits.prefixes),
        };
        a.prefault();
        a
    }

    /// Touches the recent-events ring and the label map at full size (see
    /// `Bucket::prefault`), then empties them.
    fn prefault(&mut self) {
        let empty: Arc<str> = Arc::from("");
        for i in 0..self.limits.label_series {
            let key = (
                Some(Proto::Other(i as u8)),
                IfName::new(&i.to_string()),
                empty.clone(),
            );
            self.labels.insert(key, 0);
        }
        self.labels.clear();
        let ev = DropEvent::empty("");
        for _ in 0..self.limits.recent {
            self.push_recent(&ev, empty.clone(), 0);
        }
        self.recent.clear();
    }

    fn push_recent(&mut self, ev: &DropEvent<'_>, prefix: Arc<str>, now_ms: u64) {
        if self.recent.len() == self.limits.recent {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentDrop {
            time_ms: now_ms,
            prefix,
            hook: ev.hook,
            in_iface: ev.in_iface,
            out_iface: ev.out_iface,
            mac_src: ev.mac_src,
            src: ev.src,
            dst: ev.dst,
            proto: ev.proto,
            sport: ev.sport,
            dport: ev.dport,
            tcp_flags: ev.tcp_flags,
            icmp_type: ev.icmp.map(|(t, _)| t),
            icmp_code: ev.icmp.map(|(_, c)| c),
            len: ev.len,
        });
    }

    fn intern(&mut self, label: &str) -> Arc<str> {
        if let Some(p) = self.prefixes.iter().find(|p| ***p == *label) {
            return p.clone();
        }
        let p: Arc<str> = Arc::from(label);
        if self.prefixes.len() < self.limits.prefixes {
            self.prefixes.push(p.clone());
        }
        p
    }

    /// Counts one dropped packet seen at `now_ms`.
    pub fn record(&mut self, ev: &DropEvent<'_>, now_ms: u64) {
        let prefix = self.intern(prefix_label(&ev.prefix));
        let iface = ev.iface();
        let bytes = u64::from(ev.len);
        self.total_events += 1;
        self.total_bytes += bytes;

        let label = (ev.proto, iface, prefix.clone());
        if let Some(n) = self.labels.get_mut(&label) {
            *n += 1;
        } else if self.labels.len() < self.limits.label_series {
            self.labels.insert(label, 1);
        } else {
            self.labels_overflow += 1;
        }

        let port = match (ev.proto, ev.dport) {
            (Some(proto), Some(port)) if proto.has_ports() => Some(PortKey { proto, port }),
            _ => None,
        };
        let cap = self.limits.top_keys;
        for tier in &mut self.tiers {
            let b = tier.current(now_ms, cap);
            b.events += 1;
            b.bytes += bytes;
            if let Some(a) = &ev.src {
                b.src.offer(a, 1);
            }
            if let Some(a) = &ev.dst {
                b.dst.offer(a, 1);
            }
            if let Some(p) = &port {
                b.port.offer(p, 1);
            }
            b.proto.offer(&ev.proto, 1);
            b.iface.offer(&iface, 1);
            b.prefix.offer(&prefix, 1);
        }

        if self.limits.recent > 0 {
            self.push_recent(ev, prefix, now_ms);
        }
    }

    /// Counts packets the kernel logged but could not deliver (socket buffer overflow).
    pub fn record_lost(&mut self, n: u64) {
        self.lost = self.lost.saturating_add(n);
    }

    /// Packets counted since start (exact).
    pub fn total_events(&self) -> u64 {
        self.total_events
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Packets lost before they reached us (see [`Aggregator::record_lost`]).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &RecentDrop> {
        self.recent.iter()
    }

    /// Exact counts per `(proto, iface, prefix)` since start, for
    /// `pirouterd_drops_total`; series beyond [`Limits::label_series`] are summed under
    /// `other`. Sorted, so the exposition is stable.
    pub fn label_totals(&self) -> Vec<(LabelKey, u64)> {
        let mut v: Vec<(LabelKey, u64)> = self
            .labels
            .iter()
            .map(|((proto, iface, prefix), n)| {
                (
                    LabelKey {
                        proto: proto.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
                        iface: iface.to_string(),
                        prefix: prefix.to_string(),
                    },
                    *n,
                )
            })
            .collect();
        if self.labels_overflow > 0 {
            let other = || "other".to_string();
            v.push((
                LabelKey {
                    proto: other(),
                    iface: other(),
                    prefix: other(),
                },
                self.labels_overflow,
            ));
        }
        v.sort();
        v
    }

    /// The summary of `window` as of `now_ms`, with `n` rows per table.
    pub fn window(&self, window: Window, now_ms: u64, n: usize) -> WindowReport {
        let tier = &self.tiers[window.index()];
        let buckets: Vec<&Bucket> = tier.in_window(now_ms).collect();
        let from_ms = buckets
            .first()
            .map(|b| b.start_ms)
            .unwrap_or_else(|| now_ms.saturating_sub(window.millis()));
        let addr = |part: fn(&Bucket) -> &SpaceSaving<IpAddr>| {
            merge_top(buckets.iter().map(|b| part(b)), n)
                .into_iter()
                .map(|h| Ranked {
                    key: AddrKey { addr: h.key },
                    count: h.count,
                    error: h.error,
                })
                .collect()
        };
        WindowReport {
            window: window.name(),
            from_ms,
            now_ms,
            events: buckets.iter().map(|b| b.events).sum(),
            bytes: buckets.iter().map(|b| b.bytes).sum(),
            sources: addr(|b| &b.src),
            destinations: addr(|b| &b.dst),
            ports: merge_top(buckets.iter().map(|b| &b.port), n)
                .into_iter()
                .map(|h| Ranked {
                    key: PortRow {
                        proto: h.key.proto,
                        port: h.key.port,
                    },
                    count: h.count,
                    error: h.error,
                })
                .collect(),
            protocols: named(merge_top(buckets.iter().map(|b| &b.proto), n), |p| {
                p.map_or_else(|| "unknown".into(), |p| p.to_string())
            }),
            interfaces: named(merge_top(buckets.iter().map(|b| &b.iface), n), |i| {
                i.to_string()
            }),
            prefixes: named(merge_top(buckets.iter().map(|b| &b.prefix), n), |p| {
                p.to_string()
            }),
        }
    }
}

fn named<K>(v: Vec<Hitter<K>>, f: impl Fn(&K) -> String) -> Vec<Ranked<NameKey>> {
    v.iter()
        .map(|h| Ranked {
            key: NameKey { name: f(&h.key) },
            count: h.count,
            error: h.error,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn ev(src: &str, dport: u16, iface: &str) -> DropEvent<'static> {
        let mut e = DropEvent::empty("nft-dropped: ");
        e.src = Some(src.parse().unwrap());
        e.dst = Some("192.0.2.1".parse().unwrap());
        e.proto = Some(Proto::Tcp);
        e.dport = Some(dport);
        e.in_iface = IfName::new(iface);
        e.len = 40;
        e
    }

    const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn windows_forget_old_traffic() {
        let mut a = Aggregator::default();
        for i in 0..10 {
            a.record(&ev("198.51.100.1", 22, "wan0"), T0 + i * 1000);
        }
        // 20 minutes later, three more from elsewhere.
        let later = T0 + 20 * 60_000;
        for i in 0..3 {
            a.record(&ev("203.0.113.9", 3389, "wan0"), later + i);
        }
        let w5 = a.window(Window::FiveMinutes, later + 10, 5);
        assert_eq!(w5.events, 3);
        assert_eq!(w5.bytes, 120);
        assert_eq!(w5.sources.len(), 1);
        assert_eq!(w5.sources[0].key.addr.to_string(), "203.0.113.9");
        let h1 = a.window(Window::Hour, later + 10, 5);
        assert_eq!(h1.events, 13);
        assert_eq!(h1.sources[0].key.addr.to_string(), "198.51.100.1");
        assert_eq!(h1.sources[0].count, 10);
        assert_eq!(
            h1.ports[0].key,
            PortRow {
                proto: Proto::Tcp,
                port: 22
            }
        );
        let d = a.window(Window::Day, later + 10, 5);
        assert_eq!(d.events, 13);
        // A day and a bit later everything has aged out, and totals since start remain.
        let next_day = later + 25 * 3_600_000;
        assert_eq!(a.window(Window::Day, next_day, 5).events, 0);
        assert_eq!(a.total_events(), 13);
        assert_eq!(a.label_totals().len(), 1);
        assert_eq!(a.label_totals()[0].1, 13);
        assert_eq!(a.label_totals()[0].0.prefix, "nft-dropped");
    }

    #[test]
    fn recent_is_bounded_and_labels_overflow() {
        let limits = Limits {
            recent: 5,
            label_series: 2,
            ..Limits::default()
        };
        let mut a = Aggregator::new(limits);
        for i in 0..20u16 {
            a.record(&ev("10.0.0.1", i, &format!("if{}", i % 4)), T0);
        }
        assert_eq!(a.recent().count(), 5);
        assert_eq!(a.recent().last().unwrap().dport, Some(19));
        let labels = a.label_totals();
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.iter().map(|l| l.1).sum::<u64>(), 20);
        assert!(labels.iter().any(|l| l.0.iface == "other"));
    }

    #[test]
    fn clock_stepping_back_is_tolerated() {
        let mut a = Aggregator::default();
        a.record(&ev("10.0.0.1", 1, "a"), T0 + 60_000);
        a.record(&ev("10.0.0.2", 1, "a"), T0); // earlier than the newest bucket
        assert_eq!(a.window(Window::FiveMinutes, T0 + 60_000, 5).events, 2);
    }

    #[test]
    fn json_shape() {
        let mut a = Aggregator::default();
        let mut e = ev("2001:db8::1", 443, "wan0");
        e.prefix = Cow::Borrowed("verbose-nft-dropped: ");
        e.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
        a.record(&e, T0);
        let w = serde_json::to_value(a.window(Window::FiveMinutes, T0, 5)).unwrap();
        assert_eq!(w["sources"][0]["addr"], "2001:db8::1");
        assert_eq!(w["ports"][0]["proto"], "tcp");
        assert_eq!(w["ports"][0]["port"], 443);
        assert_eq!(w["prefixes"][0]["name"], "verbose-nft-dropped");
        let r = serde_json::to_value(a.recent().next().unwrap()).unwrap();
        assert_eq!(r["tcp_flags"], "SYN");
        assert_eq!(r["in_iface"], "wan0");
    }
}
