//! The NAT64 metric families, rendered from the last snapshot. Label values are instance
//! names, protocols, states and counter names only: never a client address.

use super::session::{Proto, State};
use super::snapshot::Nat64Snapshot;
use super::stats::StatKind;
use crate::app::App;
use crate::http::metrics::{Kind, MetricsWriter};

/// The area's renderer (see `http::route::AREA_METRICS`).
pub fn render(app: &App, w: &mut MetricsWriter) {
    if !app.config.nat64.enabled {
        return;
    }
    let snap = app.nat64.get();
    write(snap.as_ref().as_ref(), w);
}

/// Writes every NAT64 family for `snap` (`None`: not sampled yet, only `jool_up 0`).
pub fn write(snap: Option<&Nat64Snapshot>, w: &mut MetricsWriter) {
    w.family(
        "pirouterd_jool_up",
        Kind::Gauge,
        "1 when every Jool NAT64 instance is running and its sessions and counters were read in the last round; 0 otherwise (see /api/v1/nat64 for the reason).",
    );
    w.sample(
        "pirouterd_jool_up",
        &[],
        if snap.is_some_and(Nat64Snapshot::up) {
            1.0
        } else {
            0.0
        },
    );
    let Some(snap) = snap else { return };

    w.family(
        "pirouterd_jool_instance_up",
        Kind::Gauge,
        "1 when this Jool instance is running and was read in the last round.",
    );
    for i in &snap.instances {
        w.sample(
            "pirouterd_jool_instance_up",
            &[("jool_instance", &i.name)],
            if i.up() { 1.0 } else { 0.0 },
        );
    }

    w.family(
        "pirouterd_jool_last_sample_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last round of jool runs.",
    );
    w.sample(
        "pirouterd_jool_last_sample_timestamp_seconds",
        &[],
        (snap.taken_at_ms / 1000) as f64,
    );

    w.family(
        "pirouterd_jool_sessions",
        Kind::Gauge,
        "Jool NAT64 sessions by protocol and state (state=\"none\" for UDP and ICMP, which have no state).",
    );
    for i in snap
        .instances
        .iter()
        .filter(|i| i.sessions_read || i.summary.total > 0)
    {
        // Every known TCP state and the UDP/ICMP totals, zeros included, so series stay put.
        let mut rows: Vec<(Proto, String, u64)> = State::KNOWN[1..8]
            .iter()
            .filter_map(|s| s.known_name())
            .map(|n| (Proto::Tcp, n.to_string(), 0))
            .chain([
                (Proto::Udp, "none".to_string(), 0),
                (Proto::Icmp, "none".to_string(), 0),
            ])
            .collect();
        for c in &i.summary.by_state {
            let name = c.state.clone().unwrap_or_else(|| "none".into());
            match rows
                .iter_mut()
                .find(|(p, s, _)| *p == c.proto && *s == name)
            {
                Some(r) => r.2 = c.sessions,
                None => rows.push((c.proto, name, c.sessions)),
            }
        }
        for (proto, state, n) in rows {
            w.sample(
                "pirouterd_jool_sessions",
                &[
                    ("jool_instance", &i.name),
                    ("proto", proto.as_str()),
                    ("state", &state),
                ],
                n as f64,
            );
        }
    }

    w.family(
        "pirouterd_jool_bib_entries",
        Kind::Gauge,
        "Jool BIB entries in use (pool4 transport addresses held by sessions), by protocol.",
    );
    for i in snap.instances.iter().filter(|i| i.sessions_read) {
        for p in &i.summary.by_proto {
            w.sample(
                "pirouterd_jool_bib_entries",
                &[("jool_instance", &i.name), ("proto", p.proto.as_str())],
                p.bib_entries as f64,
            );
        }
    }

    w.family(
        "pirouterd_jool_pool4_ports",
        Kind::Gauge,
        "Ports (ICMP: identifiers) pool4 offers, by protocol.",
    );
    for i in &snap.instances {
        for u in &i.summary.pool4 {
            w.sample(
                "pirouterd_jool_pool4_ports",
                &[("jool_instance", &i.name), ("proto", u.proto.as_str())],
                u.ports_total as f64,
            );
        }
    }
    w.family(
        "pirouterd_jool_pool4_ports_used",
        Kind::Gauge,
        "Pool4 ports (ICMP: identifiers) held by sessions, by protocol.",
    );
    for i in &snap.instances {
        for u in &i.summary.pool4 {
            w.sample(
                "pirouterd_jool_pool4_ports_used",
                &[("jool_instance", &i.name), ("proto", u.proto.as_str())],
                u.ports_used as f64,
            );
        }
    }

    w.family(
        "pirouterd_jool_stat_total",
        Kind::Counter,
        "Jool's own counters from `jool stats display --all`, by Jool's name (JSTAT_...); names this pirouterd does not know are exported too.",
    );
    for i in &snap.instances {
        for s in i.stats.iter().filter(|s| s.kind() == StatKind::Counter) {
            w.sample(
                "pirouterd_jool_stat_total",
                &[("jool_instance", &i.name), ("name", &s.name)],
                s.value as f64,
            );
        }
    }
    w.family(
        "pirouterd_jool_stat",
        Kind::Gauge,
        "Jool's values that go up and down (JSTAT_SESSIONS, JSTAT_BIB_ENTRIES), as Jool counts them.",
    );
    for i in &snap.instances {
        for s in i.stats.iter().filter(|s| s.kind() == StatKind::Gauge) {
            w.sample(
                "pirouterd_jool_stat",
                &[("jool_instance", &i.name), ("name", &s.name)],
                s.value as f64,
            );
        }
    }
}
