//! Per-rule rate history in bounded memory.
//!
//! Every measured rule has one ring of 61 one-minute buckets (packets and bytes, `f32`):
//! 488 bytes per rule, whatever the uptime. The rings give the 1 min, 15 min and 1 h rates
//! and a coarse 60-point sparkline. Rates are sliding windows: the current partial minute,
//! the full minutes before it, and the oldest minute weighted by the part of it still inside
//! the window (exact at minute boundaries, linear in between). A rule seen for less than the
//! window is averaged over the time it has been seen.
//!
//! A finer history (one point per sample, the last [`FINE_POINTS`]) is kept only for the
//! rules the page shows ([`History::watch`]), at most [`FINE_MAX_RULES`] of them.
//!
//! Input is reset-corrected deltas from [`super::identity::Tracker`], so a rate is never
//! negative. Pure: every call takes `now_ms` (Unix milliseconds); a clock that steps back is
//! treated as no time passing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use super::identity::{RuleKey, RuleObs};

const MINUTE_MS: u64 = 60_000;
/// One-minute buckets per rule: 60 for the hour plus the one the window's oldest edge is in.
pub const SLOTS: usize = 61;
/// Points of fine history per watched rule (10 minutes at the 5 s default interval).
pub const FINE_POINTS: usize = 120;
/// Most rules with fine history.
pub const FINE_MAX_RULES: usize = 64;

/// Rates over the three windows, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    pub pps_1m: f64,
    pub bps_1m: f64,
    pub pps_15m: f64,
    pub bps_15m: f64,
    pub pps_1h: f64,
    pub bps_1h: f64,
}

/// One fine-history point: the rate between the previous sample and `t_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FinePoint {
    pub t_ms: u64,
    pub pps: f32,
    /// Bytes per second.
    pub bps: f32,
}

/// Packets and bytes per minute for the last hour, oldest first; the last point is the
/// current, partial minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sparkline {
    /// Start of the first point's minute (Unix ms).
    pub start_ms: u64,
    pub packets: Vec<f32>,
    pub bytes: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Ring {
    /// From when this rule's buckets hold data.
    since_ms: u64,
    packets: [f32; SLOTS],
    bytes: [f32; SLOTS],
}

/// Rate history for every measured rule.
#[derive(Debug, Default)]
pub struct History {
    /// Current minute (Unix ms / 60,000) and its slot is `minute % SLOTS`.
    minute: u64,
    last_sample_ms: Option<u64>,
    /// Boxed: a map's buckets stay small (a 16k-bucket table of inline rings would hold
    /// 8 MB at 10k rules, half of it empty).
    rings: HashMap<Arc<RuleKey>, Box<Ring>>,
    watched: HashSet<Arc<RuleKey>>,
    fine: HashMap<Arc<RuleKey>, VecDeque<FinePoint>>,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Number of rules with a ring and with fine history.
    pub fn len(&self) -> (usize, usize) {
        (self.rings.len(), self.fine.len())
    }

    /// True when no rule has history.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// Records one sample: the deltas of the measured rules. Rules absent from `rules` lose
    /// their history (they vanished or lost their counter).
    pub fn record<'a>(&mut self, now_ms: u64, rules: impl IntoIterator<Item = &'a RuleObs>) {
        self.advance(now_ms);
        let prev = self.last_sample_ms;
        let dt_ms = prev.map(|p| now_ms.saturating_sub(p));
        let split = self.split(prev, now_ms);
        let mut present: HashSet<&Arc<RuleKey>> = HashSet::new();
        let mut rules_seen = 0usize;
        for r in rules {
            rules_seen += 1;
            present.insert(&r.key);
            let timed = r.delta_timed && prev.is_some();
            let ring = self.rings.entry(r.key.clone()).or_insert_with(|| {
                Box::new(Ring {
                    // A rule new in this sample: its delta covers the time since the previous
                    // sample (its counter started in between).
                    since_ms: if timed {
                        prev.unwrap_or(now_ms)
                    } else {
                        now_ms
                    },
                    packets: [0.0; SLOTS],
                    bytes: [0.0; SLOTS],
                })
            });
            if !timed || (r.delta.packets == 0 && r.delta.bytes == 0) {
                // Untimed: counted at unknown times, part of the totals but of no rate.
                if timed && self.watched.contains(&r.key) {
                    self.push_fine(&r.key, now_ms, dt_ms, 0, 0);
                }
                continue;
            }
            let (p, b) = (r.delta.packets as f64, r.delta.bytes as f64);
            for &(slot, w) in &split {
                ring.packets[slot] += (p * w) as f32;
                ring.bytes[slot] += (b * w) as f32;
            }
            if self.watched.contains(&r.key) {
                self.push_fine(&r.key, now_ms, dt_ms, r.delta.packets, r.delta.bytes);
            }
        }
        if self.rings.len() != rules_seen {
            self.rings.retain(|k, _| present.contains(k));
            self.fine.retain(|k, _| present.contains(k));
            self.watched.retain(|k| present.contains(k));
        }
        self.last_sample_ms = Some(prev.map_or(now_ms, |p| p.max(now_ms)));
    }

    fn push_fine(&mut self, key: &Arc<RuleKey>, now_ms: u64, dt_ms: Option<u64>, p: u64, b: u64) {
        let Some(dt) = dt_ms.filter(|d| *d > 0) else {
            return;
        };
        let q = self.fine.entry(key.clone()).or_default();
        if q.len() == FINE_POINTS {
            q.pop_front();
        }
        let secs = dt as f64 / 1000.0;
        q.push_back(FinePoint {
            t_ms: now_ms,
            pps: (p as f64 / secs) as f32,
            bps: (b as f64 / secs) as f32,
        });
    }

    /// How a delta over `[prev, now)` spreads over the minute buckets still kept: traffic
    /// between two samples is taken as uniform. Without a usable interval (first sample,
    /// clock stepped back) everything goes to the current minute.
    fn split(&self, prev: Option<u64>, now_ms: u64) -> Vec<(usize, f64)> {
        let cur = (self.minute % SLOTS as u64) as usize;
        let Some(prev) = prev.filter(|p| *p < now_ms) else {
            return vec![(cur, 1.0)];
        };
        let oldest = self.minute.saturating_sub(SLOTS as u64 - 1);
        let first = (prev / MINUTE_MS).max(oldest);
        let last = ((now_ms - 1) / MINUTE_MS).min(self.minute);
        let span = (now_ms - prev) as f64;
        let mut out = Vec::with_capacity(2);
        for m in first..=last {
            let lo = prev.max(m * MINUTE_MS);
            let hi = now_ms.min((m + 1) * MINUTE_MS);
            if hi > lo {
                out.push(((m % SLOTS as u64) as usize, (hi - lo) as f64 / span));
            }
        }
        if out.is_empty() {
            out.push((cur, 1.0));
        }
        out
    }

    /// Sets the rules that get fine history (the page's rules); at most [`FINE_MAX_RULES`]
    /// are taken. Rules no longer watched drop their fine history.
    pub fn watch(&mut self, keys: impl IntoIterator<Item = Arc<RuleKey>>) {
        self.watched = keys
            .into_iter()
            .filter(|k| self.rings.contains_key(k))
            .take(FINE_MAX_RULES)
            .collect();
        let w = &self.watched;
        self.fine.retain(|k, _| w.contains(k));
    }

    /// Moves the clock to `now_ms`, clearing the buckets of minutes that passed.
    fn advance(&mut self, now_ms: u64) {
        let m = now_ms / MINUTE_MS;
        if self.last_sample_ms.is_none() {
            self.minute = m;
            return;
        }
        if m <= self.minute {
            return;
        }
        let steps = (m - self.minute).min(SLOTS as u64);
        for ring in self.rings.values_mut() {
            for i in 1..=steps {
                let s = ((self.minute + i) % SLOTS as u64) as usize;
                ring.packets[s] = 0.0;
                ring.bytes[s] = 0.0;
            }
        }
        self.minute = m;
    }

    /// Rates of one rule at `now_ms`; `None` for a rule without history or seen for less
    /// than a second.
    pub fn rates(&self, key: &RuleKey, now_ms: u64) -> Option<Rates> {
        let ring = self.rings.get(key)?;
        let (p1, b1) = self.window(ring, 1, now_ms)?;
        let (p15, b15) = self.window(ring, 15, now_ms)?;
        let (p60, b60) = self.window(ring, 60, now_ms)?;
        Some(Rates {
            pps_1m: p1,
            bps_1m: b1,
            pps_15m: p15,
            bps_15m: b15,
            pps_1h: p60,
            bps_1h: b60,
        })
    }

    /// Average packets/s and bytes/s over the last `minutes` (1..=60).
    fn window(&self, ring: &Ring, minutes: u64, now_ms: u64) -> Option<(f64, f64)> {
        let minutes = minutes.clamp(1, SLOTS as u64 - 1);
        // A clock that stepped back reads as the start of the current minute; one that ran
        // ahead without a sample as its end (the buckets after it are still empty).
        let into = now_ms
            .saturating_sub(self.minute * MINUTE_MS)
            .min(MINUTE_MS);
        let now_ms = self.minute * MINUTE_MS + into;
        let covered = (minutes * MINUTE_MS).min(now_ms.saturating_sub(ring.since_ms));
        if covered < 1000 {
            return None;
        }
        let slot =
            |back: u64| -> usize { ((self.minute + SLOTS as u64 - back) % SLOTS as u64) as usize };
        let (mut p, mut b) = (0f64, 0f64);
        for back in 0..minutes {
            p += f64::from(ring.packets[slot(back)]);
            b += f64::from(ring.bytes[slot(back)]);
        }
        let w = 1.0 - into as f64 / MINUTE_MS as f64;
        p += f64::from(ring.packets[slot(minutes)]) * w;
        b += f64::from(ring.bytes[slot(minutes)]) * w;
        let secs = covered as f64 / 1000.0;
        Some((p / secs, b / secs))
    }

    /// The coarse sparkline of one rule.
    pub fn sparkline(&self, key: &RuleKey) -> Option<Sparkline> {
        let ring = self.rings.get(key)?;
        let n = SLOTS as u64 - 1;
        let idx = |i: u64| ((self.minute + 1 + i) % SLOTS as u64) as usize;
        Some(Sparkline {
            start_ms: (self.minute + 1).saturating_sub(n) * MINUTE_MS,
            packets: (1..=n).map(|i| ring.packets[idx(i)]).collect(),
            bytes: (1..=n).map(|i| ring.bytes[idx(i)]).collect(),
        })
    }

    /// The fine history of a watched rule, oldest first.
    pub fn fine(&self, key: &RuleKey) -> Option<Vec<FinePoint>> {
        self.fine.get(key).map(|q| q.iter().copied().collect())
    }
}

/// Bytes of history kept per measured rule, for the memory budget.
pub const BYTES_PER_RULE: usize = std::mem::size_of::<Ring>();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::identity::{Anchor, Counter};

    fn key(n: u32) -> Arc<RuleKey> {
        Arc::new(RuleKey {
            family: "inet".into(),
            table: "fw".into(),
            chain: "in".into(),
            anchor: Anchor::Text(u64::from(n)),
            ordinal: 0,
        })
    }

    fn obs(k: &Arc<RuleKey>, p: u64) -> RuleObs {
        RuleObs {
            key: k.clone(),
            delta: Counter {
                packets: p,
                bytes: p * 1000,
            },
            delta_timed: true,
        }
    }

    const T0: u64 = 1_700_000_040_000; // a minute boundary

    #[test]
    fn constant_traffic_gives_the_same_rate_in_every_window() {
        let k = key(1);
        let mut h = History::new();
        h.record(T0, [&obs(&k, 0)]);
        // 10 packets per 5 s sample = 2 pps, for two hours.
        let mut t = T0;
        for _ in 0..(2 * 720) {
            t += 5_000;
            h.record(t, [&obs(&k, 10)]);
        }
        let r = h.rates(&k, t).expect("rates");
        for v in [r.pps_1m, r.pps_15m, r.pps_1h] {
            assert!((v - 2.0).abs() < 1e-6, "{r:?}");
        }
        assert!((r.bps_1h - 2000.0).abs() < 1e-3);
        // Mid-minute too (the weighted edge).
        h.record(t + 30_000, [&obs(&k, 60)]);
        let r = h.rates(&k, t + 30_000).expect("rates");
        assert!((r.pps_1m - 2.0).abs() < 1e-6, "{r:?}");
        assert!((r.pps_1h - 2.0).abs() < 1e-6, "{r:?}");
    }

    #[test]
    fn burst_fades_from_each_window_in_turn() {
        let k = key(1);
        let mut h = History::new();
        let mut t = T0;
        h.record(t, [&obs(&k, 0)]);
        // Quiet for 61 minutes, so the rule is older than every window.
        while t < T0 + 61 * 60_000 {
            t += 5_000;
            h.record(t, [&obs(&k, 0)]);
        }
        let burst_end = t + 5_000;
        h.record(burst_end, [&obs(&k, 6_000)]);
        t = burst_end;
        // Quiet for 2 minutes: gone from 1 min, still in 15 min and 1 h.
        while t < burst_end + 120_000 {
            t += 5_000;
            h.record(t, [&obs(&k, 0)]);
        }
        let r = h.rates(&k, t).expect("rates");
        assert_eq!(r.pps_1m, 0.0);
        assert!((r.pps_15m - 6_000.0 / (15.0 * 60.0)).abs() < 1e-6, "{r:?}");
        assert!((r.pps_1h - 6_000.0 / 3_600.0).abs() < 1e-6, "{r:?}");
        assert!(r.pps_1m >= 0.0 && r.bps_1h > 0.0);
        // Quiet for 61 more minutes: gone from every window.
        while t < burst_end + 61 * 60_000 {
            t += 5_000;
            h.record(t, [&obs(&k, 0)]);
        }
        let r = h.rates(&k, t).expect("rates");
        assert_eq!((r.pps_15m, r.pps_1h), (0.0, 0.0), "{r:?}");
    }

    #[test]
    fn young_rule_is_averaged_over_its_age_and_gap_clears_buckets() {
        let k = key(1);
        let mut h = History::new();
        h.record(T0, [&obs(&k, 0)]);
        h.record(T0 + 10_000, [&obs(&k, 100)]);
        let r = h.rates(&k, T0 + 10_000).expect("rates");
        assert!(
            (r.pps_1h - 10.0).abs() < 1e-9,
            "10 s old: 100 pkts / 10 s: {r:?}"
        );
        assert!(h.rates(&k, T0).is_none(), "no time covered yet");
        // The daemon slept 3 hours: every old bucket is cleared.
        h.record(T0 + 3 * 3_600_000, [&obs(&k, 0)]);
        let r = h.rates(&k, T0 + 3 * 3_600_000).expect("rates");
        assert_eq!(r.pps_1h, 0.0);
    }

    #[test]
    fn clock_stepping_back_never_gives_negative_or_infinite_rates() {
        let k = key(1);
        let mut h = History::new();
        h.record(T0 + 30_000, [&obs(&k, 0)]);
        h.record(T0 + 90_000, [&obs(&k, 60)]);
        h.record(T0 + 10_000, [&obs(&k, 60)]); // NTP stepped back 80 s
        for now in [T0, T0 + 10_000, T0 + 90_000, T0 + 500_000] {
            if let Some(r) = h.rates(&k, now) {
                for v in [r.pps_1m, r.pps_15m, r.pps_1h, r.bps_1m] {
                    assert!(v.is_finite() && v >= 0.0, "{now}: {r:?}");
                }
            }
        }
    }

    #[test]
    fn untimed_delta_counts_for_no_rate() {
        let k = key(1);
        let mut h = History::new();
        let mut o = obs(&k, 1_000_000);
        o.delta_timed = false;
        h.record(T0, [&o]);
        h.record(T0 + 5_000, [&obs(&k, 5)]);
        let r = h.rates(&k, T0 + 5_000).expect("rates");
        assert!((r.pps_1m - 1.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn new_rule_after_reload_counts_since_previous_sample() {
        let (a, b) = (key(1), key(2));
        let mut h = History::new();
        h.record(T0, [&obs(&a, 0)]);
        h.record(T0 + 5_000, [&obs(&a, 0), &obs(&b, 50)]);
        let r = h.rates(&b, T0 + 5_000).expect("rates");
        assert!((r.pps_1m - 10.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn memory_is_flat_and_vanished_rules_are_dropped() {
        let keys: Vec<_> = (0..100).map(key).collect();
        let mut h = History::new();
        let mut t = T0;
        for step in 0..2000u64 {
            let o: Vec<RuleObs> = keys.iter().map(|k| obs(k, step % 7)).collect();
            h.record(t, &o);
            h.watch(keys.iter().take(10).cloned());
            t += 5_000;
        }
        assert_eq!(h.len(), (100, 10));
        for k in keys.iter().take(10) {
            assert_eq!(h.fine(k).expect("fine").len(), FINE_POINTS);
        }
        assert!(h.fine(&keys[50]).is_none());
        h.watch(keys.iter().cloned());
        assert_eq!(h.watched.len(), FINE_MAX_RULES);
        h.record(
            t,
            keys.iter()
                .take(3)
                .map(|k| obs(k, 1))
                .collect::<Vec<_>>()
                .iter(),
        );
        assert_eq!(h.len().0, 3);
        assert_eq!(BYTES_PER_RULE, 8 + 8 * SLOTS);
    }

    #[test]
    fn sparkline_is_per_minute_oldest_first() {
        let k = key(1);
        let mut h = History::new();
        h.record(T0, [&obs(&k, 0)]);
        h.record(T0 + 30_000, [&obs(&k, 7)]); // minute 0
                                              // 30 s in minute 0 and 30 s in minute 1 (current): split evenly.
        h.record(T0 + 90_000, [&obs(&k, 9)]);
        let s = h.sparkline(&k).expect("spark");
        assert_eq!(s.packets.len(), 60);
        assert_eq!(s.packets[59], 4.5);
        assert_eq!(s.packets[58], 11.5);
        assert_eq!(s.bytes[58], 11_500.0);
        assert!(s.packets[..58].iter().all(|v| *v == 0.0));
        assert_eq!(s.start_ms, T0 + 60_000 - 59 * 60_000);
    }
}
