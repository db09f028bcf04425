//! Every recorded Jool output in `tests/fixtures/jool/` (byte-exact copies of
//! `../shared/fixtures/jool/`, see its README for how each was made) through the pure parsers,
//! and every recorded error (stderr + exit code) through the classifier.
#![allow(clippy::unwrap_used)]

use pirouterd::nat64::aggregate::summarize;
use pirouterd::nat64::instance::{parse_instances, parse_status, InstanceStatus};
use pirouterd::nat64::session::{parse_sessions, Proto, State};
use pirouterd::nat64::stats::{get, parse_stats, StatKind};
use pirouterd::nat64::tables::{parse_bib, parse_globals, parse_pool4};
use pirouterd::nat64::{ParseError, SessionTable};
use pirouterd::sys::jool::{classify, JoolError, RunOutput};
use std::net::{Ipv4Addr, Ipv6Addr};

fn fx(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/jool/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn all_sessions() -> SessionTable {
    let mut t = SessionTable::default();
    for f in ["session-tcp.csv", "session-udp.csv", "session-icmp.csv"] {
        t.parse_append(&fx(f)).unwrap();
    }
    t
}

#[test]
fn tcp_sessions_every_field() {
    let t = parse_sessions(&fx("session-tcp.csv")).unwrap();
    assert_eq!(t.sessions.len(), 9);
    let s = t.sessions[0];
    assert_eq!(s.proto, Proto::Tcp);
    assert_eq!(s.v6_remote, v6("2001:db8:100::1a"));
    assert_eq!(s.v6_remote_id, 50234);
    assert_eq!(s.v6_local, v6("64:ff9b::c633:6407"));
    assert_eq!(s.v6_local_id, 443);
    assert_eq!(s.v4_local, u32::from(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(s.v4_local_id, 61024);
    assert_eq!(s.v4_remote, u32::from(Ipv4Addr::new(198, 51, 100, 7)));
    assert_eq!(s.v4_remote_id, 443);
    assert_eq!(s.expires_ms, 7_197_328);
    assert_eq!(s.state, State::Established);
    // The SLAAC-looking client (a lone zero hextet, not compressed) and a time without millis.
    let slaac = t.sessions[4];
    assert_eq!(slaac.v6_remote, v6("2001:db8:100:0:5054:ff:fe12:3456"));
    assert_eq!(slaac.expires_ms, 4_324_000);
    let states: Vec<&str> = t.sessions.iter().map(|s| t.state_name(s.state)).collect();
    assert_eq!(
        states,
        [
            "ESTABLISHED",
            "V4_INIT",
            "ESTABLISHED",
            "V4_FIN_V6_FIN_RCV",
            "ESTABLISHED",
            "V6_FIN_RCV",
            "V6_INIT",
            "TRANS",
            "V4_FIN_RCV"
        ]
    );
    assert!(t.other_states.is_empty());
}

#[test]
fn udp_and_icmp_rows_have_no_state() {
    let u = parse_sessions(&fx("session-udp.csv")).unwrap();
    assert_eq!(u.sessions.len(), 4);
    assert!(u
        .sessions
        .iter()
        .all(|s| s.proto == Proto::Udp && s.state == State::None));
    assert_eq!(u.sessions[2].expires_ms, 300_000);
    assert_eq!(u.sessions[3].expires_ms, 1_004);
    let i = parse_sessions(&fx("session-icmp.csv")).unwrap();
    assert_eq!(i.sessions.len(), 3);
    assert!(i
        .sessions
        .iter()
        .all(|s| s.proto == Proto::Icmp && s.state == State::None));
    // ICMP: the IPv6 ids match each other, the IPv4 ids match each other.
    assert_eq!(
        (i.sessions[1].v6_remote_id, i.sessions[1].v6_local_id),
        (13371, 13371)
    );
    assert_eq!(
        (i.sessions[1].v4_local_id, i.sessions[1].v4_remote_id),
        (33017, 33017)
    );
    assert_eq!(i.sessions[2].expires_ms, 2_000);
}

#[test]
fn empty_table_is_header_only() {
    assert!(parse_sessions(&fx("session-empty.csv"))
        .unwrap()
        .sessions
        .is_empty());
}

#[test]
fn resolved_names_are_refused_with_a_hint() {
    match parse_sessions(&fx("session-tcp-resolved.csv")) {
        Err(ParseError::Field {
            line,
            column,
            value,
            what,
        }) => {
            assert_eq!(line, 2);
            assert_eq!(column, "IPv4 Remote L4-ID");
            assert_eq!(value, "https");
            assert!(what.contains("--numeric"), "{what}");
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn console_forms_are_not_csv() {
    for f in ["session-tcp.txt", "session-empty.txt"] {
        assert!(
            matches!(parse_sessions(&fx(f)), Err(ParseError::Header { .. })),
            "{f}"
        );
    }
    assert!(matches!(
        parse_stats(&fx("stats.txt")),
        Err(ParseError::Header { .. })
    ));
    assert!(matches!(
        parse_instances(&fx("instance-display.txt")),
        Err(ParseError::Header { .. })
    ));
}

#[test]
fn stats_every_version_kept_by_name() {
    let short = parse_stats(&fx("stats.csv")).unwrap();
    assert_eq!(short.len(), 18);
    let all = parse_stats(&fx("stats-all.csv")).unwrap();
    assert_eq!(all.len(), 83);
    assert_eq!(all.first().unwrap().name, "JSTAT_RECEIVED6");
    assert_eq!(all.last().unwrap().name, "JSTAT_UNKNOWN");
    let old = parse_stats(&fx("stats-all-4.1.9.csv")).unwrap();
    assert_eq!(old.len(), 69);
    assert!(old.iter().all(|s| !s.name.starts_with("JSTAT_JOOLD")));
    for list in [&short, &all, &old] {
        assert_eq!(get(list, "JSTAT_POOL4_MISMATCH"), Some(3102));
        assert_eq!(get(list, "JSTAT_SESSIONS"), Some(16));
        assert_eq!(get(list, "JSTAT_BIB_ENTRIES"), Some(16));
    }
    let gauges: Vec<&str> = all
        .iter()
        .filter(|s| s.kind() == StatKind::Gauge)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(gauges, ["JSTAT_BIB_ENTRIES", "JSTAT_SESSIONS"]);
}

#[test]
fn stats_explain_quoted_multiline() {
    let s = parse_stats(&fx("stats-explain.csv")).unwrap();
    assert_eq!(s.len(), 18);
    let p = s.iter().find(|s| s.name == "JSTAT_POOL4_MISMATCH").unwrap();
    assert_eq!(p.value, 3102);
    let e = p.explanation.as_deref().unwrap();
    assert!(e.starts_with("Translations cancelled: IPv4 packet's destination"));
    assert_eq!(e.lines().count(), 3);
    assert!(e.ends_with("and the instance's configuration."));
    // The row after the multi-line one is read as its own row.
    assert_eq!(get(&s, "JSTAT_BIB4_NOT_FOUND"), Some(211));
    let success = s.iter().find(|s| s.name == "JSTAT_SUCCESS").unwrap();
    assert!(success
        .explanation
        .as_deref()
        .unwrap()
        .contains("'Successful translation'"));
}

#[test]
fn instances_and_status() {
    let l = parse_instances(&fx("instance-display.csv")).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(
        (
            l[0].namespace.as_str(),
            l[0].name.as_str(),
            l[0].framework.as_str()
        ),
        ("b2f1c0c0", "default", "netfilter")
    );
    assert_eq!(
        (l[1].name.as_str(), l[1].framework.as_str()),
        ("guest", "iptables")
    );
    assert_eq!(
        parse_status(&fx("instance-status.txt")).unwrap(),
        InstanceStatus::Running
    );
    assert_eq!(
        parse_status(&fx("instance-status-dead.txt")).unwrap(),
        InstanceStatus::Dead(Some("Instance 'nat64' does not exist.".into()))
    );
}

#[test]
fn pool4_bib_globals() {
    let p = parse_pool4(&fx("pool4-display.csv")).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].proto, p[0].min_port, p[0].max_port),
        (Proto::Tcp, 61001, 65535)
    );
    assert_eq!(p[0].ports(), 4535);
    assert_eq!(p[0].iterations, 1024);
    assert!(!p[0].iterations_fixed);

    let b = parse_bib(&fx("bib-display.csv")).unwrap();
    assert_eq!(b.len(), 9);
    assert_eq!(b.iter().filter(|e| e.is_static).count(), 1);
    assert_eq!(
        b[1].v6_address,
        "2001:db8:100::80".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(b[1].v4_id, 61080);

    let g = parse_globals(&fx("global-display.csv")).unwrap();
    assert_eq!(g.len(), 27);
    let get = |k: &str| g.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("pool6"), Some("64:ff9b::/96"));
    assert_eq!(
        get("mtu-plateaus"),
        Some("65535,32000,17914,8166,4352,2002,1492,1006,508,296,68")
    );
    assert_eq!(get("tcp-est-timeout"), Some("2:00:00"));
}

#[test]
fn summary_is_consistent_with_jools_own_counters() {
    let t = all_sessions();
    let stats = parse_stats(&fx("stats-all.csv")).unwrap();
    let pool4 = parse_pool4(&fx("pool4-display.csv")).unwrap();
    let s = summarize(&t, Some(&pool4), 3);
    assert_eq!(s.total, get(&stats, "JSTAT_SESSIONS").unwrap());
    let bib: u64 = s.by_proto.iter().map(|p| p.bib_entries).sum();
    assert_eq!(bib, get(&stats, "JSTAT_BIB_ENTRIES").unwrap());
    let per: Vec<(Proto, u64)> = s.by_proto.iter().map(|p| (p.proto, p.sessions)).collect();
    assert_eq!(per, [(Proto::Tcp, 9), (Proto::Udp, 4), (Proto::Icmp, 3)]);
    let est = s
        .by_state
        .iter()
        .find(|c| c.proto == Proto::Tcp && c.state.as_deref() == Some("ESTABLISHED"))
        .unwrap();
    assert_eq!(est.sessions, 3);
    let udp = s.by_state.iter().find(|c| c.proto == Proto::Udp).unwrap();
    assert_eq!((udp.state.as_deref(), udp.sessions), (None, 4));
    assert_eq!(s.by_state.len(), 7 + 1 + 1);

    let top: Vec<(String, u64)> = s
        .top_clients
        .iter()
        .map(|c| (c.address.to_string(), c.sessions))
        .collect();
    assert_eq!(
        top,
        [
            ("2001:db8:100::1a".to_string(), 6),
            ("2001:db8:100::2b".to_string(), 4),
            ("2001:db8:100::3c".to_string(), 4)
        ]
    );
    assert_eq!(
        (
            s.top_clients[0].tcp,
            s.top_clients[0].udp,
            s.top_clients[0].icmp
        ),
        (3, 2, 1)
    );

    // pool4 holds TCP only: 9 of 4535 ports bound; UDP and ICMP have no pool4 entries here.
    let tcp = s.pool4.iter().find(|u| u.proto == Proto::Tcp).unwrap();
    assert_eq!((tcp.ports_used, tcp.ports_total), (9, 4535));
    let udp = s.pool4.iter().find(|u| u.proto == Proto::Udp).unwrap();
    assert_eq!((udp.ports_used, udp.ports_total), (4, 0));
    // Without pool4, no usage is claimed.
    assert!(summarize(&t, None, 3).pool4.is_empty());
}

fn out(code: i32, stderr: &str) -> RunOutput {
    RunOutput {
        code: Some(code),
        signal: None,
        stdout: Vec::new(),
        stderr: fx(stderr),
    }
}

#[test]
fn every_recorded_error_maps_to_what_to_do() {
    let cmd = "jool -i nat64 session display --numeric --csv --tcp";
    let e = classify(cmd, "nat64", &out(253, "error-module-not-loaded.txt")).unwrap_err();
    assert!(matches!(e, JoolError::ModuleNotLoaded { .. }), "{e:?}");
    assert!(e.to_string().contains("modprobe jool"));

    let e = classify(cmd, "nat64", &out(22, "error-nat64-not-loaded.txt")).unwrap_err();
    assert!(matches!(e, JoolError::Nat64ModuleNotLoaded { .. }), "{e:?}");

    let e = classify(cmd, "nat64", &out(3, "error-instance-not-found.txt")).unwrap_err();
    match &e {
        JoolError::InstanceMissing {
            instance, stderr, ..
        } => {
            assert_eq!(instance, "nat64");
            assert!(stderr.contains("lacks an instance named 'nat64'"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("jool instance add nat64"));

    let e = classify(cmd, "nat64", &out(1, "error-no-cap.txt")).unwrap_err();
    assert!(matches!(e, JoolError::NoCapability { .. }), "{e:?}");
    assert!(e.to_string().contains("CAP_NET_ADMIN"));

    let e = classify(cmd, "nat64", &out(22, "error-version-mismatch.txt")).unwrap_err();
    match &e {
        JoolError::VersionMismatch {
            client,
            module,
            older,
            ..
        } => {
            assert_eq!(client, "4.1.15.0");
            assert_eq!(module, "4.1.8.0");
            assert_eq!(older, "kernel module");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "Jool client 4.1.15.0 and kernel module 4.1.8.0 do not match: update the kernel module (e.g. jool-dkms and jool-tools from the same release)"
    );

    let e = classify(cmd, "nat64", &out(234, "error-stats-unknown-counter.txt")).unwrap_err();
    assert!(matches!(e, JoolError::ClientTooOld { .. }), "{e:?}");

    // Anything else keeps Jool's own words and the code.
    let e = classify(
        cmd,
        "nat64",
        &RunOutput {
            code: Some(64),
            signal: None,
            stdout: vec![],
            stderr: b"display: Too many arguments\n".to_vec(),
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("`{cmd}` failed with exit code 64: display: Too many arguments")
    );
    // Exit 0 is success whatever stderr says; a header on stdout with exit 3 is not.
    assert!(classify(cmd, "nat64", &out(0, "error-no-cap.txt")).is_ok());
    let mut with_header = out(3, "error-instance-not-found.txt");
    with_header.stdout = fx("session-empty.csv");
    assert!(classify(cmd, "nat64", &with_header).is_err());
}
