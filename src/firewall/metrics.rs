//! The `pirouterd_nft_*` Prometheus families, in the text exposition format.
//!
//! Rule series are labelled `family`, `table`, `chain`, `comment`, `rule` (a short id that
//! is stable across reloads, see [`RuleKey::short_id`]) and the nfprom-style labels parsed
//! from comments (`nft(service=SSH;dir=in)`). The handle is not a label: `nft -f` changes
//! every handle, and a handle label would start a new series for every rule on every
//! reload. It is in the JSON API (`/api/v1/firewall/rules`), which names the same rules by
//! the same `id`.
//!
//! Rules whose comments carry different keys still export: every rule gets every key seen
//! in any comment, empty where it has none (Prometheus treats an empty label as absent).
//! Label names are made valid and `snake_case` (promtool's lint), and a key that would
//! shadow a fixed label is prefixed with `nft_`. Label sets that still coincide are told
//! apart by a `~n` suffix on `rule`, so a scrape never carries a duplicate series.
//!
//! Label blocks are built once per ruleset shape ([`RuleLabels`]) and reused by every
//! scrape: rendering is then string concatenation and number formatting.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use super::identity::{RuleKey, RuleSample};
use super::labels::parse_labels;
use crate::http::metrics::escape_label;

/// A named counter object (`counter cnt_0 { }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCounterSample {
    pub family: String,
    pub table: String,
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// A named set and how many elements it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSample {
    pub family: String,
    pub table: String,
    pub name: String,
    pub elements: u64,
}

/// The nfprom labels of a comment under their export names (see [`labels`](super::labels)):
/// the same labels the JSON API shows.
pub fn nfprom_labels(comment: &str) -> Vec<(String, String)> {
    parse_labels(comment).pairs
}

/// The label blocks (`family="inet",table="fw",...`) of every rule, in rule order, built
/// once per ruleset shape.
#[derive(Debug, Default, Clone)]
pub struct RuleLabels {
    keys: Vec<Arc<RuleKey>>,
    blocks: Vec<Box<str>>,
}

impl RuleLabels {
    /// Builds the blocks for `rules`, whose keys are `keys` (same order).
    pub fn build(keys: &[Arc<RuleKey>], rules: &[RuleSample]) -> RuleLabels {
        let parsed: Vec<Vec<(String, String)>> = rules
            .iter()
            .map(|r| nfprom_labels(r.comment.as_deref().unwrap_or("")))
            .collect();
        let union: BTreeSet<&str> = parsed
            .iter()
            .flat_map(|v| v.iter().map(|(k, _)| k.as_str()))
            .collect();
        let mut seen: HashMap<String, u32> = HashMap::with_capacity(rules.len());
        let mut blocks = Vec::with_capacity(rules.len());
        for ((key, rule), extra) in keys.iter().zip(rules).zip(&parsed) {
            let mut rest = String::new();
            for name in &union {
                rest.push(',');
                rest.push_str(name);
                rest.push_str("=\"");
                if let Some((_, v)) = extra.iter().find(|(k, _)| k == name) {
                    escape_label(&mut rest, v);
                }
                rest.push('"');
            }
            let mut id = key.short_id();
            let mut block = head(rule, &id, &rest);
            // Distinct keys give distinct blocks unless 48 bits of text hash collide.
            let mut n = 1;
            while seen.contains_key(&block) {
                n += 1;
                id = format!("{}~{n}", key.short_id());
                block = head(rule, &id, &rest);
            }
            seen.insert(block.clone(), 1);
            blocks.push(block.into_boxed_str());
        }
        RuleLabels {
            keys: keys.to_vec(),
            blocks,
        }
    }

    /// True when these blocks were built for exactly these keys, in this order.
    pub fn is_for(&self, keys: &[Arc<RuleKey>]) -> bool {
        self.keys.len() == keys.len()
            && self
                .keys
                .iter()
                .zip(keys)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
    }

    /// The label block of rule `i`.
    pub fn block(&self, i: usize) -> Option<&str> {
        self.blocks.get(i).map(|b| &**b)
    }
}

fn head(rule: &RuleSample, id: &str, rest: &str) -> String {
    let mut s = String::with_capacity(64 + rest.len());
    s.push_str("family=\"");
    escape_label(&mut s, &rule.family);
    s.push_str("\",table=\"");
    escape_label(&mut s, &rule.table);
    s.push_str("\",chain=\"");
    escape_label(&mut s, &rule.chain);
    s.push_str("\",comment=\"");
    escape_label(&mut s, rule.comment.as_deref().unwrap_or(""));
    s.push_str("\",rule=\"");
    escape_label(&mut s, id);
    s.push('"');
    s.push_str(rest);
    s
}

/// Everything the nftables metrics are rendered from.
#[derive(Debug, Clone, Copy)]
pub struct NftMetrics<'a> {
    pub rules: &'a [RuleSample],
    /// Built for `rules` ([`RuleLabels::build`]).
    pub labels: &'a RuleLabels,
    /// Last-hit time (Unix ms) per rule, in rule order; `None`: not hit since first seen.
    pub last_hit_ms: &'a [Option<u64>],
    pub counters: &'a [NamedCounterSample],
    pub sets: &'a [SetSample],
    /// Reloads seen since the daemon started.
    pub reloads: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

fn obj_labels(out: &mut String, family: &str, table: &str, key: &str, name: &str) {
    out.push_str("{family=\"");
    escape_label(out, family);
    out.push_str("\",table=\"");
    escape_label(out, table);
    out.push_str("\",");
    out.push_str(key);
    out.push_str("=\"");
    escape_label(out, name);
    out.push_str("\"}");
}

/// Appends the nftables families to `out`. Rules without a counter have no series (they
/// cannot be measured); `rules`, `labels` and `last_hit_ms` must be aligned, and rules
/// beyond the shortest of them are left out rather than mislabelled.
pub fn render(out: &mut String, m: &NftMetrics<'_>) {
    let n = m
        .rules
        .len()
        .min(m.labels.blocks.len())
        .min(m.last_hit_ms.len());
    let measured = || {
        (0..n).filter_map(|i| {
            let r = &m.rules[i];
            r.counter.map(|c| (i, r, c, &*m.labels.blocks[i]))
        })
    };

    family(
        out,
        "pirouterd_nft_rule_packets_total",
        "counter",
        "Packets counted by the rule's counter (the kernel's value: restarts at 0 when the ruleset is reloaded).",
    );
    for (_, _, c, b) in measured() {
        let _ = writeln!(out, "pirouterd_nft_rule_packets_total{{{b}}} {}", c.packets);
    }
    family(
        out,
        "pirouterd_nft_rule_bytes_total",
        "counter",
        "Bytes counted by the rule's counter (the kernel's value: restarts at 0 when the ruleset is reloaded).",
    );
    for (_, _, c, b) in measured() {
        let _ = writeln!(out, "pirouterd_nft_rule_bytes_total{{{b}}} {}", c.bytes);
    }
    family(
        out,
        "pirouterd_nft_rule_last_hit_timestamp_seconds",
        "gauge",
        "When the rule's counter last moved (Unix time); absent for rules not hit since first seen.",
    );
    for (i, _, _, b) in measured() {
        if let Some(ms) = m.last_hit_ms[i] {
            let _ = writeln!(
                out,
                "pirouterd_nft_rule_last_hit_timestamp_seconds{{{b}}} {}.{:03}",
                ms / 1000,
                ms % 1000
            );
        }
    }

    let mut dead: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for (i, r, _, _) in measured() {
        let e = dead.entry((&r.family, &r.table, &r.chain)).or_insert(0);
        if m.last_hit_ms[i].is_none() {
            *e += 1;
        }
    }
    family(
        out,
        "pirouterd_nft_rules_never_hit",
        "gauge",
        "Rules with a counter that has not moved since the rule was first seen, per chain.",
    );
    for ((f, t, c), v) in dead {
        out.push_str("pirouterd_nft_rules_never_hit{family=\"");
        escape_label(out, f);
        out.push_str("\",table=\"");
        escape_label(out, t);
        out.push_str("\",chain=\"");
        escape_label(out, c);
        let _ = writeln!(out, "\"}} {v}");
    }

    family(
        out,
        "pirouterd_nft_object_packets_total",
        "counter",
        "Packets counted by a named counter object.",
    );
    let mut seen = BTreeSet::new();
    for c in m.counters {
        if seen.insert((&c.family, &c.table, &c.name)) {
            out.push_str("pirouterd_nft_object_packets_total");
            obj_labels(out, &c.family, &c.table, "counter", &c.name);
            let _ = writeln!(out, " {}", c.packets);
        }
    }
    family(
        out,
        "pirouterd_nft_object_bytes_total",
        "counter",
        "Bytes counted by a named counter object.",
    );
    seen.clear();
    for c in m.counters {
        if seen.insert((&c.family, &c.table, &c.name)) {
            out.push_str("pirouterd_nft_object_bytes_total");
            obj_labels(out, &c.family, &c.table, "counter", &c.name);
            let _ = writeln!(out, " {}", c.bytes);
        }
    }
    family(
        out,
        "pirouterd_nft_set_elements",
        "gauge",
        "Elements in a named set.",
    );
    seen.clear();
    for s in m.sets {
        if seen.insert((&s.family, &s.table, &s.name)) {
            out.push_str("pirouterd_nft_set_elements");
            obj_labels(out, &s.family, &s.table, "set", &s.name);
            let _ = writeln!(out, " {}", s.elements);
        }
    }
    family(
        out,
        "pirouterd_nft_ruleset_reloads_total",
        "counter",
        "Ruleset reloads seen since the daemon started (rules added, removed, changed or given new handles).",
    );
    let _ = writeln!(out, "pirouterd_nft_ruleset_reloads_total {}", m.reloads);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::identity::{keys_for, Counter};

    fn rule(chain: &str, handle: u64, comment: Option<&str>, text: &str) -> RuleSample {
        RuleSample {
            family: "inet".into(),
            table: "fw".into(),
            chain: chain.into(),
            table_handle: 1,
            handle,
            comment: comment.map(str::to_string),
            text: text.into(),
            counter: Some(Counter {
                packets: handle * 10,
                bytes: handle * 1000,
            }),
        }
    }

    #[test]
    fn differing_keys_become_empty_labels_and_duplicates_are_split() {
        let rules = vec![
            rule(
                "acct",
                1,
                Some("nft(service=SSH;dir=in)"),
                "tcp dport 22 counter",
            ),
            rule("acct", 2, Some("nft(service=WEB)"), "tcp dport 80 counter"),
            rule("acct", 3, Some("nft(service=WEB)"), "tcp dport 443 counter"),
            rule("acct", 4, None, "udp dport 53 counter"),
            rule("acct", 5, Some("say \"hi\"\\\n"), "counter"),
        ];
        let keys: Vec<Arc<RuleKey>> = keys_for(&rules).into_iter().map(Arc::new).collect();
        let l = RuleLabels::build(&keys, &rules);
        assert!(l.is_for(&keys));
        let b: Vec<&str> = (0..5).map(|i| l.block(i).expect("block")).collect();
        assert_eq!(
            b[0],
            "family=\"inet\",table=\"fw\",chain=\"acct\",comment=\"nft(service=SSH;dir=in)\",rule=\"\",dir=\"in\",service=\"SSH\""
        );
        assert!(
            b[1].ends_with(",rule=\"\",dir=\"\",service=\"WEB\""),
            "{}",
            b[1]
        );
        assert!(
            b[2].ends_with(",rule=\"#2\",dir=\"\",service=\"WEB\""),
            "{}",
            b[2]
        );
        assert!(b[3].contains("comment=\"\",rule=\""), "{}", b[3]);
        assert!(b[4].contains(r#"comment="say \"hi\"\\\n""#), "{}", b[4]);
        let uniq: BTreeSet<&&str> = b.iter().collect();
        assert_eq!(uniq.len(), 5);
    }

    #[test]
    fn render_has_help_type_and_skips_unmeasurable() {
        let mut rules = vec![
            rule("in", 1, Some("a"), "counter accept"),
            rule("in", 2, Some("b"), "counter accept"),
            rule("in", 3, Some("c"), "accept"),
        ];
        rules[2].counter = None;
        let keys: Vec<Arc<RuleKey>> = keys_for(&rules).into_iter().map(Arc::new).collect();
        let labels = RuleLabels::build(&keys, &rules);
        let mut out = String::new();
        render(
            &mut out,
            &NftMetrics {
                rules: &rules,
                labels: &labels,
                last_hit_ms: &[Some(1_700_000_000_123), None, None],
                counters: &[NamedCounterSample {
                    family: "inet".into(),
                    table: "fw".into(),
                    name: "cnt".into(),
                    packets: 4,
                    bytes: 400,
                }],
                sets: &[SetSample {
                    family: "inet".into(),
                    table: "fw".into(),
                    name: "blocklist".into(),
                    elements: 7,
                }],
                reloads: 2,
            },
        );
        assert!(out.contains("# TYPE pirouterd_nft_rule_packets_total counter\n"));
        assert!(out.contains(
            "pirouterd_nft_rule_packets_total{family=\"inet\",table=\"fw\",chain=\"in\",comment=\"a\",rule=\"\"} 10\n"
        ));
        assert!(!out.contains("comment=\"c\""), "no counter, no series");
        assert!(out.contains("pirouterd_nft_rule_last_hit_timestamp_seconds{family=\"inet\",table=\"fw\",chain=\"in\",comment=\"a\",rule=\"\"} 1700000000.123\n"));
        assert!(out.contains(
            "pirouterd_nft_rules_never_hit{family=\"inet\",table=\"fw\",chain=\"in\"} 1\n"
        ));
        assert!(out.contains(
            "pirouterd_nft_object_bytes_total{family=\"inet\",table=\"fw\",counter=\"cnt\"} 400\n"
        ));
        assert!(out.contains(
            "pirouterd_nft_set_elements{family=\"inet\",table=\"fw\",set=\"blocklist\"} 7\n"
        ));
        assert!(out.contains("pirouterd_nft_ruleset_reloads_total 2\n"));
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().expect("name");
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
