//! The WAN watcher and the whole WAN loop against the real kernel: rtnetlink readings of a
//! veth whose peer goes down and up, is deleted and comes back; a default route flagged
//! `linkdown`; and the debounced block appearing and vanishing in `nft -j list ruleset`.
#![allow(clippy::unwrap_used)]
mod common;
mod wan_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_for, Netns};
use pirouterd::sys::clock::SystemClock;
use pirouterd::sys::link::{RtnlOptions, RtnlWatcher};
use pirouterd::sys::ra_block::{NftRaBlocker, RaBlockOptions};
use pirouterd::wan::controller::WanPolicy;
use pirouterd::wan::plan::RaBlockSpec;
use pirouterd::wan::runner::WanRunner;
use pirouterd::wan::{LinkSample, OperState, RaMode, WanController, WanWatcher};
use wan_util::{enter, in_netns, pirouterd_table};

fn watcher(check_routes: bool) -> RtnlWatcher {
    RtnlWatcher::open(RtnlOptions {
        interface: "wan0".into(),
        reread_every: Duration::from_secs(30),
        check_routes,
    })
    .expect("rtnetlink")
}

/// Next reading that satisfies `pred`, within 3 s.
fn next_matching(w: &mut RtnlWatcher, pred: impl Fn(&LinkSample) -> bool) -> LinkSample {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(s) = w.next_sample(Duration::from_millis(200)).expect("read") {
            if pred(&s) {
                return s;
            }
        }
    }
    panic!("no matching reading; last: {:?}", w.current());
}

#[test]
fn watcher_follows_carrier_admin_state_and_deletion() {
    let router = Netns::new("wlk");
    let isp = Netns::new("wlk");
    router.veth("wan0", "10.77.0.1/30", &isp, "isp0", "10.77.0.2/30");
    in_netns(&router, || {
        let mut w = watcher(false);
        let first = w.next_sample(Duration::from_secs(1)).unwrap().unwrap();
        assert!(first.usable(), "{first:?}");
        assert_eq!(first.operstate, OperState::Up);
        assert_eq!(first.carrier, Some(true));

        // the far end goes away: carrier lost, IFF_RUNNING cleared, still IFF_UP
        isp.run(&["ip", "link", "set", "isp0", "down"]);
        let s = next_matching(&mut w, |s| !s.running);
        assert!(s.admin_up && !s.usable());
        // DOWN or LOWERLAYERDOWN depending on the kernel; never UP
        assert_ne!(s.operstate, OperState::Up);

        isp.run(&["ip", "link", "set", "isp0", "up"]);
        let s = next_matching(&mut w, |s| s.usable());
        assert_eq!(s.carrier, Some(true));

        // administratively down here
        router.run(&["ip", "link", "set", "wan0", "down"]);
        let s = next_matching(&mut w, |s| !s.admin_up);
        assert!(!s.usable());
        router.run(&["ip", "link", "set", "wan0", "up"]);
        next_matching(&mut w, |s| s.usable());

        // deleted, like ppp0 between sessions: absent
        router.run(&["ip", "link", "del", "wan0"]);
        let s = next_matching(&mut w, |s| !s.present);
        assert_eq!(s, LinkSample::absent());
        // and a re-read agrees (ENODEV is "down", not an error)
        assert_eq!(w.reread().unwrap(), LinkSample::absent());

        // it comes back with a new index: present and usable again
        router.run(&[
            "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "isp0", "netns", &isp.name,
        ]);
        router.run(&["ip", "link", "set", "wan0", "up"]);
        isp.run(&["ip", "link", "set", "isp0", "up"]);
        let s = next_matching(&mut w, |s| s.usable());
        assert!(s.ifindex.is_some());
    });
}

#[test]
fn a_default_route_flagged_linkdown_does_not_count() {
    let router = Netns::new("wrt");
    let isp = Netns::new("wrt");
    router.veth("wan0", "10.78.0.1/30", &isp, "isp0", "10.78.0.2/30");
    router.run(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.78.0.2",
        "dev",
        "wan0",
    ]);
    in_netns(&router, || {
        let mut w = watcher(true);
        let s = w.next_sample(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(s.default_route, Some(true));
        assert!(s.usable());

        isp.run(&["ip", "link", "set", "isp0", "down"]);
        let s = next_matching(&mut w, |s| s.default_route == Some(false));
        let routes = router.run(&["ip", "route", "show", "default"]);
        assert!(routes.contains("linkdown"), "kernel flags it: {routes}");
        assert!(!s.usable());

        isp.run(&["ip", "link", "set", "isp0", "up"]);
        let s = next_matching(&mut w, |s| s.default_route == Some(true) && s.running);
        assert!(s.usable());

        // no default route at all: not usable either
        router.run(&["ip", "route", "del", "default"]);
        let s = next_matching(&mut w, |s| s.default_route == Some(false));
        assert!(s.running && !s.usable());
    });
}

/// Runs the WAN loop in `router` on its own thread until the returned guard drops.
struct Loop<'scope> {
    stop: Arc<AtomicBool>,
    errors: Arc<Mutex<Vec<String>>>,
    _handle: std::thread::ScopedJoinHandle<'scope, ()>,
}

fn start_loop<'scope, 'env>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    router: &'env Netns,
    policy: WanPolicy,
) -> Loop<'scope> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (stop2, errors2) = (stop.clone(), errors.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = s.spawn(move || {
        enter(router);
        let clock = Arc::new(SystemClock);
        let ctl = WanController::new(policy, RaMode::Auto, Instant::now());
        let blocker = NftRaBlocker::open(RaBlockOptions {
            spec: RaBlockSpec::default(),
            final_ra_interfaces: vec![],
        })
        .unwrap();
        let mut r = WanRunner::new(watcher(false), blocker, ctl, clock);
        r.step(Duration::from_millis(10));
        ready_tx.send(()).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            let rep = r.step(Duration::from_millis(100));
            if let Some(e) = rep.error {
                errors2.lock().unwrap().push(e);
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    Loop {
        stop,
        errors,
        _handle: handle,
    }
}

impl Drop for Loop<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn policy(down_after_ms: u64, up_after_ms: u64) -> WanPolicy {
    WanPolicy {
        down_after: Duration::from_millis(down_after_ms),
        up_after: Duration::from_millis(up_after_ms),
        damping: None,
        probe_fail_rounds: 1,
    }
}

#[test]
fn the_block_follows_the_wan_within_the_debounce_plus_one_second() {
    let router = Netns::new("wlp");
    let isp = Netns::new("wlp");
    router.veth("wan0", "10.79.0.1/30", &isp, "isp0", "10.79.0.2/30");
    let (down_after, up_after) = (Duration::from_millis(1500), Duration::from_millis(2500));
    std::thread::scope(|s| {
        let lp = start_loop(s, &router, policy(1500, 2500));
        assert!(pirouterd_table(&router).is_none(), "WAN up: no block");

        isp.run(&["ip", "link", "set", "isp0", "down"]);
        let t = Instant::now();
        let v = wait_for(down_after + Duration::from_secs(1), || {
            pirouterd_table(&router)
        })
        .expect("block engaged within down_after + 1 s");
        let took = t.elapsed();
        assert!(
            took + Duration::from_millis(100) >= down_after,
            "not before down_after: {took:?}"
        );
        assert_eq!(v.rules.len(), 1);
        assert_eq!(v.chains[0]["hook"], "output");

        isp.run(&["ip", "link", "set", "isp0", "up"]);
        let t = Instant::now();
        wait_for(up_after + Duration::from_secs(1), || {
            pirouterd_table(&router).is_none().then_some(())
        })
        .expect("block released within up_after + 1 s");
        let took = t.elapsed();
        assert!(
            took + Duration::from_millis(100) >= up_after,
            "not before up_after: {took:?}"
        );
        assert_eq!(*lp.errors.lock().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn flapping_shorter_than_the_debounce_does_nothing() {
    let router = Netns::new("wlf");
    let isp = Netns::new("wlf");
    router.veth("wan0", "10.80.0.1/30", &isp, "isp0", "10.80.0.2/30");
    std::thread::scope(|s| {
        let lp = start_loop(s, &router, policy(1500, 2500));
        // five drops of ~300 ms each, 200 ms apart: never down for 1.5 s straight
        let mut seen = false;
        for _ in 0..5 {
            isp.run(&["ip", "link", "set", "isp0", "down"]);
            std::thread::sleep(Duration::from_millis(300));
            seen |= pirouterd_table(&router).is_some();
            isp.run(&["ip", "link", "set", "isp0", "up"]);
            std::thread::sleep(Duration::from_millis(200));
            seen |= pirouterd_table(&router).is_some();
        }
        // and for the debounce time after the last flap
        let appeared = wait_for(Duration::from_millis(2000), || pirouterd_table(&router));
        assert!(
            !seen && appeared.is_none(),
            "sub-debounce flaps must not engage the block"
        );
        assert_eq!(*lp.errors.lock().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn probe_rounds_count_answers_refusals_and_silence() {
    let ns = Netns::new("wpr");
    ns.run(&["ip", "route", "add", "unreachable", "10.99.99.0/24"]);
    in_netns(&ns, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        }; // dropped: connections are refused
        let unreachable: std::net::SocketAddr = "10.99.99.1:80".parse().unwrap();
        let round = pirouterd::sys::link::tcp_probe_round(
            &[open, closed, unreachable],
            Duration::from_millis(500),
        );
        assert_eq!(round, vec![true, true, false]);
    });
}

#[test]
fn lost_events_are_answered_by_a_reread() {
    let router = Netns::new("wlb");
    let isp = Netns::new("wlb");
    router.veth("wan0", "10.82.0.1/30", &isp, "isp0", "10.82.0.2/30");
    in_netns(&router, || {
        let mut w = watcher(false);
        w.set_receive_buffer(16 * 1024).unwrap(); // room for an answer, not for a burst
        assert!(w
            .next_sample(Duration::from_secs(1))
            .unwrap()
            .unwrap()
            .usable());
        // a burst of link events while nobody reads (each MTU change is one RTM_NEWLINK at
        // once; carrier changes would be coalesced by linkwatch), ending with wan0 down
        let mut cmd = String::new();
        for i in 0..100 {
            cmd.push_str(&format!("link set wan0 mtu {}\n", 1400 + i % 2));
        }
        cmd.push_str("link set wan0 down\n");
        let mut child = std::process::Command::new("ip")
            .args(["-n", &router.name, "-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(cmd.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        let s = next_matching(&mut w, |s| !s.admin_up);
        assert!(!s.usable());
        assert!(w.lost_events() >= 1, "the burst overflowed the socket");
        // and nothing stale follows: a re-read agrees
        assert!(!w.reread().unwrap().admin_up);
    });
}
