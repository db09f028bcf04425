//! Firewall insight against the real kernel: traffic between two namespaces makes one rule
//! hot and leaves others dead; `nft -f` reloads keep identity, first-seen and last-hit and
//! the reload diff lists what changed; state persisted and restored keeps first-seen; the
//! metrics rendered from the real ruleset pass `promtool check metrics`.
//!
//! Until the ruleset snapshot (branch `nft`) lands, samples are read from
//! `nft -j list ruleset` here; time is injected (`now`), so nothing sleeps.
mod common;

use common::Netns;
use pirouterd::firewall::identity::{Counter, RuleSample, RulesetSample, TableRef};
use pirouterd::firewall::insight::{rfc3339, Insight, RulesQuery, Sort};
use pirouterd::firewall::metrics::SetSample;
use pirouterd::firewall::persist;

/// A ruleset sample from `nft -j list ruleset` (the rule text is its JSON expression with
/// counter values removed).
fn sample_of(ns: &Netns) -> RulesetSample {
    let j = ns.nft_json();
    let mut s = RulesetSample::default();
    let mut table_handles = std::collections::HashMap::new();
    for o in j["nftables"].as_array().expect("array") {
        if let Some(t) = o.get("table") {
            table_handles.insert(
                (t["family"].to_string(), t["name"].to_string()),
                t["handle"].as_u64().expect("table handle"),
            );
            s.tables.push(TableRef {
                family: t["family"].as_str().expect("family").into(),
                name: t["name"].as_str().expect("name").into(),
            });
        }
        if let Some(r) = o.get("rule") {
            let mut counter = None;
            let mut expr = r["expr"].clone();
            for e in expr.as_array_mut().expect("expr") {
                if let Some(c) = e.get("counter").filter(|c| c.is_object()) {
                    counter = Some(Counter {
                        packets: c["packets"].as_u64().expect("packets"),
                        bytes: c["bytes"].as_u64().expect("bytes"),
                    });
                    *e = serde_json::json!("counter");
                }
            }
            s.rules.push(RuleSample {
                family: r["family"].as_str().expect("family").into(),
                table: r["table"].as_str().expect("table").into(),
                chain: r["chain"].as_str().expect("chain").into(),
                table_handle: table_handles[&(r["family"].to_string(), r["table"].to_string())],
                handle: r["handle"].as_u64().expect("handle"),
                comment: r
                    .get("comment")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
                text: expr.to_string(),
                counter,
            });
        }
    }
    s
}

const V1: &str = r#"flush ruleset
table inet fw {
  set blocklist { type ipv4_addr; }
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request counter comment "nft(svc=ping;dir=in)"
    tcp dport 9 counter comment "nft(svc=discard;dir=in)"
    udp dport 7 counter
    ip saddr @blocklist counter drop
    ip saddr 10.250.0.0/16 accept
  }
}
"#;

/// The reload: `udp dport 7` removed, `udp dport 53` added, the rest as before.
const V2: &str = r#"flush ruleset
table inet fw {
  set blocklist { type ipv4_addr; }
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request counter comment "nft(svc=ping;dir=in)"
    tcp dport 9 counter comment "nft(svc=discard;dir=in)"
    udp dport 53 counter comment "nft(svc=dns;dir=in;proto=udp)"
    ip saddr @blocklist counter drop
    ip saddr 10.250.0.0/16 accept
  }
}
table ip extra {
  chain c { counter; }
}
"#;

const T0: u64 = 1_790_000_000_000;

fn ping(from: &Netns, n: u32) {
    from.run(&[
        "ping",
        "-c",
        &n.to_string(),
        "-i",
        "0.05",
        "-W",
        "1",
        "10.77.0.1",
    ]);
}

fn by_comment<'a>(
    v: &'a [pirouterd::firewall::insight::RuleView],
    c: &str,
) -> &'a pirouterd::firewall::insight::RuleView {
    v.iter()
        .find(|r| r.comment.as_deref() == Some(c))
        .unwrap_or_else(|| panic!("no rule with comment {c}"))
}

#[test]
fn hot_dead_reload_restart_and_metrics_on_a_real_ruleset() {
    let a = Netns::new("ins");
    let b = Netns::new("ins");
    a.veth("ia", "10.77.0.1/30", &b, "ib", "10.77.0.2/30");
    a.nft_load(V1);

    let mut ins = Insight::new();
    let sets = vec![SetSample {
        family: "inet".into(),
        table: "fw".into(),
        name: "blocklist".into(),
        elements: 0,
    }];
    assert!(ins
        .observe(sample_of(&a), vec![], sets.clone(), T0)
        .is_none());
    ping(&b, 5);
    assert!(ins
        .observe(sample_of(&a), vec![], sets.clone(), T0 + 5_000)
        .is_none());

    let hot = ins.rules(
        &RulesQuery {
            sort: Sort::Hot,
            limit: Some(2),
            ..Default::default()
        },
        T0 + 5_000,
    );
    assert_eq!(hot[0].comment.as_deref(), Some("nft(svc=ping;dir=in)"));
    assert!(hot[0].packets.expect("counter") >= 5);
    assert!(
        hot[0].rate_pps.expect("rate") >= 1.0,
        "5 pings in 5 s: {:?}",
        hot[0].rate_pps
    );
    assert_eq!(
        hot[0].last_hit.as_deref(),
        Some(rfc3339(T0 + 5_000).as_str())
    );
    assert_eq!(hot[0].labels.get("svc").map(String::as_str), Some("ping"));

    let dead = ins.rules(
        &RulesQuery {
            sort: Sort::Dead,
            ..Default::default()
        },
        T0 + 5_000,
    );
    let dead_names: Vec<_> = dead
        .iter()
        .filter(|r| r.never_hit)
        .map(|r| r.text.clone())
        .collect();
    assert_eq!(
        dead_names.len(),
        3,
        "discard, udp 7 and the blocklist drop: {dead_names:?}"
    );
    let last = dead.last().expect("rules");
    assert!(
        !last.measurable && last.hint.is_some(),
        "the uncounted accept: {last:?}"
    );
    let first_seen_ping = hot[0].first_seen.clone();
    let handle_before = hot[0].handle;

    // Reload with nft -f: new handles, zeroed counters, one rule swapped, a table added.
    a.nft_load(V2);
    ping(&b, 3);
    let diff = ins
        .observe(sample_of(&a), vec![], sets.clone(), T0 + 10_000)
        .expect("a reload is reported");
    assert_eq!(
        (diff.added_count, diff.removed_count, diff.changed_count),
        (2, 1, 0),
        "{diff:?}"
    );
    assert!(diff.removed[0].text.contains("\"dport\"") && diff.removed[0].text.contains('7'));
    assert!(diff
        .added
        .iter()
        .any(|r| r.comment.as_deref() == Some("nft(svc=dns;dir=in;proto=udp)")));
    assert_eq!(diff.tables_added.len(), 1);
    assert_eq!(diff.rehandled_count, 4);

    let v = ins.rules(&RulesQuery::default(), T0 + 10_000);
    let p = by_comment(&v, "nft(svc=ping;dir=in)");
    // `flush ruleset` recreated the table, so the rule may well have its old handle back
    // (handles are numbered per table): the table's new handle told the reload apart.
    let _ = handle_before;
    assert_eq!(
        p.packets,
        Some(3),
        "the kernel counter restarted with the reload"
    );
    assert_eq!(
        p.first_seen, first_seen_ping,
        "first-seen carried over the reload"
    );
    assert_eq!(p.last_hit.as_deref(), Some(rfc3339(T0 + 10_000).as_str()));
    assert_eq!(
        p.packets_since_first_seen, 8,
        "5 + 3 pings across the reload"
    );
    let d = by_comment(&v, "nft(svc=discard;dir=in)");
    assert!(d.never_hit && d.first_seen.as_deref() == Some(rfc3339(T0).as_str()));

    // Metrics from this real ruleset pass promtool (labels: differing keys, a rule with
    // no comment, an unmeasurable rule).
    let mut text = String::new();
    ins.render_metrics(&mut text);
    assert!(text.contains("proto=\"udp\""), "{text}");
    assert!(text.contains("svc=\"ping\",proto=\"\"") || text.contains("proto=\"\",svc=\"ping\""));
    common::promtool_check_metrics(&text);

    // Restart: persist, restore, and the next sample keeps first-seen and last-hit.
    let dir = std::env::temp_dir().join(format!("pr-insight-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    persist::save(&dir, ins.states(), T0 + 10_000).expect("save");
    let loaded = persist::load(&dir, T0 + 60_000);
    assert!(loaded.problem.is_none(), "{:?}", loaded.problem);
    let mut again = Insight::restore(loaded.states, T0 + 60_000);
    again.observe(sample_of(&a), vec![], sets, T0 + 60_000);
    let v = again.rules(&RulesQuery::default(), T0 + 60_000);
    let p = by_comment(&v, "nft(svc=ping;dir=in)");
    assert_eq!(p.first_seen, first_seen_ping);
    assert_eq!(p.last_hit.as_deref(), Some(rfc3339(T0 + 10_000).as_str()));
    assert!(by_comment(&v, "nft(svc=discard;dir=in)").never_hit);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn awkward_labels_still_pass_promtool() {
    let a = Netns::new("insm");
    a.nft_load(
        r#"table inet fw {
  chain c {
    counter comment "nft(serviceName=SSH;dir=in)"
    counter comment "nft(serviceName=SSH;dir=in)"
    counter comment "nft(table=x;__name__=y;1st=z;dst-port=22)"
    counter comment "plain words; with = and nft( signs"
    counter
    counter
    counter comment "nft(only=this)"
  }
}
"#,
    );
    let mut ins = Insight::new();
    ins.observe(sample_of(&a), vec![], vec![], T0);
    let mut text = String::new();
    ins.render_metrics(&mut text);
    common::promtool_check_metrics(&text);
    assert!(text.contains("service_name=\"SSH\""), "{text}");
    assert!(text.contains("nft_table=\"x\""), "{text}");
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pirouterd_nft_rule_packets_total{"))
        .collect();
    assert_eq!(series.len(), 7);
    let uniq: std::collections::BTreeSet<&str> = series
        .iter()
        .map(|l| l.rsplit_once(' ').expect("value").0)
        .collect();
    assert_eq!(uniq.len(), 7, "no duplicate series: {series:#?}");
}
