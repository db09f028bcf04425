//! WAN area costs: the pure controller and parsers per call, and against the real kernel (in a
//! private network namespace this process creates, so nothing touches the host): engaging and
//! releasing the RA block as one batch, reading its counter back, and the latency from a carrier
//! change to the block being in the kernel with `down_after = 0`.
//! Run as root: `cargo bench --bench wan`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pirouterd::sys::clock::SystemClock;
use pirouterd::sys::link::{RtnlOptions, RtnlWatcher};
use pirouterd::sys::ra_block::{NftRaBlocker, RaBlockOptions};
use pirouterd::wan::controller::WanPolicy;
use pirouterd::wan::plan::RaBlockSpec;
use pirouterd::wan::runner::WanRunner;
use pirouterd::wan::{rtnl, LinkSample, OperState, RaBlocker, RaMode, WanController};

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {:.1} us, p99 {:.1} us (n={})",
        p(0.5).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6,
        v.len()
    )
}

fn sh(args: &[&str]) {
    let st = std::process::Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("run");
    assert!(st.success(), "{args:?}");
}

fn main() {
    // --- pure ---
    let link = |up: bool| LinkSample {
        present: true,
        ifindex: Some(2),
        admin_up: true,
        running: up,
        operstate: OperState::Up,
        carrier: Some(up),
        default_route: None,
    };
    let t0 = Instant::now();
    let mut c = WanController::new(WanPolicy::default(), RaMode::Auto, t0);
    let n = 1_000_000u32;
    let start = Instant::now();
    for i in 0..n {
        let now = t0 + Duration::from_millis(u64::from(i) * 7);
        std::hint::black_box(c.observe_link(link(i % 3 != 0), now));
    }
    let per = start.elapsed() / n;
    println!("controller observe_link + tick: {per:?} per reading");

    let mut msg = rtnl::getlink_request("wan0", 1);
    msg[4] = 16; // as an RTM_NEWLINK
    let start = Instant::now();
    for _ in 0..n {
        let m = rtnl::messages(std::hint::black_box(&msg)).expect("parse");
        std::hint::black_box(rtnl::parse_link(m[0].payload).expect("link"));
    }
    println!(
        "rtnl split + parse_link: {:?} per message",
        start.elapsed() / n
    );

    // --- kernel, in a private network namespace ---
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare (needs root)");
    sh(&["ip", "link", "set", "lo", "up"]);
    let mut b = NftRaBlocker::open(RaBlockOptions {
        spec: RaBlockSpec {
            exempt_mark: Some(0x5241),
            ..RaBlockSpec::default()
        },
        final_ra_interfaces: vec![],
    })
    .expect("nftables");
    let (mut on, mut off, mut read) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..300 {
        let t = Instant::now();
        b.set_blocked(true).expect("engage");
        on.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(b.dropped().expect("counter"));
        read.push(t.elapsed());
        let t = Instant::now();
        b.set_blocked(false).expect("release");
        off.push(t.elapsed());
    }
    println!(
        "engage batch (table+chain+2 rules, acked): {}",
        percentiles(on)
    );
    println!("read counter back (rule dump): {}", percentiles(read));
    println!("release batch (delete table, acked): {}", percentiles(off));
    drop(b);

    // carrier change -> block in the kernel, debounce 0
    sh(&[
        "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "isp0",
    ]);
    sh(&["ip", "link", "set", "wan0", "up"]);
    sh(&["ip", "link", "set", "isp0", "up"]);
    let policy = WanPolicy {
        down_after: Duration::ZERO,
        up_after: Duration::ZERO,
        damping: None,
        probe_fail_rounds: 1,
    };
    let w = RtnlWatcher::open(RtnlOptions {
        interface: "wan0".into(),
        reread_every: Duration::from_secs(30),
        check_routes: false,
    })
    .expect("rtnetlink");
    let b = NftRaBlocker::open(RaBlockOptions {
        spec: RaBlockSpec::default(),
        final_ra_interfaces: vec![],
    })
    .expect("nftables");
    let ctl = WanController::new(policy, RaMode::Auto, Instant::now());
    let mut r = WanRunner::new(w, b, ctl, Arc::new(SystemClock));
    while !matches!(r.controller.state(), pirouterd::wan::WanState::Up) {
        r.step(Duration::from_millis(100));
    }
    let mut lat = Vec::new();
    for i in 0..100 {
        let down = i % 2 == 0;
        // timed from when `ip link` has returned: the kernel has emitted the event by then
        sh(&[
            "ip",
            "link",
            "set",
            "isp0",
            if down { "down" } else { "up" },
        ]);
        let t = Instant::now();
        while r.blocker.is_blocked() != down {
            r.step(Duration::from_millis(100));
        }
        lat.push(t.elapsed());
    }
    println!(
        "carrier change (after `ip link` returned) -> block engaged/released in the kernel: {}",
        percentiles(lat)
    );
}
