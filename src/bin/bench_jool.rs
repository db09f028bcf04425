//! NAT64 benchmark: parse + aggregate a `jool session display --numeric --csv` table, measure
//! the snapshot's heap size, and time a sessions page served from it.
//!
//! ```text
//! python3 tests/fixtures/jool/gen_sessions.py 100000 > /tmp/sessions-100k.csv
//! cargo run --release --bin bench_jool -- /tmp/sessions-100k.csv
//! ```
//! Targets (issue #5): >= 200 MB/s of CSV for parse + aggregate; < 16 MiB for a snapshot
//! holding all 100,000 sessions; `/api/v1/nat64/sessions?limit=100` served from the snapshot.

use pirouterd::app::App;
use pirouterd::config::Config;
use pirouterd::http::route::route;
use pirouterd::http::{ApiRequest, Method};
use pirouterd::nat64::aggregate::summarize;
use pirouterd::nat64::session::SessionTable;
use pirouterd::nat64::snapshot::{InstanceSnapshot, Nat64Snapshot, SessionFilter};
use pirouterd::nat64::stats::parse_stats;
use pirouterd::nat64::tables::parse_pool4;
use pirouterd::nat64::{InstanceStatus, Proto};
use pirouterd::sys::clock::SystemClock;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts live heap bytes, so the snapshot's size is measured, not estimated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's own arguments and
// only adds bookkeeping on an atomic; the GlobalAlloc contract is upheld by `System`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout the caller gave us.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn fixture(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/jool/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| fail(&format!("{p}: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_jool: {msg}");
    std::process::exit(1)
}

/// What the source builds each round: the table, its summary, counters, pool4.
fn build(csv: &[u8], stats: &[u8], pool4: &[u8]) -> Nat64Snapshot {
    let mut table = SessionTable::default();
    if let Err(e) = table.parse_append(csv) {
        fail(&format!("parse: {e}"));
    }
    let pool4 = parse_pool4(pool4).ok();
    let mut inst = InstanceSnapshot::new("default");
    inst.status = InstanceStatus::Running;
    inst.summary = summarize(&table, pool4.as_deref(), 10);
    inst.sessions = table;
    inst.stats = parse_stats(stats).unwrap_or_default();
    inst.pool4 = pool4;
    inst.sessions_read = true;
    inst.stats_read = true;
    let mut snap = Nat64Snapshot::new(0);
    snap.instances.push(inst);
    snap
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| fail("usage: bench_jool SESSIONS.csv (from gen_sessions.py N)"));
    let csv = std::fs::read(&path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let stats = fixture("stats-all.csv");
    let pool4 = fixture("pool4-display.csv");
    let mb = csv.len() as f64 / 1e6;

    // Parse + aggregate, repeated; best and median.
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut rows = 0;
    for _ in 0..15 {
        let t = Instant::now();
        let c = cpu_now();
        let snap = build(&csv, &stats, &pool4);
        times.push(t.elapsed());
        cpu_times.push(cpu_now().saturating_sub(c));
        rows = snap.instances[0].sessions.sessions.len();
        std::hint::black_box(&snap);
    }
    times.sort();
    cpu_times.sort();
    let mut parse_only = Vec::new();
    let mut agg_only = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let mut table = SessionTable::default();
        if let Err(e) = table.parse_append(&csv) {
            fail(&format!("parse: {e}"));
        }
        parse_only.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(summarize(&table, None, 10));
        agg_only.push(t.elapsed());
    }
    parse_only.sort();
    agg_only.sort();
    println!(
        "  of which parse best {:.1} ms, aggregate best {:.1} ms",
        ms(parse_only[0]),
        ms(agg_only[0])
    );
    let best = times[0];
    let median = times[times.len() / 2];
    let cpu_median = cpu_times[cpu_times.len() / 2];
    println!("input: {path}, {rows} sessions, {mb:.2} MB of CSV");
    println!(
        "parse+aggregate: wall best {:.1} ms ({:.0} MB/s), wall median {:.1} ms ({:.0} MB/s), thread CPU median {:.1} ms ({:.0} MB/s)",
        ms(best),
        mb / best.as_secs_f64(),
        ms(median),
        mb / median.as_secs_f64(),
        ms(cpu_median),
        mb / cpu_median.as_secs_f64()
    );

    // Snapshot size: live heap bytes it holds once built.
    let before = LIVE.load(Ordering::Relaxed);
    let snap = build(&csv, &stats, &pool4);
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "snapshot heap: {} bytes ({:.2} MiB) for {} sessions, {:.1} bytes/session",
        held,
        held as f64 / (1 << 20) as f64,
        rows,
        held as f64 / rows.max(1) as f64
    );

    // Pages served from the snapshot, as the API does (no jool run).
    for (label, filter) in [
        ("limit=100", SessionFilter::default()),
        (
            "limit=100&offset=90000",
            SessionFilter {
                offset: 90_000,
                ..SessionFilter::default()
            },
        ),
        (
            "proto=udp (no match: full scan)",
            SessionFilter {
                proto: Some(Proto::Udp),
                ..SessionFilter::default()
            },
        ),
        (
            "client=2001:db8:100::/64",
            SessionFilter {
                client: SessionFilter::parse_client("2001:db8:100::/64"),
                ..SessionFilter::default()
            },
        ),
    ] {
        let n = 200;
        let t = Instant::now();
        let mut total = 0;
        for _ in 0..n {
            let page = snap.sessions(std::hint::black_box(&filter));
            total += page.sessions.len();
        }
        let per = t.elapsed() / n;
        println!(
            "sessions page {label}: {:.3} ms per request ({} rows returned)",
            ms(per),
            total / n as usize
        );
    }
    api(snap);
}

/// Whole requests through the router, as the server would answer them, from the published
/// snapshot.
fn api(snap: Nat64Snapshot) {
    let app = App::new(Config::default(), Arc::new(SystemClock), None, false);
    app.nat64.set(Some(snap));
    for target in [
        "/api/v1/nat64/sessions?limit=100",
        "/api/v1/nat64/sessions?limit=100&proto=tcp&client=2001:db8:100::/64",
        "/api/v1/nat64",
        "/metrics",
    ] {
        let n = 200;
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            let r = route(&app, &ApiRequest::new(Method::Get, target));
            if r.status != 200 {
                fail(&format!("{target}: status {}", r.status));
            }
            bytes = r.body.len();
        }
        println!(
            "GET {target}: {:.3} ms per request, {bytes} bytes",
            ms(t.elapsed() / n)
        );
    }
}

/// CPU time this thread has used: unlike wall time, not inflated while other processes on the
/// shared machine hold the cores.
fn cpu_now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
