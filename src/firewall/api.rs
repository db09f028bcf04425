//! The firewall's HTTP face: `GET /api/v1/firewall` (the latest snapshot) and
//! `GET /api/v1/firewall/sets/{family}/{table}/{set}` (one set with its elements), plus the
//! `pirouterd status` firewall section. JSON is built here from the snapshot types; the
//! field names are the public contract (DESIGN.md).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::labels::parse_labels;
use super::{
    format_duration_ms, CountFreshness, Family, NamedObject, ObjectValue, Rule, RulesetSnapshot,
    SetElements, SetInfo,
};
use crate::app::{lock, App, Shared};
use crate::http::{ApiRequest, ApiResponse, Method};

/// The latest published snapshot.
#[derive(Debug, Clone, Default)]
pub struct FirewallView {
    /// `None` until the first successful sample.
    pub snapshot: Option<Arc<RulesetSnapshot>>,
    /// Unix ms when it was taken.
    pub taken_ms: u64,
    /// How long the netlink read took, ms.
    pub took_ms: u64,
}

/// A request for one set's elements, answered by the sampler thread (which owns the socket).
pub struct SetQuery {
    pub family: Family,
    pub table: String,
    pub set: String,
    /// The answer: the elements, or the error message and whether the set does not exist.
    pub reply: mpsc::SyncSender<Result<Arc<SetElements>, (bool, String)>>,
}

/// The firewall area's shared state on [`App`].
#[derive(Default)]
pub struct FirewallState {
    /// The latest snapshot, read by handlers.
    pub latest: Shared<FirewallView>,
    /// Set-element queries to the sampler thread; `None` until it runs.
    pub queries: Mutex<Option<mpsc::Sender<SetQuery>>>,
}

fn family_name(f: Family) -> String {
    f.to_string()
}

/// One rule as the API shows it.
pub fn rule_json(r: &Rule) -> Value {
    let labels = r.comment().map(parse_labels).unwrap_or_default();
    let mut l = serde_json::Map::new();
    for (k, v) in &labels.pairs {
        l.insert(k.clone(), Value::String(v.clone()));
    }
    json!({
        "family": family_name(r.family()),
        "table": &**r.table(),
        "chain": &**r.chain(),
        "handle": r.handle,
        "position": r.position,
        "text": r.text(),
        "text_exact": r.text_exact,
        "comment": r.comment(),
        "labels": l,
        "label_problems": labels.problems,
        "has_counter": r.has_counter(),
        "packets": r.packets(),
        "bytes": r.bytes(),
        "counter_refs": r.counter_refs,
        "undecodable": r.undecodable,
    })
}

/// One set's description as the API shows it.
pub fn set_info_json(s: &SetInfo) -> Value {
    let (fresh, age) = match s.count_freshness {
        CountFreshness::Fresh => (true, 0),
        CountFreshness::Carried { age } => (false, age.as_millis() as u64),
    };
    json!({
        "family": family_name(s.family),
        "table": &*s.table,
        "name": &*s.name,
        "handle": s.handle,
        "kind": if s.flags.map { "map" } else { "set" },
        "type": s.key_type,
        "data_type": s.data_type,
        "flags": s.flags.names(),
        "timeout": s.timeout_ms.map(format_duration_ms),
        "timeout_ms": s.timeout_ms,
        "size": s.size,
        "comment": s.comment,
        "elements": s.element_count,
        "elements_fresh": fresh,
        "elements_age_ms": age,
    })
}

fn object_json(o: &NamedObject) -> Value {
    let mut v = json!({
        "family": family_name(o.family),
        "table": &*o.table,
        "name": &*o.name,
        "handle": o.handle,
        "comment": o.comment,
    });
    match &o.value {
        ObjectValue::Counter(c) => {
            v["packets"] = c.packets.into();
            v["bytes"] = c.bytes.into();
        }
        ObjectValue::Quota {
            bytes,
            consumed,
            over,
        } => {
            v["bytes"] = (*bytes).into();
            v["used"] = (*consumed).into();
            v["over"] = (*over).into();
        }
        ObjectValue::Other { kind } => v["kind"] = kind.clone().into(),
    }
    v
}

/// `GET /api/v1/firewall`: tables, chains, rules, sets, named counters and quotas.
/// The snapshot as JSON; `with_rules = false` leaves out the rules (`?rules=0`): a page that
/// lists rules through `/api/v1/firewall/rules` need not carry thousands of them twice.
pub fn firewall_json(view: &FirewallView, snap: &RulesetSnapshot, with_rules: bool) -> Value {
    let tables: Vec<Value> = snap
        .tables
        .iter()
        .map(|t| {
            json!({
                "family": family_name(t.family), "name": &*t.name, "handle": t.handle,
                "flags": t.flag_names(), "comment": t.comment,
                "chains": snap.chains.iter().filter(|c| c.family == t.family && c.table == t.name).count(),
            })
        })
        .collect();
    let chains: Vec<Value> = snap
        .chains
        .iter()
        .map(|c| {
            let h = c.hook.as_ref();
            json!({
                "family": family_name(c.family), "table": &*c.table, "name": &*c.name,
                "handle": c.handle, "base": h.is_some(),
                "type": h.map(|h| h.chain_type.clone()), "hook": h.map(|h| h.name.clone()),
                "priority": h.map(|h| h.priority), "policy": h.map(|h| h.policy.clone()),
                "device": h.and_then(|h| h.device.clone()),
                "rules": c.rule_count, "comment": c.comment,
            })
        })
        .collect();
    let counters: Vec<Value> = snap
        .objects
        .iter()
        .filter(|o| matches!(o.value, ObjectValue::Counter(_)))
        .map(object_json)
        .collect();
    let quotas: Vec<Value> = snap
        .objects
        .iter()
        .filter(|o| matches!(o.value, ObjectValue::Quota { .. }))
        .map(object_json)
        .collect();
    let others: Vec<Value> = snap
        .objects
        .iter()
        .filter(|o| matches!(o.value, ObjectValue::Other { .. }))
        .map(object_json)
        .collect();
    let mut v = json!({
        "generation": snap.generation,
        "taken_at_ms": view.taken_ms,
        "took_ms": view.took_ms,
        "tables": tables,
        "chains": chains,
        "rule_count": snap.rules.len(),
        "sets": snap.sets.iter().map(set_info_json).collect::<Vec<_>>(),
        "counters": counters,
        "quotas": quotas,
        "objects": others,
        "warnings": snap.warnings,
    });
    if with_rules {
        v["rules"] = snap.rules.iter().map(rule_json).collect::<Vec<_>>().into();
    }
    v
}

/// `GET /api/v1/firewall/sets/...`: the set and its elements.
pub fn set_elements_json(se: &SetElements) -> Value {
    let mut v = set_info_json(&se.set);
    v["elements"] = se.elements.len().into();
    v["items"] = se
        .elements
        .iter()
        .map(|e| {
            json!({
                "key": e.key,
                "data": e.data,
                "timeout": e.timeout_ms.map(format_duration_ms),
                "timeout_ms": e.timeout_ms,
                "expires": e.expires_ms.map(format_duration_ms),
                "expires_ms": e.expires_ms,
                "comment": e.comment,
                "packets": e.counter.map(|c| c.packets),
                "bytes": e.counter.map(|c| c.bytes),
            })
        })
        .collect::<Vec<_>>()
        .into();
    v
}

fn not_ready(app: &App) -> ApiResponse {
    let comps = app.components.snapshot();
    let why = comps
        .get("nftables")
        .and_then(|c| c.last_error.clone())
        .unwrap_or_else(|| "the first nftables sample has not completed yet".into());
    ApiResponse::error(503, "nftables_unavailable", why)
}

/// The firewall area's routes; `None` for paths it does not own (the insight area serves
/// `/api/v1/firewall/rules` and set element changes).
pub fn route(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    if req.path == "/api/v1/firewall" {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Some(ApiResponse::method_not_allowed(
                &req.method,
                &["GET", "HEAD"],
            ));
        }
        let with_rules = match req.query("rules") {
            None | Some("1" | "true" | "yes") => true,
            Some("0" | "false" | "no") => false,
            Some(other) => {
                return Some(ApiResponse::error(
                    400,
                    "bad_query",
                    format!("?rules={other}: use rules=0 to leave the rules out, or rules=1"),
                ))
            }
        };
        let view = app.firewall.latest.get();
        return Some(match &view.snapshot {
            Some(s) => ApiResponse::json(200, &firewall_json(&view, s, with_rules)),
            None => not_ready(app),
        });
    }
    let segs = req.segments_after("/api/v1/firewall/sets")?;
    let [family, table, set] = segs.as_slice() else {
        return None;
    };
    if !matches!(req.method, Method::Get | Method::Head) {
        return Some(ApiResponse::method_not_allowed(
            &req.method,
            &["GET", "HEAD"],
        ));
    }
    let Some(fam) = Family::parse(family) else {
        return Some(ApiResponse::error(
            400,
            "bad_family",
            format!("unknown nftables family {family:?}: use ip, ip6, inet, arp, bridge or netdev"),
        ));
    };
    let sender = lock(&app.firewall.queries).clone();
    let Some(sender) = sender else {
        return Some(not_ready(app));
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let q = SetQuery {
        family: fam,
        table: table.clone(),
        set: set.clone(),
        reply: tx,
    };
    if sender.send(q).is_err() {
        return Some(not_ready(app));
    }
    Some(match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(se)) => ApiResponse::json(200, &set_elements_json(&se)),
        Ok(Err((true, msg))) => ApiResponse::error(404, "no_such_set", msg),
        Ok(Err((false, msg))) => ApiResponse::error(503, "nftables_unavailable", msg),
        Err(_) => ApiResponse::error(
            503,
            "nftables_busy",
            "the nftables sampler did not answer within 5 s; try again",
        ),
    })
}

/// The firewall section of `pirouterd status`, from `GET /api/v1/firewall` JSON.
pub fn render_terminal(v: &Value) -> String {
    let mut out = String::new();
    let n = |k: &str| v[k].as_array().map(|a| a.len()).unwrap_or(0);
    out.push_str(&format!(
        "\nFIREWALL  generation {}  {} tables  {} chains  {} rules  {} sets  {} counters\n",
        v["generation"].as_u64().unwrap_or(0),
        n("tables"),
        n("chains"),
        n("rules"),
        n("sets"),
        n("counters")
    ));
    for c in v["chains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["base"].as_bool() == Some(true))
    {
        out.push_str(&format!(
            "  chain {} {} {:<16} hook {:<11} prio {:>5} policy {:<6} {} rules\n",
            c["family"].as_str().unwrap_or("?"),
            c["table"].as_str().unwrap_or("?"),
            c["name"].as_str().unwrap_or("?"),
            c["hook"].as_str().unwrap_or("?"),
            c["priority"].as_i64().unwrap_or(0),
            c["policy"].as_str().unwrap_or("?"),
            c["rules"].as_u64().unwrap_or(0)
        ));
    }
    let mut rules: Vec<&Value> = v["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["has_counter"].as_bool() == Some(true))
        .collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r["packets"].as_u64().unwrap_or(0)));
    if !rules.is_empty() {
        out.push_str("  hottest rules:\n");
        for r in rules.iter().take(5) {
            out.push_str(&format!(
                "  {:>12} pkts {:>14} bytes  {}/{}: {}\n",
                r["packets"].as_u64().unwrap_or(0),
                r["bytes"].as_u64().unwrap_or(0),
                r["table"].as_str().unwrap_or("?"),
                r["chain"].as_str().unwrap_or("?"),
                r["text"].as_str().unwrap_or("")
            ));
        }
        let never = rules
            .iter()
            .filter(|r| r["packets"].as_u64() == Some(0))
            .count();
        out.push_str(&format!("  {never} counted rules never hit\n"));
    }
    for s in v["sets"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {} {} {} ({}): {} elements\n",
            s["kind"].as_str().unwrap_or("set"),
            s["family"].as_str().unwrap_or("?"),
            s["table"].as_str().unwrap_or("?"),
            s["name"].as_str().unwrap_or("?"),
            s["type"].as_str().unwrap_or("?"),
            s["elements"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  warning: {}\n", w.as_str().unwrap_or("")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Chain, Counter, Hook, SetFlags, Table};

    fn snap() -> RulesetSnapshot {
        let t: Arc<str> = "fw".into();
        let c: Arc<str> = "input".into();
        RulesetSnapshot {
            generation: 7,
            tables: vec![Table {
                family: Family::Inet,
                name: t.clone(),
                handle: 1,
                flags: 0,
                owner: None,
                comment: None,
            }],
            chains: vec![Chain {
                family: Family::Inet,
                table: t.clone(),
                name: c.clone(),
                handle: 2,
                hook: Some(Hook {
                    name: "input".into(),
                    priority: 0,
                    chain_type: "filter".into(),
                    policy: "drop".into(),
                    device: None,
                }),
                rule_count: 1,
                comment: None,
            }],
            rules: vec![{
                let mut r = Rule::standalone(
                    Family::Inet,
                    "fw",
                    "input",
                    4,
                    0,
                    "tcp dport 22 counter accept",
                    Some("nft(service=SSH;dir=in)"),
                );
                r.text_exact = true;
                r.has_counter = true;
                r.counter = Counter {
                    packets: 3,
                    bytes: 180,
                };
                r
            }],
            sets: vec![SetInfo {
                family: Family::Inet,
                table: t,
                name: "blocklist".into(),
                handle: 3,
                flags: SetFlags::from_raw(16),
                key_type: "ipv4_addr".into(),
                key_len: 4,
                data_type: None,
                timeout_ms: Some(3_600_000),
                size: None,
                comment: None,
                element_count: Some(2),
                count_freshness: CountFreshness::Fresh,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn firewall_json_has_the_contract_fields() {
        let s = snap();
        let view = FirewallView {
            snapshot: None,
            taken_ms: 5,
            took_ms: 1,
        };
        let v = firewall_json(&view, &s, true);
        assert_eq!(v["generation"], 7);
        assert_eq!(v["chains"][0]["hook"], "input");
        assert_eq!(v["chains"][0]["policy"], "drop");
        let r = &v["rules"][0];
        assert_eq!(
            (
                r["family"].as_str(),
                r["table"].as_str(),
                r["chain"].as_str()
            ),
            (Some("inet"), Some("fw"), Some("input"))
        );
        assert_eq!(r["packets"], 3);
        assert_eq!(r["labels"]["service"], "SSH");
        assert_eq!(v["sets"][0]["flags"], json!(["timeout"]));
        assert_eq!(v["sets"][0]["timeout"], "1h");
        assert_eq!(v["sets"][0]["elements"], 2);
        let text = render_terminal(&v);
        assert!(text.contains("1 rules"), "{text}");
        assert!(text.contains("tcp dport 22 counter accept"), "{text}");
        assert!(text.contains("blocklist (ipv4_addr): 2 elements"), "{text}");
        assert_eq!(v["rule_count"], 1);
        let lean = firewall_json(&view, &s, false);
        assert!(lean.get("rules").is_none(), "{lean}");
        assert_eq!(lean["rule_count"], 1);
        assert_eq!(lean["chains"], v["chains"]);
    }
}
