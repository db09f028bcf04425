//! Managed-set changes against the real kernel, in a throwaway network namespace, checked
//! with `nft list set`: adds with and without timeout, prefixes, ranges, concatenations,
//! removal, and refusals that name the bad element and leave the set as it was.
mod common;

use std::time::Duration;

use common::Netns;
use pirouterd::sys::nft_sets::{ElementView, Family, NftSets, Op, SetError};

const RULESET: &str = "table inet fw {
  set blocklist { type ipv4_addr; }
  set knock { type ipv4_addr; flags timeout; }
  set nets { type ipv4_addr; flags interval; }
  set v6 { type ipv6_addr; flags interval, timeout; }
  set svc { type ipv4_addr . inet_service; }
  set svcr { type ipv4_addr . inet_service; flags interval; }
  set ports { type inet_service; flags interval; }
  map m { type ipv4_addr : verdict; }
}
";

/// Runs `f` with an nf_tables socket opened inside `ns` (on a thread that entered it).
fn in_ns<T: Send + 'static>(ns: &Netns, f: impl FnOnce(&mut NftSets) -> T + Send + 'static) -> T {
    common::in_ns(ns, move || {
        let mut s = NftSets::open().expect("netlink socket");
        f(&mut s)
    })
}

fn change(
    ns: &Netns,
    set: &'static str,
    op: Op,
    elems: &[&str],
    timeout: Option<Duration>,
) -> Result<Vec<ElementView>, SetError> {
    let elems: Vec<String> = elems.iter().map(|s| s.to_string()).collect();
    in_ns(ns, move |s| {
        s.change(Family::Inet, "fw", set, op, &elems, timeout)
            .map(|(_, now)| now)
    })
}

fn listed(ns: &Netns, set: &str) -> String {
    let out = ns.run(&["nft", "list", "set", "inet", "fw", set]);
    // One line per set body, elements joined, whitespace normalised.
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn names(v: &[ElementView]) -> Vec<&str> {
    v.iter().map(|e| e.element.as_str()).collect()
}

#[test]
fn add_and_remove_elements_as_nft_sees_them() {
    let ns = Netns::new("sets");
    ns.nft_load(RULESET);

    let now = change(
        &ns,
        "blocklist",
        Op::Add,
        &["192.0.2.7", "198.51.100.1"],
        None,
    )
    .expect("add");
    assert_eq!(names(&now), ["192.0.2.7", "198.51.100.1"]);
    assert!(listed(&ns, "blocklist").contains("elements = { 192.0.2.7, 198.51.100.1 }"));

    let now = change(&ns, "blocklist", Op::Delete, &["192.0.2.7"], None).expect("remove");
    assert_eq!(names(&now), ["198.51.100.1"]);
    assert!(listed(&ns, "blocklist").contains("elements = { 198.51.100.1 }"));

    // Timed allowlist entry (port knocking style).
    let now = change(
        &ns,
        "knock",
        Op::Add,
        &["203.0.113.5"],
        Some(Duration::from_secs(3600)),
    )
    .expect("timed add");
    assert_eq!(now[0].timeout_ms, Some(3_600_000));
    assert!(
        now[0]
            .expires_ms
            .is_some_and(|e| e > 3_500_000 && e <= 3_600_000),
        "{now:?}"
    );
    assert!(
        listed(&ns, "knock").contains("203.0.113.5 timeout 1h expires"),
        "{}",
        listed(&ns, "knock")
    );
    // Without timeout in a timeout set: a permanent element.
    let now = change(&ns, "knock", Op::Add, &["203.0.113.6"], None).expect("untimed add");
    assert_eq!(
        now.iter()
            .find(|e| e.element == "203.0.113.6")
            .map(|e| e.timeout_ms),
        Some(None)
    );

    // Interval set: a prefix and a single address.
    let now =
        change(&ns, "nets", Op::Add, &["10.0.0.0/8", "192.0.2.7"], None).expect("interval add");
    assert_eq!(names(&now), ["10.0.0.0/8", "192.0.2.7"]);
    assert!(
        listed(&ns, "nets").contains("elements = { 10.0.0.0/8, 192.0.2.7 }"),
        "{}",
        listed(&ns, "nets")
    );
    let now = change(&ns, "nets", Op::Delete, &["10.0.0.0/8"], None).expect("interval delete");
    assert_eq!(names(&now), ["192.0.2.7"]);
    assert!(
        listed(&ns, "nets").contains("elements = { 192.0.2.7 }"),
        "{}",
        listed(&ns, "nets")
    );

    // IPv6 prefix with a timeout in an interval set.
    let now = change(
        &ns,
        "v6",
        Op::Add,
        &["2001:db8::/32"],
        Some(Duration::from_secs(600)),
    )
    .expect("v6 add");
    assert_eq!(names(&now), ["2001:db8::/32"]);
    assert!(
        listed(&ns, "v6").contains("2001:db8::/32 timeout 10m expires"),
        "{}",
        listed(&ns, "v6")
    );

    // Port ranges and concatenations.
    let now = change(&ns, "ports", Op::Add, &["1000-2000", "22"], None).expect("ports");
    assert_eq!(names(&now), ["22", "1000-2000"]);
    assert!(
        listed(&ns, "ports").contains("elements = { 22, 1000-2000 }"),
        "{}",
        listed(&ns, "ports")
    );
    let now = change(&ns, "svc", Op::Add, &["10.0.0.1 . 22"], None).expect("concat");
    assert_eq!(names(&now), ["10.0.0.1 . 22"]);
    assert!(
        listed(&ns, "svc").contains("elements = { 10.0.0.1 . 22 }"),
        "{}",
        listed(&ns, "svc")
    );
    let now = change(
        &ns,
        "svcr",
        Op::Add,
        &["10.1.0.0/16 . 1000-2000", "10.0.0.1 . 22"],
        None,
    )
    .expect("concat ranges");
    assert_eq!(names(&now), ["10.0.0.1 . 22", "10.1.0.0/16 . 1000-2000"]);
    let l = listed(&ns, "svcr");
    assert!(
        l.contains("10.0.0.1 . 22") && l.contains("10.1.0.0/16 . 1000-2000"),
        "{l}"
    );
}

#[test]
fn refusals_name_the_element_and_change_nothing() {
    let ns = Netns::new("sets");
    ns.nft_load(RULESET);
    change(&ns, "blocklist", Op::Add, &["192.0.2.1"], None).expect("seed");
    let before = listed(&ns, "blocklist");

    // A bad element next to a good one: refused before anything is sent.
    let e = change(
        &ns,
        "blocklist",
        Op::Add,
        &["192.0.2.2", "192.0.2.256"],
        None,
    )
    .expect_err("bad element");
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("\"192.0.2.256\""), "{e}");
    assert_eq!(
        listed(&ns, "blocklist"),
        before,
        "the good element was not added"
    );

    // The kernel refuses one deletion (not in the set): the whole batch is rolled back.
    let e = change(
        &ns,
        "blocklist",
        Op::Delete,
        &["192.0.2.1", "192.0.2.99"],
        None,
    )
    .expect_err("absent element");
    assert!(
        matches!(e, SetError::Rejected { ref element, .. } if element == "192.0.2.99"),
        "{e:?}"
    );
    assert_eq!(e.status(), 400);
    assert_eq!(listed(&ns, "blocklist"), before, "192.0.2.1 is still there");

    // A timeout for a set without `flags timeout`, a map, a missing set, a prefix in a
    // plain set.
    let e = change(
        &ns,
        "blocklist",
        Op::Add,
        &["192.0.2.3"],
        Some(Duration::from_secs(5)),
    )
    .expect_err("no timeout flag");
    assert!(matches!(e, SetError::NoTimeoutFlag(_)), "{e:?}");
    let e = change(&ns, "m", Op::Add, &["192.0.2.3"], None).expect_err("map");
    assert!(matches!(e, SetError::IsMap(_)), "{e:?}");
    let e = change(&ns, "nope", Op::Add, &["192.0.2.3"], None).expect_err("missing");
    assert_eq!(e.status(), 404);
    let e = change(&ns, "blocklist", Op::Add, &["10.0.0.0/8"], None).expect_err("prefix");
    assert!(e.to_string().contains("flags interval"), "{e}");
    assert_eq!(listed(&ns, "blocklist"), before);
}
