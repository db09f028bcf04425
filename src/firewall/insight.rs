//! What users ask of their firewall: which rules are hot, which have never been hit (cleanup
//! candidates), and the numbers for Prometheus.
//!
//! [`Insight`] ties together rule identity ([`Tracker`]), rate history ([`History`]) and
//! metric labels ([`RuleLabels`]) over successive ruleset samples. The sampler thread calls
//! [`Insight::observe`]; readers call [`Insight::rules`] and [`Insight::render_metrics`].
//!
//! A rule is *never hit* when its counter has not moved since it was first seen (first-seen
//! survives reloads and, through `persist`, restarts). A rule without a counter expression
//! cannot be measured: it is shown as such, with a hint, and never counted as dead.
//!
//! Pure: every call takes `now_ms` (Unix milliseconds).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

use super::history::{FinePoint, History, Rates, Sparkline};
use super::identity::{ReloadDiff, RuleKey, RuleSample, RuleState, RulesetSample, Tracker};
use super::metrics::{self, NamedCounterSample, NftMetrics, RuleLabels, SetSample};

/// How many of the hottest rules get fine history (the page's top list).
pub const WATCH_TOP: usize = 20;

/// The hint shown for rules that cannot be measured.
pub const NO_COUNTER_HINT: &str =
    "this rule has no counter of its own: add the `counter` statement to it (before the verdict) \
     to measure it (`counter name \"x\"` counts into the named counter x instead, shown under \
     counters)";

/// Orders of `GET /api/v1/firewall/rules?sort=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Ruleset order.
    Ruleset,
    /// Highest packet rate over the last minute first (then 15 min, then bytes).
    Hot,
    /// Never-hit rules first (longest since first seen first), then the rest by last hit,
    /// oldest first: the cleanup list.
    Dead,
    /// Highest counter first.
    Packets,
}

/// An unknown `sort=` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sort {0:?}: use hot, dead or packets")]
pub struct BadSort(pub String);

impl FromStr for Sort {
    type Err = BadSort;
    fn from_str(s: &str) -> Result<Sort, BadSort> {
        match s {
            "" | "ruleset" => Ok(Sort::Ruleset),
            "hot" => Ok(Sort::Hot),
            "dead" => Ok(Sort::Dead),
            "packets" => Ok(Sort::Packets),
            other => Err(BadSort(other.to_string())),
        }
    }
}

/// A rule as `GET /api/v1/firewall/rules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleView {
    pub family: Arc<str>,
    pub table: Arc<str>,
    pub chain: Arc<str>,
    pub handle: u64,
    /// Stable across reloads, unique in the chain (empty for the first rule with a comment).
    pub id: String,
    pub text: String,
    pub comment: Option<String>,
    /// nfprom-style labels from the comment (`nft(key=value;...)`).
    pub labels: BTreeMap<String, String>,
    /// The kernel's counter; `null` for rules without a counter.
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    /// Packets per second over the last minute.
    pub rate_pps: Option<f64>,
    /// Bytes per second over the last minute.
    pub rate_bps: Option<f64>,
    /// Rates over 1 min, 15 min and 1 h.
    pub rates: Option<Rates>,
    /// RFC 3339, UTC; `null` when not hit since first seen.
    pub last_hit: Option<String>,
    pub first_seen: Option<String>,
    pub never_hit: bool,
    pub measurable: bool,
    pub hint: Option<&'static str>,
    /// Counted since first seen, summed over reloads.
    pub packets_since_first_seen: u64,
    pub bytes_since_first_seen: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparkline: Option<Sparkline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine: Option<Vec<FinePoint>>,
}

/// What `GET /api/v1/firewall/rules` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesQuery {
    pub sort: Sort,
    pub limit: Option<usize>,
    /// Include each rule's 60-minute sparkline.
    pub sparkline: bool,
    /// Include fine history (only rules the page watches have one).
    pub fine: bool,
}

impl Default for RulesQuery {
    fn default() -> Self {
        RulesQuery {
            sort: Sort::Ruleset,
            limit: None,
            sparkline: false,
            fine: false,
        }
    }
}

/// Rule identity, history and metric labels over successive samples.
#[derive(Debug, Default)]
pub struct Insight {
    tracker: Tracker,
    history: History,
    labels: RuleLabels,
    keys: Vec<Arc<RuleKey>>,
    sample: Arc<RulesetSample>,
    counters: Vec<NamedCounterSample>,
    sets: Vec<SetSample>,
    reloads: u64,
}

/// What sorting needs of one rule, without building its view.
#[derive(Debug, Clone, Copy)]
struct Row {
    i: usize,
    measurable: bool,
    never_hit: bool,
    pps: f64,
    pps15: f64,
    bps: f64,
    first_seen: u64,
    last_hit: Option<u64>,
    packets: u64,
    bytes: u64,
}

impl Insight {
    pub fn new() -> Insight {
        Insight::default()
    }

    /// Starts from persisted rule states (see `persist`).
    pub fn restore(states: impl IntoIterator<Item = (RuleKey, RuleState)>, now_ms: u64) -> Self {
        Insight {
            tracker: Tracker::restore(states, now_ms),
            ..Insight::default()
        }
    }

    /// Takes one sample. Returns what changed when it was a reload (never for the first).
    pub fn observe(
        &mut self,
        sample: RulesetSample,
        counters: Vec<NamedCounterSample>,
        sets: Vec<SetSample>,
        now_ms: u64,
    ) -> Option<ReloadDiff> {
        let sample = Arc::new(sample);
        let obs = self.tracker.observe(sample.clone(), now_ms);
        self.history.record(
            now_ms,
            obs.rules
                .iter()
                .zip(&sample.rules)
                .filter(|(_, r)| r.counter.is_some())
                .map(|(o, _)| o),
        );
        self.keys = obs.rules.into_iter().map(|o| o.key).collect();
        if !self.labels.is_for(&self.keys) {
            self.labels = RuleLabels::build(&self.keys, &sample.rules);
        }
        self.sample = sample;
        self.counters = counters;
        self.sets = sets;
        if obs.reload.is_some() {
            self.reloads += 1;
        }
        // The page's top list gets fine history: the hottest rules that moved.
        let mut rows: Vec<Row> = self.rows(now_ms).filter(|r| r.pps > 0.0).collect();
        sort_rows(&mut rows, Sort::Hot);
        let watch: Vec<Arc<RuleKey>> = rows
            .iter()
            .take(WATCH_TOP)
            .filter_map(|r| self.keys.get(r.i).cloned())
            .collect();
        self.history.watch(watch);
        obs.reload
    }

    /// Rule states (live and recently vanished) for persistence.
    pub fn states(&self) -> impl Iterator<Item = (&RuleKey, &RuleState)> {
        self.tracker.states()
    }

    /// Reloads seen since start.
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    /// The history, for the memory budget and the page.
    pub fn history(&self) -> &History {
        &self.history
    }

    fn rows(&self, now_ms: u64) -> impl Iterator<Item = Row> + '_ {
        self.sample
            .rules
            .iter()
            .zip(&self.keys)
            .enumerate()
            .map(move |(i, (r, k))| {
                let st = self.tracker.state(k);
                let measurable = r.counter.is_some();
                let rates = if measurable {
                    self.history.rates(k, now_ms)
                } else {
                    None
                };
                let last_hit = st.and_then(|s| s.last_hit_ms);
                Row {
                    i,
                    measurable,
                    never_hit: measurable && last_hit.is_none(),
                    pps: rates.map_or(0.0, |r| r.pps_1m),
                    pps15: rates.map_or(0.0, |r| r.pps_15m),
                    bps: rates.map_or(0.0, |r| r.bps_1m),
                    first_seen: st.map_or(now_ms, |s| s.first_seen_ms),
                    last_hit,
                    packets: r.counter.map_or(0, |c| c.packets),
                    bytes: r.counter.map_or(0, |c| c.bytes),
                }
            })
    }

    /// The rules, sorted and limited. Sorting works on small rows; only the rules returned
    /// are turned into views.
    pub fn rules(&self, q: &RulesQuery, now_ms: u64) -> Vec<RuleView> {
        let mut rows: Vec<Row> = self.rows(now_ms).collect();
        sort_rows(&mut rows, q.sort);
        let n = q.limit.unwrap_or(rows.len()).min(rows.len());
        rows[..n]
            .iter()
            .filter_map(|row| {
                let r = self.sample.rules.get(row.i)?;
                let k = self.keys.get(row.i)?;
                Some(self.view(r, k, q, now_ms))
            })
            .collect()
    }

    fn view(&self, r: &RuleSample, k: &RuleKey, q: &RulesQuery, now_ms: u64) -> RuleView {
        let st = self.tracker.state(k);
        let measurable = r.counter.is_some();
        let rates = if measurable {
            self.history.rates(k, now_ms)
        } else {
            None
        };
        let last_hit_ms = st.and_then(|s| s.last_hit_ms);
        RuleView {
            family: r.family.clone(),
            table: r.table.clone(),
            chain: r.chain.clone(),
            handle: r.handle,
            id: k.short_id(),
            text: r.text.clone(),
            comment: r.comment.clone(),
            labels: metrics::nfprom_labels(r.comment.as_deref().unwrap_or(""))
                .into_iter()
                .collect(),
            packets: r.counter.map(|c| c.packets),
            bytes: r.counter.map(|c| c.bytes),
            rate_pps: rates.map(|r| r.pps_1m),
            rate_bps: rates.map(|r| r.bps_1m),
            rates,
            last_hit: last_hit_ms.map(rfc3339),
            first_seen: st.map(|s| rfc3339(s.first_seen_ms)),
            never_hit: measurable && last_hit_ms.is_none(),
            measurable,
            hint: (!measurable).then_some(NO_COUNTER_HINT),
            packets_since_first_seen: st.map_or(0, |s| s.total.packets),
            bytes_since_first_seen: st.map_or(0, |s| s.total.bytes),
            sparkline: if q.sparkline && measurable {
                self.history.sparkline(k)
            } else {
                None
            },
            fine: if q.fine { self.history.fine(k) } else { None },
        }
    }

    /// Appends the `pirouterd_nft_*` families.
    pub fn render_metrics(&self, out: &mut String) {
        let last_hit: Vec<Option<u64>> = self
            .keys
            .iter()
            .map(|k| self.tracker.state(k).and_then(|s| s.last_hit_ms))
            .collect();
        metrics::render(
            out,
            &NftMetrics {
                rules: &self.sample.rules,
                labels: &self.labels,
                last_hit_ms: &last_hit,
                counters: &self.counters,
                sets: &self.sets,
                reloads: self.reloads,
            },
        );
    }
}

fn sort_rows(v: &mut [Row], sort: Sort) {
    // Unmeasurable rules always go last, in ruleset order (the sort is stable).
    let unmeasured_last = |a: &Row, b: &Row| b.measurable.cmp(&a.measurable);
    match sort {
        Sort::Ruleset => {}
        Sort::Hot => v.sort_by(|a, b| {
            unmeasured_last(a, b)
                .then_with(|| b.pps.total_cmp(&a.pps))
                .then_with(|| b.pps15.total_cmp(&a.pps15))
                .then_with(|| b.bps.total_cmp(&a.bps))
        }),
        Sort::Dead => v.sort_by(|a, b| {
            unmeasured_last(a, b)
                .then_with(|| b.never_hit.cmp(&a.never_hit))
                .then_with(|| {
                    if a.never_hit {
                        a.first_seen.cmp(&b.first_seen)
                    } else {
                        a.last_hit.cmp(&b.last_hit)
                    }
                })
        }),
        Sort::Packets => v.sort_by(|a, b| {
            unmeasured_last(a, b)
                .then_with(|| b.packets.cmp(&a.packets))
                .then_with(|| b.bytes.cmp(&a.bytes))
        }),
    }
}

/// Unix milliseconds as RFC 3339 UTC, second precision: `2026-11-24T07:30:00Z`.
pub fn rfc3339(ms: u64) -> String {
    crate::logging::utc(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::identity::{Counter, TableRef};

    fn rule(handle: u64, comment: Option<&str>, p: Option<u64>) -> RuleSample {
        RuleSample {
            family: "inet".into(),
            table: "fw".into(),
            chain: "in".into(),
            table_handle: 1,
            handle,
            comment: comment.map(str::to_string),
            text: format!("tcp dport {handle} counter accept"),
            counter: p.map(|p| Counter {
                packets: p,
                bytes: p * 60,
            }),
        }
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

    const T0: u64 = 1_700_000_040_000;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_575_845_999), "2026-11-25T03:04:05Z");
    }

    #[test]
    fn hot_dead_packets_and_unmeasurable() {
        let mut ins = Insight::new();
        let mk = |a: u64, b: u64, c: u64| {
            sample(vec![
                rule(1, Some("quiet"), Some(a)),
                rule(2, Some("busy"), Some(b)),
                rule(3, Some("was-busy"), Some(c)),
                rule(4, Some("uncounted"), None),
                rule(5, Some("dead"), Some(0)),
            ])
        };
        ins.observe(mk(0, 0, 0), vec![], vec![], T0);
        ins.observe(mk(0, 0, 900), vec![], vec![], T0 + 5_000);
        let mut t = T0 + 5_000;
        for i in 1..=12u64 {
            t += 5_000;
            ins.observe(mk(i / 12, i * 100, 900), vec![], vec![], t);
        }
        let hot = ins.rules(
            &RulesQuery {
                sort: Sort::Hot,
                limit: Some(3),
                ..RulesQuery::default()
            },
            t,
        );
        let names: Vec<_> = hot
            .iter()
            .map(|v| v.comment.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["busy", "was-busy", "quiet"]);
        // 100 packets per 5 s since T0 + 5 s; the window reaches 55 s into the previous minute.
        let expect = (100.0 + 1100.0 * 55.0 / 60.0) / 60.0;
        let pps = hot[0].rate_pps.expect("rate");
        assert!((pps - expect).abs() < 1e-6, "{pps} vs {expect}");
        assert!((hot[0].rate_bps.expect("bps") - pps * 60.0).abs() < 1e-6);

        let dead = ins.rules(
            &RulesQuery {
                sort: Sort::Dead,
                ..RulesQuery::default()
            },
            t,
        );
        let names: Vec<_> = dead
            .iter()
            .map(|v| v.comment.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["dead", "was-busy", "quiet", "busy", "uncounted"]);
        assert!(dead[0].never_hit && dead[0].last_hit.is_none());
        let unc = &dead[4];
        assert!(!unc.measurable && !unc.never_hit);
        assert_eq!(unc.hint, Some(NO_COUNTER_HINT));
        assert_eq!((unc.packets, unc.rate_pps), (None, None));

        let by_packets = ins.rules(
            &RulesQuery {
                sort: Sort::Packets,
                limit: Some(2),
                ..RulesQuery::default()
            },
            t,
        );
        assert_eq!(by_packets[0].packets, Some(1200));
        assert_eq!(by_packets[1].packets, Some(900));

        let json = serde_json::to_value(&hot[0]).expect("json");
        for f in [
            "family",
            "table",
            "chain",
            "handle",
            "text",
            "comment",
            "labels",
            "packets",
            "bytes",
            "rate_pps",
            "rate_bps",
            "last_hit",
            "first_seen",
        ] {
            assert!(json.get(f).is_some(), "{f} missing in {json}");
        }
        assert_eq!(json["first_seen"], rfc3339(T0));
    }

    #[test]
    fn watched_hot_rules_get_fine_history_and_metrics_render() {
        let mut ins = Insight::new();
        let mut t = T0;
        for i in 0..10u64 {
            ins.observe(
                sample(vec![
                    rule(1, Some("nft(svc=a)"), Some(i * 5)),
                    rule(2, None, Some(0)),
                ]),
                vec![],
                vec![],
                t,
            );
            t += 5_000;
        }
        let v = ins.rules(
            &RulesQuery {
                fine: true,
                sparkline: true,
                ..RulesQuery::default()
            },
            t,
        );
        assert!(
            v[0].fine.as_ref().is_some_and(|f| f.len() >= 8),
            "{:?}",
            v[0].fine
        );
        assert!(v[1].fine.is_none(), "idle rules are not watched");
        assert_eq!(v[0].sparkline.as_ref().map(|s| s.packets.len()), Some(60));
        assert_eq!(v[0].labels.get("svc").map(String::as_str), Some("a"));
        let mut out = String::new();
        ins.render_metrics(&mut out);
        assert!(out.contains("svc=\"a\"} 45\n"), "{out}");
        assert!(out.contains(
            "pirouterd_nft_rules_never_hit{family=\"inet\",table=\"fw\",chain=\"in\"} 1\n"
        ));
    }

    #[test]
    fn bad_sort_is_an_error() {
        assert_eq!("hot".parse(), Ok(Sort::Hot));
        assert!("cold"
            .parse::<Sort>()
            .expect_err("cold is no sort")
            .to_string()
            .contains("cold"));
    }
}
