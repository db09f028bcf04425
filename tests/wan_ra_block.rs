//! The RA block against the real kernel, in throwaway namespaces: the owner table appears and
//! vanishes, real router advertisements are dropped (counter and a listener on the other side
//! of the veth) and pass again, a foreign `nft flush ruleset` does not remove it (or it is
//! restored without owner tables), and it dies with the process that owns it.
#![allow(clippy::unwrap_used)]
mod common;
mod wan_util;

use std::process::Command;
use std::time::Duration;

use common::{wait_for, ChildGuard, Netns};
use pirouterd::sys::ra_block::{send_ra, NftRaBlocker, RaBlockOptions};
use pirouterd::wan::plan::RaBlockSpec;
use pirouterd::wan::ra::RouterAdvert;
use pirouterd::wan::RaBlocker;
use wan_util::{in_netns, nft_drop_count, pirouterd_table, router_and_client, RaListener};

const MARK: u32 = 0x5241;

fn opts(owner: bool, final_ra: &[&str]) -> RaBlockOptions {
    RaBlockOptions {
        spec: RaBlockSpec {
            owner,
            exempt_mark: Some(MARK),
            ..RaBlockSpec::default()
        },
        final_ra_interfaces: final_ra.iter().map(|s| s.to_string()).collect(),
    }
}

fn normal_ra() -> RouterAdvert {
    RouterAdvert {
        cur_hop_limit: 64,
        flags: 0,
        router_lifetime: 1800,
        reachable_ms: 0,
        retrans_ms: 0,
    }
}

#[test]
fn engage_creates_the_owner_table_and_release_removes_it() {
    let ns = Netns::new("rab");
    let (before, during, listing, after) = in_netns(&ns, || {
        let mut b = NftRaBlocker::open(opts(true, &[])).expect("open");
        let before = pirouterd_table(&ns).is_some();
        b.set_blocked(true).expect("engage");
        assert!(b.is_blocked());
        let during = pirouterd_table(&ns);
        // nft 1.0.6's JSON prints table flags wrongly; the text listing is right
        let listing = ns.run(&["nft", "list", "table", "inet", "pirouterd"]);
        b.set_blocked(false).expect("release");
        let after = pirouterd_table(&ns).is_some();
        (before, during, listing, after)
    });
    assert!(!before);
    let v = during.expect("table inet pirouterd exists while blocked");
    assert!(listing.contains("flags owner"), "{listing}");
    assert_eq!(v.chains.len(), 1);
    assert_eq!(v.chains[0]["name"], "ra_block");
    assert_eq!(v.chains[0]["hook"], "output");
    assert_eq!(v.chains[0]["type"], "filter");
    let text = serde_json::to_string(&v.rules).unwrap();
    assert_eq!(v.rules.len(), 2, "{text}");
    assert!(text.contains("nd-router-advert"), "{text}");
    assert!(text.contains("\"drop\""), "{text}");
    assert!(text.contains("\"counter\""), "{text}");
    assert!(text.contains(&format!("{MARK}")), "mark exemption: {text}");
    assert!(!after, "table removed on release");
}

#[test]
fn router_advertisements_are_dropped_while_blocked_and_pass_when_not() {
    let (router, client) = router_and_client("raq");
    let listener = RaListener::start(&client);
    let (report, dropped) = in_netns(&router, || {
        let mut b = NftRaBlocker::open(opts(true, &["lan0"])).expect("open");
        let mut report = Vec::new();
        // not blocked: three RAs pass
        for _ in 0..3 {
            send_ra("lan0", 0, &normal_ra()).expect("send");
        }
        report.push(listener.collect(Duration::from_millis(500)));
        // blocked: the final RA (lifetime 0, marked) passes, the next three are dropped
        b.set_blocked(true).expect("engage");
        // an RA daemon sees the drop as EPERM from sendmsg (radvd logs it)
        for _ in 0..3 {
            let e = send_ra("lan0", 0, &normal_ra()).expect_err("dropped in output");
            assert!(e.to_string().contains("lan0"), "{e}");
            assert!(format!("{e:?}").contains("EPERM"), "{e:?}");
        }
        report.push(listener.collect(Duration::from_millis(700)));
        let v = pirouterd_table(&router).expect("table");
        let nft_count = nft_drop_count(&v);
        let ours = b.dropped().expect("counter");
        // released: they pass again, and the count survives the table
        b.set_blocked(false).expect("release");
        for _ in 0..2 {
            send_ra("lan0", 0, &normal_ra()).expect("send");
        }
        report.push(listener.collect(Duration::from_millis(500)));
        let total = b.dropped().expect("counter");
        drop(listener);
        (report, (nft_count, ours, total))
    });
    let lifetimes = |v: &Vec<RouterAdvert>| v.iter().map(|r| r.router_lifetime).collect::<Vec<_>>();
    assert_eq!(lifetimes(&report[0]), vec![1800, 1800, 1800], "pass before");
    assert_eq!(
        lifetimes(&report[1]),
        vec![0],
        "only the final RA while blocked"
    );
    assert_eq!(lifetimes(&report[2]), vec![1800, 1800], "pass after");
    let (nft_count, ours, total) = dropped;
    assert_eq!(nft_count, 3, "nft -j counter");
    assert_eq!(ours.packets, 3, "our counter read-back");
    assert_eq!(ours.bytes, 3 * (40 + 16), "IPv6 header + RA");
    assert_eq!(total.packets, 3, "kept after release");
}

#[test]
fn a_foreign_flush_ruleset_skips_the_owner_table() {
    let ns = Netns::new("raf");
    ns.nft_load("table inet user {\n chain c {\n type filter hook input priority 0;\n }\n}\n");
    let (survived, user_gone) = in_netns(&ns, || {
        let mut b = NftRaBlocker::open(opts(true, &[])).expect("open");
        b.set_blocked(true).expect("engage");
        // another process: nft, as Debian's nftables.service runs it
        ns.run(&["nft", "flush", "ruleset"]);
        let j = ns.run(&["nft", "list", "tables"]);
        let survived = pirouterd_table(&ns).map(|v| v.rules.len());
        // the owner table also refuses foreign changes
        let del = ns.exec(&["nft", "delete", "table", "inet", "pirouterd"]);
        assert!(!del.status.success(), "a foreign delete must be refused");
        b.set_blocked(false).expect("release");
        (survived, !j.contains("table inet user"))
    });
    assert!(user_gone, "the flush ran (the user's table is gone)");
    assert_eq!(
        survived,
        Some(2),
        "our table and both rules survived the flush"
    );
}

#[test]
fn without_owner_tables_a_flush_is_repaired() {
    let ns = Netns::new("rar");
    let (restored, reapplied, flags) = in_netns(&ns, || {
        let mut b = NftRaBlocker::open(opts(false, &[])).expect("open");
        b.set_blocked(true).expect("engage");
        ns.run(&["nft", "flush", "ruleset"]);
        let restored =
            wait_for(Duration::from_secs(3), || pirouterd_table(&ns)).map(|v| v.rules.len());
        let flags = ns.run(&["nft", "list", "table", "inet", "pirouterd"]);
        let reapplied = b.reapplied();
        b.set_blocked(false).expect("release");
        // released: a flush now must not bring it back
        std::thread::sleep(Duration::from_millis(300));
        assert!(pirouterd_table(&ns).is_none());
        (restored, reapplied, flags)
    });
    assert_eq!(
        restored,
        Some(2),
        "table and rules re-applied after the flush"
    );
    assert!(reapplied >= 1);
    assert!(
        !flags.contains("owner"),
        "no owner flag in this mode: {flags}"
    );
}

const CHILD_ENV: &str = "PIROUTERD_WAN_TEST_OWNER_CHILD";

/// Run as the parent: starts this same test binary as a child inside a namespace, where it
/// engages the block and waits; SIGKILLs it; the kernel must remove the table. Run as the
/// child (env set): engage, say so, sleep until killed.
#[test]
fn the_table_vanishes_when_its_owner_is_killed() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let mut b = NftRaBlocker::open(opts(true, &[])).expect("open");
        b.set_blocked(true).expect("engage");
        println!("ENGAGED");
        std::thread::sleep(Duration::from_secs(60));
        panic!("the parent should have killed this child");
    }
    let ns = Netns::new("rak");
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name])
        .arg(exe)
        .args([
            "--exact",
            "the_table_vanishes_when_its_owner_is_killed",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(std::process::Stdio::null());
    let mut child = ChildGuard::spawn(cmd);
    let up = wait_for(Duration::from_secs(10), || pirouterd_table(&ns));
    assert!(up.is_some(), "the child engaged the block");
    let st = child.signal_and_wait("KILL", Duration::from_secs(5));
    assert!(st.is_some(), "child died");
    let gone = wait_for(Duration::from_secs(2), || {
        pirouterd_table(&ns).is_none().then_some(())
    });
    assert!(
        gone.is_some(),
        "the kernel removed the owner table with its socket"
    );
}

#[test]
fn a_failing_final_ra_does_not_stop_the_block() {
    let ns = Netns::new("rae");
    let (blocked, outcome) = in_netns(&ns, || {
        let mut b = NftRaBlocker::open(opts(true, &["nope0"])).expect("open");
        b.set_blocked(true).expect("the block engages all the same");
        let outcome = b.last_final_ra().cloned();
        (pirouterd_table(&ns).is_some(), outcome)
    });
    assert!(blocked);
    let err = outcome.expect("attempted").expect_err("no such interface");
    assert!(err.contains("nope0"), "{err}");
}
