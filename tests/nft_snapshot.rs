//! The snapshot against the real kernel: the seeds' rulesets and our own, real packets over
//! veth, every counter / named counter / set size compared with `nft -j list ruleset` taken
//! between two snapshots.
mod common;
mod nft_support;

use std::time::{Duration, Instant};

use common::{wait_for, Netns};
use nft_support::{check_same_moment, in_ns, nft_view, tcp_syn, udp_send};
use pirouterd::firewall::{Family, RulesetSnapshot, RulesetSource};
use pirouterd::sys::nft::{CountPolicy, NftSource};

/// Seed 001: port knocking with timeout sets (nft 1.0.6 wants the multi-line form).
pub const KNOCK: &str = r#"
table inet Filter {
	set Client_SSH_IPv4 {
		type ipv4_addr
		flags timeout
		elements = { 192.0.2.10, 192.0.2.11 }
	}
	set Step1 {
		type ipv4_addr
		timeout 5s
	}
	set Step2 {
		type ipv4_addr
		timeout 5s
	}
	chain Input {
		type filter hook input priority 0; policy drop;
		ct state established counter accept
		tcp dport 22 ip saddr @Client_SSH_IPv4 counter accept
		iif "lo" accept
		counter log prefix "Input Dft DROP " drop
	}
	chain Raw {
		type filter hook prerouting priority -300; policy accept;
		tcp dport 36 set add ip saddr @Step1 drop
		ip saddr @Step1 tcp dport 15 set add ip saddr @Step2 drop
		ip saddr @Step2 tcp dport 42 set add ip saddr timeout 10s @Client_SSH_IPv4 drop
	}
}
"#;

/// Seed 004: nfprom accounting chain; seed 000: drop logging chains and the RA block;
/// an `ip` table sharing the `inet` table's name (the family mix-up rustables has).
pub const ACCOUNTING: &str = r#"
table inet firewall {
	chain accounting {
		ip daddr 10.77.0.1 tcp dport 22 counter return comment "nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=in)"
		ip saddr 10.77.0.1 tcp sport 22 counter return comment "nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=out)"
		ip daddr 10.77.0.1 tcp dport 80 counter return comment "nft(l2proto=ipv4;l3proto=tcp;service=HTTP;dir=in)"
		ip saddr 10.77.0.1 tcp sport 80 counter return comment "nft(l2proto=ipv4;l3proto=tcp;service=HTTP;dir=out)"
		ip daddr 10.77.0.1 udp dport 53 counter return comment "nft(l2proto=ipv4;l3proto=udp;service=DNS;dir=in)"
		ip6 daddr fd00:77::1 udp dport 53 counter return comment "nft(l2proto=ipv6;l3proto=udp;service=DNS;dir=in)"
	}
	chain LOGGING {
		limit rate 2/minute counter log prefix "nft-dropped: "
		counter drop
	}
	chain LOGGING-VERBOSE {
		limit rate 1/second counter log flags all prefix "verbose-nft-dropped: "
		counter drop
	}
	chain incoming {
		type filter hook input priority filter; policy accept;
		jump accounting
		ct state established,related accept
		tcp dport 23 jump LOGGING
		tcp dport 24 jump LOGGING-VERBOSE
	}
	chain outgoing {
		type filter hook output priority filter; policy accept;
		jump accounting
		icmpv6 type nd-router-advert counter drop
	}
}
table ip firewall {
	chain incoming {
		type filter hook input priority 10; policy accept;
		udp dport 53 counter
	}
}
"#;

/// Seed 003: set lookups, a named counter, NAT.
pub const NAT: &str = r#"
table bridge br {
	chain brfwd {
		type filter hook forward priority 0; policy accept;
		ether type ip counter
		ether saddr 02:00:00:00:00:01 counter drop
		ip saddr 10.77.0.2 counter
	}
}
table ip ip_filter {
	set whitelist {
		type ipv4_addr
		elements = { 192.0.2.8 }
	}
	counter countyboi {
	}
	chain filter_chain {
		type filter hook input priority 0; policy accept;
		ip daddr @whitelist drop
		ip daddr 10.77.0.1 counter name "countyboi"
	}
}
table ip nat {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		iifname "veth0" tcp dport 2222 dnat to 10.77.0.1:22
		tcp dport 8080 redirect to :80
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "veth0" ip saddr 10.88.0.0/16 masquerade
		ip saddr 10.99.0.0/16 snat to 10.77.0.1
	}
}
"#;

/// Our own: maps, verdict maps, intervals, concatenations, quotas, timeouts, and
/// expressions rustables cannot list (pkttype, length, nftrace, ct status, fib).
pub const MINE: &str = r#"
table inet mine {
	counter c_web {
	}
	quota q_small {
		over 100 kbytes
	}
	set nets {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.20 }
	}
	set allow6 {
		type ipv6_addr
		flags interval
		elements = { fd00:77::/64, 2001:db8::1 }
	}
	set pairs {
		type ipv4_addr . inet_service
		elements = { 10.77.0.2 . 80, 10.77.0.2 . 443 }
	}
	set timed {
		type ipv4_addr
		flags timeout
		timeout 1h
		elements = { 192.0.2.50 timeout 30m, 192.0.2.51 }
	}
	map portmap {
		type inet_service : ipv4_addr
		elements = { 8080 : 10.77.0.1 }
	}
	map svc {
		type inet_service : verdict
		elements = { 22 : accept, 8081 : jump web }
	}
	chain web {
		tcp dport 8081 counter name "c_web" accept
	}
	chain input {
		type filter hook input priority 10; policy accept;
		meta pkttype broadcast counter drop
		meta length 1-100 counter
		ct status dnat counter
		ip saddr . tcp dport @pairs counter accept
		ip saddr @nets counter
		ip6 saddr @allow6 counter
		ip saddr @timed counter drop
		tcp dport vmap @svc
		udp dport { 53, 123 } counter accept
		tcp dport 1000-2000 counter drop
		tcp dport vmap { 9000 : drop, 9001 : accept }
		ip saddr 10.77.0.0/24 icmp type echo-request limit rate 100/second counter accept
		quota name "q_small" counter
		iifname "veth*" counter
		meta nftrace set 1
		meta mark set 0x0000002a counter
		ip saddr != 10.77.0.9 ct state new counter
		meta l4proto { tcp, udp } th dport 7 counter reject with icmpx admin-prohibited
		icmpv6 type { nd-router-advert, nd-neighbor-solicit } counter
		quota over 1 mbytes counter
		fib daddr type local counter
		udp dport 5000-5100 counter
		tcp dport 23 counter reject with tcp reset
		udp dport 69 log prefix "tftp: " group 2 drop
		tcp dport 8082 goto web
		ip6 saddr fd00:77::/64 tcp dport 25 reject with icmpv6 admin-prohibited
		ct state { established, related } meta mark 0x00000001 counter
		ct mark 0x00000010 ct direction reply counter
		tcp flags syn tcp dport 8000 counter
		ip ttl 1 ip protocol udp counter
		ip6 hoplimit 255 icmpv6 type nd-neighbor-advert counter
		meta iifname "lo" meta oifname "veth0" counter
		ct mark set 0x00000007
		meta l4proto tcp counter return
	}
}
"#;

/// Two namespaces joined by veth: `r` (the router under test, 10.77.0.1, fd00:77::1) and
/// `c` (a client, 10.77.0.2, fd00:77::2).
pub fn pair(tag: &str) -> (Netns, Netns) {
    let r = Netns::new(tag);
    let c = Netns::new(tag);
    r.veth(
        "veth0",
        "10.77.0.1/24,fd00:77::1/64",
        &c,
        "veth1",
        "10.77.0.2/24,fd00:77::2/64",
    );
    (r, c)
}

fn snapshot(src: &mut NftSource) -> RulesetSnapshot {
    src.snapshot(Instant::now()).expect("snapshot")
}

/// Snapshot, `nft -j`, snapshot, then the comparison.
fn compare_now(r: &Netns) -> (RulesetSnapshot, usize) {
    let (a, j, b) = in_ns(r, || {
        let mut src = NftSource::open(CountPolicy::default()).expect("open");
        let a = snapshot(&mut src);
        let j = r.nft_json();
        let b = snapshot(&mut src);
        (a, j, b)
    });
    let hit = check_same_moment(&a, &nft_view(&j), &b);
    (a, hit)
}

#[test]
fn seeds_and_own_rulesets_match_nft_json_after_real_traffic() {
    let (r, c) = pair("nftsnap");
    r.nft_load(ACCOUNTING);
    r.nft_load(NAT);
    r.nft_load(MINE);
    // Real traffic from the client: TCP to accounted ports, UDP (v4 and v6), pings.
    for port in [22, 80, 23, 24, 1500, 9000, 7] {
        tcp_syn(&c, "10.77.0.1", port);
    }
    udp_send(&c, "10.77.0.1", 53, 5, 100);
    udp_send(&c, "10.77.0.1", 5050, 3, 40);
    udp_send(&c, "fd00:77::1", 53, 4, 60);
    c.run(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.77.0.1"]);

    let (snap, hit) = compare_now(&r);
    assert!(
        hit >= 10,
        "traffic moved at least 10 rules' counters, got {hit}"
    );
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);

    // The accounting rules carry their comments, labels parse, and their counters moved.
    let acct: Vec<_> = snap
        .rules
        .iter()
        .filter(|r| &**r.chain() == "accounting")
        .collect();
    assert_eq!(acct.len(), 6);
    let ssh_in = acct[0];
    assert_eq!(
        ssh_in.comment(),
        Some("nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=in)")
    );
    let labels = pirouterd::firewall::labels::parse_labels(ssh_in.comment().unwrap_or(""));
    assert!(labels.pairs.contains(&("service".into(), "SSH".into())));
    assert!(ssh_in.packets() >= 1, "the SYN to port 22 was counted");
    let dns6 = acct[5];
    assert_eq!(
        dns6.packets(),
        4,
        "four UDP/IPv6 datagrams: {}",
        dns6.text()
    );

    // Same table name in two families: each rule sits in its own family's table.
    let ip_fw: Vec<_> = snap
        .rules
        .iter()
        .filter(|r| r.family() == Family::Ip && &**r.table() == "firewall")
        .collect();
    assert_eq!(ip_fw.len(), 1);
    assert_eq!(ip_fw[0].text(), "udp dport 53 counter");
    assert_eq!(ip_fw[0].packets(), 5);
    assert!(snap
        .tables
        .iter()
        .any(|t| t.family == Family::Ip && &*t.name == "firewall"));
    assert!(snap
        .tables
        .iter()
        .any(|t| t.family == Family::Inet && &*t.name == "firewall"));

    // Named counter and quota, base chains with hook and policy.
    let (cnt, v) = snap
        .counters()
        .find(|(o, _)| &*o.name == "countyboi")
        .expect("countyboi");
    assert_eq!(cnt.family, Family::Ip);
    assert!(
        v.packets >= 10,
        "everything to 10.77.0.1 was counted: {v:?}"
    );
    let input = snap
        .chains
        .iter()
        .find(|c| &*c.name == "Input" || &*c.name == "incoming")
        .expect("chain");
    let hook = input.hook.as_ref().expect("base chain");
    assert_eq!(
        (hook.name.as_str(), hook.priority, hook.policy.as_str()),
        ("input", 0, "accept")
    );
    let web = snap.chains.iter().find(|c| &*c.name == "web").expect("web");
    assert!(web.hook.is_none());

    // Sets: types, flags, counts.
    let pairs = snap.set(Family::Inet, "mine", "pairs").expect("pairs");
    assert_eq!(pairs.key_type, "ipv4_addr . inet_service");
    assert_eq!(pairs.element_count, Some(2));
    let nets = snap.set(Family::Inet, "mine", "nets").expect("nets");
    assert!(nets.flags.interval);
    assert_eq!(nets.element_count, Some(2));
    let svc = snap.set(Family::Inet, "mine", "svc").expect("svc");
    assert_eq!(svc.data_type.as_deref(), Some("verdict"));
    let timed = snap.set(Family::Inet, "mine", "timed").expect("timed");
    assert_eq!(timed.timeout_ms, Some(3_600_000));
    assert!(timed.flags.timeout);

    // Unknown expressions are kept by name, never dropped.
    let fib = snap
        .rules
        .iter()
        .find(|r| r.text().contains("fib"))
        .expect("fib rule is listed");
    assert!(!fib.text_exact);
    assert!(fib.text().ends_with("counter"), "{}", fib.text());
    for want in [
        "meta pkttype broadcast counter drop",
        "meta length 1-100 counter",
        "ct status dnat counter",
        "meta nftrace set 1",
    ] {
        assert!(
            snap.rules.iter().any(|r| r.text() == want),
            "{want:?} rendered; have {:#?}",
            snap.rules.iter().map(|r| r.text()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn port_knocking_puts_the_knocker_in_the_step_sets_with_expiry() {
    let (r, c) = pair("nftknock");
    r.nft_load(KNOCK);
    let mut src = in_ns(&r, || {
        NftSource::open(CountPolicy::default()).expect("open")
    });
    let elems = |src: &mut NftSource, set: &str| {
        let set = set.to_string();
        in_ns(&r, || {
            src.set_elements(Family::Inet, "Filter", &set)
                .expect("elements")
        })
    };
    assert!(elems(&mut src, "Step1").elements.is_empty());
    tcp_syn(&c, "10.77.0.1", 36);
    let s1 = elems(&mut src, "Step1");
    assert_eq!(s1.elements.len(), 1, "{:?}", s1.elements);
    assert_eq!(s1.elements[0].key, "10.77.0.2");
    let exp = s1.elements[0]
        .expires_ms
        .expect("Step1 element has an expiry");
    assert!(exp > 0 && exp <= 5_000, "expires in {exp} ms");
    assert_eq!(s1.set.timeout_ms, Some(5_000));

    tcp_syn(&c, "10.77.0.1", 15);
    let s2 = elems(&mut src, "Step2");
    assert_eq!(
        s2.elements
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        vec!["10.77.0.2"]
    );
    assert!(s2.elements[0].expires_ms.is_some());

    tcp_syn(&c, "10.77.0.1", 42);
    let allow = elems(&mut src, "Client_SSH_IPv4");
    let mut keys: Vec<_> = allow.elements.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, vec!["10.77.0.2", "192.0.2.10", "192.0.2.11"]);
    let knocker = allow
        .elements
        .iter()
        .find(|e| e.key == "10.77.0.2")
        .expect("knocker");
    assert_eq!(knocker.timeout_ms, Some(10_000));
    let left = knocker.expires_ms.expect("expiry");
    assert!(left > 0 && left <= 10_000, "{left}");
    assert!(allow
        .elements
        .iter()
        .filter(|e| e.key != "10.77.0.2")
        .all(|e| e.expires_ms.is_none()));

    // The snapshot shows the same sizes as nft -j, and the knock rules' text.
    let (snap, _) = compare_now(&r);
    let step1 = snap.set(Family::Inet, "Filter", "Step1").expect("Step1");
    assert_eq!(step1.element_count, Some(1));
    let raw: Vec<_> = snap
        .rules
        .iter()
        .filter(|r| &**r.chain() == "Raw")
        .map(|r| r.text())
        .collect();
    assert_eq!(
        raw,
        vec![
            "tcp dport 36 add @Step1 { ip saddr } drop",
            "ip saddr @Step1 tcp dport 15 add @Step2 { ip saddr } drop",
            "ip saddr @Step2 tcp dport 42 add @Client_SSH_IPv4 { ip saddr timeout 10s } drop",
        ]
    );
    drop(c);
}

#[test]
fn ruleset_changes_are_announced() {
    let r = Netns::new("nftev");
    r.nft_load("table inet t {\n chain c {\n }\n}\n");
    let got = in_ns(&r, || {
        let mut src = NftSource::open(CountPolicy::default()).expect("open");
        src.subscribe().expect("subscribe");
        let quiet = src
            .wait_for_change(Duration::from_millis(200))
            .expect("wait");
        let g0 = src.generation().expect("gen");
        r.run(&["nft", "add", "rule", "inet", "t", "c", "counter"]);
        let changed = wait_for(Duration::from_secs(5), || {
            src.wait_for_change(Duration::from_millis(500))
                .expect("wait")
                .then_some(())
        });
        let g1 = src.generation().expect("gen");
        (quiet, changed.is_some(), g0, g1)
    });
    assert!(!got.0, "no event without a change");
    assert!(got.1, "the added rule was announced");
    assert_ne!(got.2, got.3, "generation moved");
}

#[test]
fn missing_set_is_a_clear_error() {
    let r = Netns::new("nftnoset");
    r.nft_load("table inet t {\n set s {\n type ipv4_addr\n }\n}\n");
    let err = in_ns(&r, || {
        let mut src = NftSource::open(CountPolicy::default()).expect("open");
        src.set_elements(Family::Inet, "t", "nope")
            .expect_err("no such set")
    });
    assert_eq!(err.to_string(), "no set inet t nope");
}

#[test]
fn large_sets_are_counted_on_their_own_cadence() {
    let r = Netns::new("nftcad");
    let mut rs = String::from("table inet t {\n set big {\n type ipv4_addr\n }\n set small {\n type ipv4_addr\n elements = { 192.0.2.1 }\n }\n}\n");
    let elems: Vec<String> = (0..300)
        .map(|i| format!("10.1.{}.{}", i / 256, i % 256))
        .collect();
    rs.push_str(&format!(
        "add element inet t big {{ {} }}\n",
        elems.join(", ")
    ));
    r.nft_load(&rs);
    let (first, second, third) = in_ns(&r, || {
        let policy = CountPolicy {
            small_max: 100,
            large_every: Duration::from_secs(3600),
        };
        let mut src = NftSource::open(policy).expect("open");
        let t0 = Instant::now();
        let a = src.snapshot(t0).expect("snap");
        r.run(&["nft", "add", "element", "inet", "t", "big", "{ 10.9.9.9 }"]);
        r.run(&[
            "nft",
            "add",
            "element",
            "inet",
            "t",
            "small",
            "{ 192.0.2.2 }",
        ]);
        let b = src.snapshot(t0 + Duration::from_secs(1)).expect("snap");
        let c = src.snapshot(t0 + Duration::from_secs(3601)).expect("snap");
        (a, b, c)
    });
    let count =
        |s: &RulesetSnapshot, n: &str| s.set(Family::Inet, "t", n).and_then(|x| x.element_count);
    assert_eq!(count(&first, "big"), Some(300));
    assert_eq!(
        count(&second, "big"),
        Some(300),
        "large set not recounted before its cadence"
    );
    assert!(matches!(
        second
            .set(Family::Inet, "t", "big")
            .map(|x| x.count_freshness),
        Some(pirouterd::firewall::CountFreshness::Carried { .. })
    ));
    assert_eq!(
        count(&second, "small"),
        Some(2),
        "small set recounted every snapshot"
    );
    assert_eq!(
        count(&third, "big"),
        Some(301),
        "recounted once its cadence passed"
    );
}

#[test]
fn without_cap_net_admin_the_error_says_what_to_do() {
    let r = Netns::new("nftcap");
    r.nft_load("table inet t {\n chain c {\n }\n}\n");
    let exe = env!("CARGO_BIN_EXE_bench_nft");
    let out = r.exec(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        exe,
        "once",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pirouterd needs CAP_NET_ADMIN to read nftables; run it from the systemd unit or as root"),
        "stderr: {err}"
    );
    // And as root the same command works.
    let ok = r.exec(&[exe, "once"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// Sets every counter's and quota's values to zero so two rulesets' expressions compare.
fn zero_counters(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for k in ["packets", "bytes", "used"] {
                if m.contains_key(k) {
                    m.insert(k.to_string(), 0.into());
                }
            }
            for (_, x) in m.iter_mut() {
                zero_counters(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(zero_counters),
        _ => {}
    }
}

/// `nft list ruleset` rule lines per (family, table, chain), counters' values and comments
/// removed, to compare with the rendered text.
fn nft_listing(ns: &Netns) -> std::collections::HashMap<(String, String, String), Vec<String>> {
    let out = ns.run(&["nft", "list", "ruleset"]);
    let mut m = std::collections::HashMap::new();
    let (mut fam, mut table, mut chain) = (String::new(), String::new(), None::<String>);
    let mut depth = 0;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("table ") {
            let mut w = rest.split_whitespace();
            fam = w.next().unwrap_or_default().into();
            table = w.next().unwrap_or_default().into();
        } else if let Some(rest) = line.strip_prefix("chain ") {
            chain = Some(rest.trim_end_matches(" {").to_string());
            depth = 0;
        } else if line == "}" {
            if depth == 0 {
                chain = None;
            } else {
                depth -= 1;
            }
        } else if let Some(c) = &chain {
            if line.starts_with("type ") || line.is_empty() || line.starts_with("comment ") {
                continue;
            }
            let mut l = line.to_string();
            while let Some(i) = l.find("counter packets ") {
                let rest = &l[i + "counter packets ".len()..];
                let mut words = rest.splitn(4, ' ');
                let (_, _, _) = (words.next(), words.next(), words.next());
                let tail = words.next().map(|t| format!(" {t}")).unwrap_or_default();
                l = format!("{}counter{tail}", &l[..i]);
            }
            if let Some(i) = l.find(" comment \"") {
                l.truncate(i);
            }
            m.entry((fam.clone(), table.clone(), c.clone()))
                .or_insert_with(Vec::new)
                .push(l);
        }
    }
    m
}

#[test]
fn rendering_round_trips_through_nft_and_reads_like_nft_list() {
    let mut claimed = 0;
    let mut total = 0;
    for (name, ruleset, must_read_like_nft) in [
        ("knock", KNOCK, true),
        ("accounting", ACCOUNTING, true),
        ("nat", NAT, true),
        ("mine", MINE, false),
        ("demo", include_str!("../src/demo/ruleset.nft"), true),
    ] {
        let (r, _c) = pair("nftrt");
        r.nft_load(ruleset);
        let snap = in_ns(&r, || {
            snapshot(&mut NftSource::open(CountPolicy::default()).expect("open"))
        });
        let mut j1 = r.nft_json();
        zero_counters(&mut j1);
        let v1 = nft_view(&j1);

        // Reads like `nft list ruleset` for the seeds.
        if must_read_like_nft {
            let listing = nft_listing(&r);
            for rule in &snap.rules {
                let key = (
                    rule.family().to_string(),
                    rule.table().to_string(),
                    rule.chain().to_string(),
                );
                let lines = listing
                    .get(&key)
                    .unwrap_or_else(|| panic!("{name}: no listing for {key:?}"));
                assert_eq!(
                    Some(rule.text()),
                    lines.get(rule.position as usize).map(String::as_str),
                    "{name}: rule {} of {key:?} reads differently from nft list",
                    rule.position
                );
            }
        }

        // Loads back as the same expressions, in a fresh namespace.
        let fresh = Netns::new("nftrt2");
        fresh.nft_load(ruleset);
        let mut added: Vec<&pirouterd::firewall::Rule> = Vec::new();
        for rule in &snap.rules {
            total += 1;
            if !rule.text_exact {
                continue;
            }
            let fam = rule.family().to_string();
            let out = fresh.exec(&[
                "nft",
                "add",
                "rule",
                &fam,
                rule.table(),
                rule.chain(),
                rule.text(),
            ]);
            assert!(
                out.status.success(),
                "{name}: nft refused rendered rule {:?}: {}",
                rule.text(),
                String::from_utf8_lossy(&out.stderr)
            );
            added.push(rule);
        }
        claimed += added.len();
        let mut j2 = fresh.nft_json();
        zero_counters(&mut j2);
        // Appended rules follow the originals in each chain: match them up in order.
        let mut by_chain: std::collections::HashMap<
            (String, String, String),
            Vec<serde_json::Value>,
        > = std::collections::HashMap::new();
        for o in j2["nftables"].as_array().expect("array") {
            if let Some(rj) = o.get("rule") {
                let key = (
                    rj["family"].as_str().unwrap_or_default().to_string(),
                    rj["table"].as_str().unwrap_or_default().to_string(),
                    rj["chain"].as_str().unwrap_or_default().to_string(),
                );
                by_chain.entry(key).or_default().push(rj["expr"].clone());
            }
        }
        let mut cursor: std::collections::HashMap<(String, String, String), usize> =
            std::collections::HashMap::new();
        for rule in &added {
            let key = (
                rule.family().to_string(),
                rule.table().to_string(),
                rule.chain().to_string(),
            );
            let originals = snap
                .rules
                .iter()
                .filter(|x| {
                    x.family() == rule.family()
                        && x.table() == rule.table()
                        && x.chain() == rule.chain()
                })
                .count();
            let i = cursor.entry(key.clone()).or_insert(originals);
            let got = &by_chain[&key][*i];
            *i += 1;
            let want = &v1.rules[&(key.0.clone(), key.1.clone(), key.2.clone(), rule.handle)].3;
            assert_eq!(
                got,
                want,
                "{name}: {:?} loaded back differently",
                rule.text()
            );
        }
    }
    eprintln!("rendered exactly: {claimed}/{total}");
    assert!(
        claimed * 10 >= total * 8,
        "at least 80% of rules render exactly: {claimed}/{total}"
    );
}

#[test]
fn snapshots_taken_while_the_ruleset_changes_retry_and_stay_whole() {
    let r = Netns::new("nftchurn");
    let mut rs = String::from("table inet t {\n");
    for c in 0..100 {
        rs.push_str(&format!("\tchain c{c} {{\n"));
        for i in 0..20 {
            rs.push_str(&format!(
                "\t\tip saddr 10.0.{c}.{i} tcp dport {} counter accept\n",
                1000 + i
            ));
        }
        rs.push_str("\t}\n");
    }
    rs.push_str("}\n");
    r.nft_load(&rs);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (results, changes) = std::thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                r.run(&["nft", "add", "table", "inet", "churn"]);
                r.run(&["nft", "delete", "table", "inet", "churn"]);
                n += 1;
            }
            n
        });
        let results = in_ns(&r, || {
            let mut src = NftSource::open(CountPolicy::default()).expect("open");
            let mut v = Vec::new();
            for _ in 0..30 {
                v.push(src.snapshot(Instant::now()));
            }
            v
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (results, churn.join().expect("churn thread"))
    });
    assert!(changes > 0);
    let mut retried = 0;
    for res in &results {
        match res {
            Ok(s) => {
                assert_eq!(
                    s.rules.iter().filter(|x| &**x.table() == "t").count(),
                    2000,
                    "no rule lost"
                );
                if s.stats.attempts > 1 {
                    retried += 1;
                }
            }
            Err(pirouterd::firewall::NftError::Vanished { .. }) => {}
            Err(e) => panic!("snapshot failed while the ruleset changed: {e}"),
        }
    }
    eprintln!(
        "{retried} of {} snapshots retried during {changes} changes",
        results.len()
    );
    assert!(
        retried > 0,
        "some snapshot saw a generation change and retried ({changes} changes)"
    );
}
