//! Rule identity across reloads.
//!
//! `nft -f` gives every rule a new handle and zeroes its counter, so a handle cannot name a
//! rule for longer than one load. A rule's identity here is its family, table, chain and
//! comment, or, without a comment, a hash of its rendered text (counter values left out);
//! rules sharing both in one chain are told apart by their order. With that key, the
//! [`Tracker`] carries first-seen, last-hit and totals-since-first-seen over a reload, and
//! turns each sample into per-rule deltas that never go negative and a [`ReloadDiff`] when
//! the ruleset changed.
//!
//! Pure: every call takes `now_ms` (Unix milliseconds).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A packet/byte counter reading, or a difference of two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// One rule as one sample of the ruleset shows it.
///
/// The input this module needs from the ruleset snapshot; the snapshot's own rule type is
/// converted into this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSample {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`. (Names are shared `Arc<str>`: one
    /// allocation per table and chain, not per rule, and keys share them.)
    pub family: Arc<str>,
    pub table: Arc<str>,
    pub chain: Arc<str>,
    /// The kernel's handle of the rule's table. Handles of rules are numbered per table, so
    /// `flush ruleset` and a reload give the rules the same handles again: only the table's
    /// handle (numbered per namespace) tells the new incarnation from the old.
    pub table_handle: u64,
    /// The kernel's handle: changes when the rule is replaced.
    pub handle: u64,
    /// The rule's comment, if any (`comment "..."`).
    pub comment: Option<String>,
    /// The rule in nft syntax (counter values may be included; identity ignores them).
    pub text: String,
    /// `None` when the rule has no counter expression: it cannot be measured.
    pub counter: Option<Counter>,
}

/// A table, as `family/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    pub family: String,
    pub name: String,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}

/// One sample of the whole ruleset: its tables and its rules in ruleset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesetSample {
    pub tables: Vec<TableRef>,
    pub rules: Vec<RuleSample>,
}

/// What names a rule within its chain, besides its order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The rule's comment.
    Comment(String),
    /// FNV-1a 64 of the rule's text with counter values removed (stable across builds, so
    /// it can be persisted).
    Text(u64),
}

/// The identity of a rule across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleKey {
    pub family: Arc<str>,
    pub table: Arc<str>,
    pub chain: Arc<str>,
    pub anchor: Anchor,
    /// 0 for the first rule with this anchor in the chain, 1 for the second, ...
    pub ordinal: u32,
}

impl RuleKey {
    /// A short id, stable across reloads, unique within the chain: `""` for the first rule
    /// with a given comment, `#2`, `#3` for later ones; 12 hex digits of the text hash for
    /// rules without a comment (plus `#n` for duplicates).
    pub fn short_id(&self) -> String {
        let n = self.ordinal;
        match (&self.anchor, n) {
            (Anchor::Comment(_), 0) => String::new(),
            (Anchor::Comment(_), n) => format!("#{}", n + 1),
            (Anchor::Text(h), 0) => format!("{:012x}", h >> 16),
            (Anchor::Text(h), n) => format!("{:012x}#{}", h >> 16, n + 1),
        }
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.family, self.table, self.chain)?;
        match &self.anchor {
            Anchor::Comment(c) => write!(f, "comment {c:?}")?,
            Anchor::Text(h) => write!(f, "text {:012x}", h >> 16)?,
        }
        if self.ordinal > 0 {
            write!(f, " #{}", self.ordinal + 1)?;
        }
        Ok(())
    }
}

/// FNV-1a, 64 bit: tiny, and unlike `DefaultHasher` the same in every build.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Hash of a rule's text, ignoring whitespace runs and counter values (`packets N bytes N`),
/// which change with every packet.
pub fn text_hash(text: &str) -> u64 {
    let mut norm = String::with_capacity(text.len());
    let mut toks = text.split_whitespace().peekable();
    while let Some(t) = toks.next() {
        if (t == "packets" || t == "bytes")
            && toks
                .peek()
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            toks.next();
            continue;
        }
        if !norm.is_empty() {
            norm.push(' ');
        }
        norm.push_str(t);
    }
    fnv1a64(norm.as_bytes())
}

/// Keys for every rule of a sample, in the same order.
pub fn keys_for(rules: &[RuleSample]) -> Vec<RuleKey> {
    // Ordinals only count beyond 0 for duplicates, which are rare: a map of borrowed
    // anchors keeps this from copying every comment twice per sample.
    #[derive(PartialEq, Eq, Hash)]
    enum A<'a> {
        C(&'a str),
        T(u64),
    }
    let mut seen: HashMap<(&str, &str, &str, A<'_>), u32> = HashMap::with_capacity(rules.len());
    rules
        .iter()
        .map(|r| {
            let a = match r.comment.as_deref() {
                Some(c) if !c.is_empty() => A::C(c),
                _ => A::T(text_hash(&r.text)),
            };
            let anchor = match a {
                A::C(c) => Anchor::Comment(c.to_string()),
                A::T(h) => Anchor::Text(h),
            };
            let n = seen.entry((&r.family, &r.table, &r.chain, a)).or_insert(0);
            let ordinal = *n;
            *n += 1;
            RuleKey {
                family: r.family.clone(),
                table: r.table.clone(),
                chain: r.chain.clone(),
                anchor,
                ordinal,
            }
        })
        .collect()
}

/// What is known about one rule, carried across reloads (and, through `persist`, restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    /// When this rule was first seen (Unix ms).
    pub first_seen_ms: u64,
    /// When its counter last moved (Unix ms); `None`: not since first seen.
    pub last_hit_ms: Option<u64>,
    /// Packets and bytes counted since first seen, summed over counter resets.
    pub total: Counter,
    /// The table's handle at the last reading.
    #[serde(default)]
    pub table_handle: u64,
    /// The handle at the last reading.
    pub handle: u64,
    /// The raw counter at the last reading (`None`: the rule has no counter).
    pub last_counter: Option<Counter>,
    /// Hash of the rule's text at the last reading, to see a changed rule.
    pub text_hash: u64,
    /// Index of the rule in the last sample (names it when it is removed).
    #[serde(skip)]
    pub index: u32,
    /// The sample that last saw the rule.
    #[serde(skip)]
    pub seen: u64,
}

impl RuleState {
    /// True when the counter has not moved since the rule was first seen.
    pub fn never_hit(&self) -> bool {
        self.last_hit_ms.is_none()
    }
}

/// A rule as a reload event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub family: Arc<str>,
    pub table: Arc<str>,
    pub chain: Arc<str>,
    pub handle: u64,
    pub comment: Option<String>,
    pub text: String,
}

impl RuleRef {
    fn of(r: &RuleSample) -> RuleRef {
        RuleRef {
            family: r.family.clone(),
            table: r.table.clone(),
            chain: r.chain.clone(),
            handle: r.handle,
            comment: r.comment.clone(),
            text: r.text.clone(),
        }
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            self.family, self.table, self.chain, self.text
        )
    }
}

/// What a reload changed. Lists are capped at [`DIFF_LIST_MAX`] entries each (the counts
/// are exact), so a reload of 10,000 new rules makes a bounded event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadDiff {
    pub added: Vec<RuleRef>,
    pub removed: Vec<RuleRef>,
    /// Rules whose key stayed but whose text changed (only possible for commented rules).
    pub changed: Vec<RuleRef>,
    pub added_count: usize,
    pub removed_count: usize,
    pub changed_count: usize,
    /// Rules kept with a new handle or in a recreated table (the usual `nft -f` reload).
    pub rehandled_count: usize,
    pub tables_added: Vec<TableRef>,
    pub tables_removed: Vec<TableRef>,
}

/// Most rules a [`ReloadDiff`] lists per kind.
pub const DIFF_LIST_MAX: usize = 50;

impl ReloadDiff {
    /// True when nothing a user would call a change happened.
    pub fn is_empty(&self) -> bool {
        self.added_count == 0
            && self.removed_count == 0
            && self.changed_count == 0
            && self.rehandled_count == 0
            && self.tables_added.is_empty()
            && self.tables_removed.is_empty()
    }

    fn push(list: &mut Vec<RuleRef>, count: &mut usize, r: RuleRef) {
        *count += 1;
        if list.len() < DIFF_LIST_MAX {
            list.push(r);
        }
    }
}

/// The one line an event log shows for a reload.
impl fmt::Display for ReloadDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ruleset changed: {} rules added, {} removed, {} changed, {} reloaded unchanged",
            self.added_count, self.removed_count, self.changed_count, self.rehandled_count
        )?;
        for t in &self.tables_added {
            write!(f, "; table {t} appeared")?;
        }
        for t in &self.tables_removed {
            write!(f, "; table {t} vanished")?;
        }
        Ok(())
    }
}

/// What one sample says about one rule, in the sample's rule order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleObs {
    pub key: Arc<RuleKey>,
    /// Packets and bytes since the previous sample; a reset counter counts from zero, so
    /// this never goes negative. Zero for rules without a counter.
    pub delta: Counter,
    /// False when the delta spans an unknown time (first sample after a start): counted in
    /// totals, but not a rate.
    pub delta_timed: bool,
}

/// The result of one [`Tracker::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub rules: Vec<RuleObs>,
    /// `Some` when the ruleset changed since the previous sample (never on the first).
    pub reload: Option<ReloadDiff>,
}

/// Rules that vanished are remembered this long, so a rule removed by a non-atomic reload
/// (`nft flush ruleset` then `nft -f`, as a service restart does) keeps its history.
pub const RETIRED_KEEP_MS: u64 = 30 * 24 * 3_600_000;

/// Carries rule state across samples and reloads.
#[derive(Debug, Default)]
pub struct Tracker {
    live: HashMap<Arc<RuleKey>, RuleState>,
    /// Vanished rules (or rules restored from disk and not seen yet), with when they left.
    retired: HashMap<Arc<RuleKey>, (RuleState, u64)>,
    /// The previous sample, for naming removed rules in a diff.
    prev: Option<Arc<RulesetSample>>,
    tables: BTreeSet<TableRef>,
    samples: u64,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// A tracker that starts from persisted states: a rule seen again gets its first-seen
    /// and last-hit back, and, if its handle is unchanged and its counter did not go back,
    /// the packets counted while the daemon was away.
    pub fn restore(states: impl IntoIterator<Item = (RuleKey, RuleState)>, now_ms: u64) -> Self {
        let mut t = Tracker::new();
        for (k, s) in states {
            t.retired.insert(Arc::new(k), (s, now_ms));
        }
        t
    }

    /// Every rule's state (live and retired), for persistence.
    pub fn states(&self) -> impl Iterator<Item = (&RuleKey, &RuleState)> {
        self.live
            .iter()
            .map(|(k, s)| (&**k, s))
            .chain(self.retired.iter().map(|(k, (s, _))| (&**k, s)))
    }

    /// The state of a live rule.
    pub fn state(&self, key: &RuleKey) -> Option<&RuleState> {
        self.live.get(key)
    }

    /// Number of live and retired rules.
    pub fn len(&self) -> (usize, usize) {
        (self.live.len(), self.retired.len())
    }

    /// Takes one sample: matches rules to their state, computes deltas, and diffs.
    pub fn observe(&mut self, sample: Arc<RulesetSample>, now_ms: u64) -> Observation {
        let first = self.samples == 0;
        self.samples += 1;
        let keys = keys_for(&sample.rules);
        let mut diff = ReloadDiff::default();
        let mut out = Vec::with_capacity(keys.len());
        // States are updated in place (no second map of 10k rules per sample); `seen` marks
        // the ones this sample has.
        let generation = self.samples;

        for (index, (key, rule)) in keys.into_iter().zip(&sample.rules).enumerate() {
            let th = text_hash(&rule.text);
            let (key, was_live) = match self.live.get_key_value(&key) {
                Some((k, _)) => (k.clone(), true),
                None => {
                    let (k, s) = match self.retired.remove_entry(&key) {
                        Some((k, (s, _))) => (k, s),
                        None => {
                            // A rule never seen: its counter so far happened at unknown
                            // times before we looked, so it is neither a delta nor a hit.
                            if !first {
                                ReloadDiff::push(
                                    &mut diff.added,
                                    &mut diff.added_count,
                                    RuleRef::of(rule),
                                );
                            }
                            let k = Arc::new(key);
                            let s = RuleState {
                                first_seen_ms: now_ms,
                                last_hit_ms: None,
                                total: Counter::default(),
                                table_handle: rule.table_handle,
                                handle: rule.handle,
                                last_counter: rule.counter,
                                text_hash: th,
                                index: index as u32,
                                seen: generation,
                            };
                            self.live.insert(k.clone(), s);
                            out.push(RuleObs {
                                key: k,
                                delta: Counter::default(),
                                delta_timed: !first,
                            });
                            continue;
                        }
                    };
                    if !first {
                        ReloadDiff::push(&mut diff.added, &mut diff.added_count, RuleRef::of(rule));
                    }
                    self.live.insert(k.clone(), s);
                    (k, false)
                }
            };
            let Some(s) = self.live.get_mut(&key) else {
                continue;
            };
            let delta = match (rule.counter, s.last_counter) {
                (Some(c), Some(last))
                    if s.handle == rule.handle
                        && s.table_handle == rule.table_handle
                        && c.packets >= last.packets
                        && c.bytes >= last.bytes =>
                {
                    Counter {
                        packets: c.packets - last.packets,
                        bytes: c.bytes - last.bytes,
                    }
                }
                // A new handle, a recreated table or a counter that went back: a reload or
                // a reset. The counter started again at zero.
                (Some(c), _) => c,
                _ => Counter::default(),
            };
            if !first && was_live {
                if s.text_hash != th {
                    ReloadDiff::push(
                        &mut diff.changed,
                        &mut diff.changed_count,
                        RuleRef::of(rule),
                    );
                } else if s.handle != rule.handle || s.table_handle != rule.table_handle {
                    diff.rehandled_count += 1;
                }
            }
            s.handle = rule.handle;
            s.table_handle = rule.table_handle;
            s.last_counter = rule.counter;
            s.text_hash = th;
            s.index = index as u32;
            s.seen = generation;
            s.total.packets = s.total.packets.saturating_add(delta.packets);
            s.total.bytes = s.total.bytes.saturating_add(delta.bytes);
            if delta.packets > 0 {
                s.last_hit_ms = Some(now_ms);
            }
            out.push(RuleObs {
                key,
                delta,
                delta_timed: !first,
            });
        }

        // Whatever this sample did not mark vanished.
        if self.live.len() > out.len() {
            let gone: Vec<Arc<RuleKey>> = self
                .live
                .iter()
                .filter(|(_, s)| s.seen != generation)
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                if let Some(s) = self.live.remove(&k) {
                    if !first {
                        if let Some(r) = self
                            .prev
                            .as_ref()
                            .and_then(|p| p.rules.get(s.index as usize))
                        {
                            ReloadDiff::push(
                                &mut diff.removed,
                                &mut diff.removed_count,
                                RuleRef::of(r),
                            );
                        }
                    }
                    self.retired.insert(k, (s, now_ms));
                }
            }
        }
        self.prune_retired(now_ms);

        let tables: BTreeSet<TableRef> = sample.tables.iter().cloned().collect();
        if !first {
            diff.tables_added = tables.difference(&self.tables).cloned().collect();
            diff.tables_removed = self.tables.difference(&tables).cloned().collect();
        }
        self.tables = tables;
        self.prev = Some(sample);

        Observation {
            rules: out,
            reload: (!first && !diff.is_empty()).then_some(diff),
        }
    }

    /// Drops retired rules older than [`RETIRED_KEEP_MS`], and beyond a cap (the larger of
    /// 1,000 and the live rule count), oldest first: memory stays bounded however often the
    /// ruleset churns.
    fn prune_retired(&mut self, now_ms: u64) {
        self.retired
            .retain(|_, (_, since)| now_ms.saturating_sub(*since) <= RETIRED_KEEP_MS);
        let cap = self.live.len().max(1000);
        if self.retired.len() > cap {
            let mut ages: Vec<(u64, Arc<RuleKey>)> = self
                .retired
                .iter()
                .map(|(k, (_, since))| (*since, k.clone()))
                .collect();
            ages.sort();
            let excess = self.retired.len() - cap;
            for (_, k) in ages.into_iter().take(excess) {
                self.retired.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rule(
        chain: &str,
        handle: u64,
        comment: Option<&str>,
        text: &str,
        p: u64,
    ) -> RuleSample {
        RuleSample {
            family: "inet".into(),
            table: "fw".into(),
            chain: chain.into(),
            table_handle: 1,
            handle,
            comment: comment.map(str::to_string),
            text: text.into(),
            counter: Some(Counter {
                packets: p,
                bytes: p * 100,
            }),
        }
    }

    fn obs(t: &mut Tracker, s: &RulesetSample, now: u64) -> Observation {
        t.observe(Arc::new(s.clone()), now)
    }

    fn sample(rules: Vec<RuleSample>) -> RulesetSample {
        RulesetSample {
            tables: vec![TableRef {
                family: "inet".into(),
                name: "fw".into(),
            }],
            rules,
        }
    }

    #[test]
    fn text_hash_ignores_counter_values_and_spacing() {
        assert_eq!(
            text_hash("tcp dport 22 counter packets 5 bytes 300 accept"),
            text_hash("tcp dport 22  counter packets 0 bytes 0 accept")
        );
        assert_ne!(
            text_hash("tcp dport 22 accept"),
            text_hash("tcp dport 23 accept")
        );
        // "bytes" not followed by a number is part of the rule.
        assert_ne!(
            text_hash("quota 5 bytes accept"),
            text_hash("quota 5 accept")
        );
    }

    #[test]
    fn keys_by_comment_else_text_with_duplicates_numbered() {
        let rules = vec![
            rule("in", 1, Some("ssh"), "tcp dport 22 accept", 0),
            rule("in", 2, None, "tcp dport 80 accept", 0),
            rule("in", 3, None, "tcp dport 80 accept", 0),
            rule("in", 4, Some("ssh"), "tcp dport 2222 accept", 0),
            rule("out", 5, Some("ssh"), "tcp dport 22 accept", 0),
        ];
        let k = keys_for(&rules);
        assert_eq!(k[0].anchor, Anchor::Comment("ssh".into()));
        assert_eq!(k[0].ordinal, 0);
        assert_eq!(k[1].anchor, Anchor::Text(text_hash("tcp dport 80 accept")));
        assert_eq!((k[1].ordinal, k[2].ordinal), (0, 1));
        assert_eq!(k[3].ordinal, 1);
        assert_eq!(k[4].ordinal, 0, "ordinals count per chain");
        let ids: Vec<String> = k.iter().map(RuleKey::short_id).collect();
        assert_eq!(ids[0], "");
        assert_eq!(ids[3], "#2");
        assert!(ids[2].ends_with("#2") && ids[2].len() == 14, "{}", ids[2]);
    }

    #[test]
    fn deltas_never_negative_across_reset_and_reload() {
        let mut t = Tracker::new();
        let o = obs(
            &mut t,
            &sample(vec![rule("in", 1, Some("a"), "accept", 100)]),
            0,
        );
        assert_eq!(
            o.rules[0].delta,
            Counter::default(),
            "first sight is a baseline"
        );
        assert!(o.reload.is_none());
        let o = obs(
            &mut t,
            &sample(vec![rule("in", 1, Some("a"), "accept", 150)]),
            5_000,
        );
        assert_eq!(o.rules[0].delta.packets, 50);
        // `nft reset counters`: same handle, counter back to 7.
        let o = obs(
            &mut t,
            &sample(vec![rule("in", 1, Some("a"), "accept", 7)]),
            10_000,
        );
        assert_eq!(o.rules[0].delta.packets, 7);
        // `nft -f`: new handle, counter restarted and already at 200 (higher than before!).
        let o = obs(
            &mut t,
            &sample(vec![rule("in", 9, Some("a"), "accept", 200)]),
            15_000,
        );
        assert_eq!(
            o.rules[0].delta.packets, 200,
            "new handle means a fresh counter"
        );
        let d = o.reload.expect("handles changed: a reload");
        assert_eq!(d.rehandled_count, 1);
        let s = t.state(&o.rules[0].key).expect("state");
        assert_eq!(s.total.packets, 257);
        assert_eq!(s.first_seen_ms, 0);
        assert_eq!(s.last_hit_ms, Some(15_000));
    }

    #[test]
    fn reload_keeps_first_seen_and_last_hit_and_lists_changes() {
        let mut t = Tracker::new();
        let v1 = sample(vec![
            rule("in", 1, Some("ssh"), "tcp dport 22 accept", 0),
            rule("in", 2, None, "tcp dport 80 accept", 0),
            rule("in", 3, None, "tcp dport 25 accept", 0),
        ]);
        obs(&mut t, &v1, 1_000);
        let mut v1b = v1.clone();
        v1b.rules[0].counter = Some(Counter {
            packets: 3,
            bytes: 180,
        });
        obs(&mut t, &v1b, 2_000);
        // Reload: ssh rule changed port (same comment), port 80 kept, 25 removed, 443 added,
        // and a new table appeared.
        let mut v2 = sample(vec![
            rule("in", 11, Some("ssh"), "tcp dport 2222 accept", 0),
            rule("in", 12, None, "tcp dport 80 accept", 0),
            rule("in", 13, None, "tcp dport 443 accept", 0),
        ]);
        v2.tables.push(TableRef {
            family: "ip".into(),
            name: "nat".into(),
        });
        let o = obs(&mut t, &v2, 3_000);
        let d = o.reload.expect("diff");
        assert_eq!(d.changed_count, 1);
        assert_eq!(d.changed[0].text, "tcp dport 2222 accept");
        assert_eq!(d.added_count, 1);
        assert_eq!(d.added[0].text, "tcp dport 443 accept");
        assert_eq!(d.removed_count, 1);
        assert_eq!(d.removed[0].text, "tcp dport 25 accept");
        assert_eq!(d.rehandled_count, 1);
        assert_eq!(d.tables_added.len(), 1);
        let line = d.to_string();
        assert!(
            line.contains("1 rules added, 1 removed, 1 changed"),
            "{line}"
        );
        assert!(line.contains("table ip nat appeared"), "{line}");

        let ssh = t.state(&o.rules[0].key).expect("ssh");
        assert_eq!(ssh.first_seen_ms, 1_000);
        assert_eq!(ssh.last_hit_ms, Some(2_000));
        assert_eq!(ssh.total.packets, 3);
        let http = t.state(&o.rules[1].key).expect("80");
        assert_eq!(http.first_seen_ms, 1_000);
        assert!(http.never_hit());
        let https = t.state(&o.rules[2].key).expect("443");
        assert_eq!(https.first_seen_ms, 3_000);

        // The table vanishes again; the removed rule comes back with its first-seen.
        let o = obs(&mut t, &v1, 4_000);
        let d = o.reload.expect("diff");
        assert_eq!(d.tables_removed.len(), 1);
        let smtp = t.state(&o.rules[2].key).expect("25 again");
        assert_eq!(smtp.first_seen_ms, 1_000, "retired state restored");
    }

    #[test]
    fn recreated_table_is_a_reset_even_with_the_same_rule_handles() {
        // `flush ruleset` + reload: rule handles restart per table, so they come back equal;
        // the table's handle is new, and the counter (already above its old value) is new.
        let mut t = Tracker::new();
        obs(
            &mut t,
            &sample(vec![rule("in", 2, Some("a"), "accept", 10)]),
            0,
        );
        let mut r = rule("in", 2, Some("a"), "accept", 25);
        r.table_handle = 9;
        let o = obs(&mut t, &sample(vec![r]), 5_000);
        assert_eq!(o.rules[0].delta.packets, 25);
        assert_eq!(o.reload.expect("reload").rehandled_count, 1);
    }

    #[test]
    fn identical_resample_is_not_a_reload() {
        let mut t = Tracker::new();
        let s = sample(vec![rule("in", 1, None, "accept", 1)]);
        obs(&mut t, &s, 0);
        assert!(obs(&mut t, &s, 5_000).reload.is_none());
    }

    #[test]
    fn restore_continues_counting_when_handle_unchanged() {
        let mut t = Tracker::new();
        let s = sample(vec![rule("in", 1, Some("a"), "accept", 10)]);
        obs(&mut t, &s, 0);
        let saved: Vec<(RuleKey, RuleState)> =
            t.states().map(|(k, s)| (k.clone(), s.clone())).collect();
        let mut t2 = Tracker::restore(saved, 100_000);
        let o = obs(
            &mut t2,
            &sample(vec![rule("in", 1, Some("a"), "accept", 25)]),
            100_000,
        );
        assert!(!o.rules[0].delta_timed);
        assert_eq!(o.rules[0].delta.packets, 15);
        let st = t2.state(&o.rules[0].key).expect("state");
        assert_eq!(st.first_seen_ms, 0);
        assert_eq!(st.last_hit_ms, Some(100_000));
    }

    #[test]
    fn retired_rules_are_bounded() {
        let mut t = Tracker::new();
        for round in 0..3u64 {
            let rules: Vec<RuleSample> = (0..800)
                .map(|i| {
                    rule(
                        "in",
                        i,
                        None,
                        &format!("tcp dport {} accept", round * 1000 + i),
                        0,
                    )
                })
                .collect();
            obs(&mut t, &sample(rules), round * 1000);
        }
        let (live, retired) = t.len();
        assert_eq!(live, 800);
        assert_eq!(retired, 1000);
        obs(&mut t, &sample(vec![]), RETIRED_KEEP_MS + 10_000);
        assert_eq!(t.len(), (0, 800), "older than the keep time: dropped");
    }

    #[test]
    fn rules_without_counter_have_zero_delta() {
        let mut t = Tracker::new();
        let mut r = rule("in", 1, None, "accept", 0);
        r.counter = None;
        obs(&mut t, &sample(vec![r.clone()]), 0);
        let o = obs(&mut t, &sample(vec![r]), 5_000);
        assert_eq!(o.rules[0].delta, Counter::default());
        assert!(t.state(&o.rules[0].key).expect("s").never_hit());
    }
}
