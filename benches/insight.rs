//! Firewall insight at 10,000 rules with one hour of history.
//!
//! Runs the daemon's core in this process (the `App`, pirouterd's HTTP server on
//! 127.0.0.1, the insight area), feeds it 720 samples (one hour at the 5 s default
//! interval) of a 10,000-rule ruleset shaped like `shared/bench/gen_ruleset.py`'s, then
//! measures: time per sample, resident memory, `/metrics` rendering against
//! `nft -j list ruleset` on the same size of ruleset (loaded into a throwaway namespace),
//! the rules API, and `/metrics` under 50 concurrent `wrk` clients.
//!
//! Run: `cargo bench --bench insight` (as root for the nft comparison; needs `wrk`,
//! `python3`, `nft`). `RULES=N` changes the size, `WRK_SECS` the wrk duration.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pirouterd::app::App;
use pirouterd::config::{Config, ListenAddr};
use pirouterd::firewall::identity::{Counter, RuleSample, RulesetSample, TableRef};
use pirouterd::firewall::insight::{RulesQuery, Sort};
use pirouterd::firewall::insight_area;
use pirouterd::firewall::metrics::{NamedCounterSample, SetSample};
use pirouterd::http::server;
use pirouterd::sys::clock::SystemClock;

/// Counts live heap bytes, to tell what the data needs from what the allocator keeps.
struct Counting;
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.realloc(p, l, n)
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_kib() -> usize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed) / 1024
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn v4(i: usize) -> String {
    let n = 0x0a00_0000u32 + i as u32;
    format!(
        "{}.{}.{}.{}",
        n >> 24,
        (n >> 16) & 255,
        (n >> 8) & 255,
        n & 255
    )
}

/// Rules like gen_ruleset.py's: 100 chains, comments on about half, nfprom labels on some.
fn ruleset(n: usize) -> RulesetSample {
    let chains = (n / 100).clamp(5, 500);
    // One shared name per chain, as the ruleset snapshot shares them.
    let chain_names: Vec<Arc<str>> = (0..chains).map(|c| Arc::from(format!("c{c:04}"))).collect();
    let (inet, bench): (Arc<str>, Arc<str>) = ("inet".into(), "bench".into());
    let rules = (0..n)
        .map(|i| {
            let port = 1024 + (i % 60_000);
            let (text, comment) = match i % 20 {
                0..=11 => (
                    format!("ip saddr {} tcp dport {port} counter accept", v4(i)),
                    (i % 2 == 0).then(|| format!("allow host {i}")),
                ),
                12 | 13 => (
                    format!("ip daddr {} udp dport {port} counter accept", v4(i)),
                    None,
                ),
                14 | 15 => (
                    format!("ip saddr @mgmt_v4 tcp dport {port} counter accept"),
                    Some(format!("nft(service=svc{};dir=in;zone=mgmt)", i % 50)),
                ),
                16 => (
                    format!("ip daddr {} tcp dport @web_ports counter accept", v4(i)),
                    None,
                ),
                17 => (
                    format!("ip saddr @blocklist_v4 tcp dport {port} counter drop"),
                    None,
                ),
                18 => (
                    format!("ip6 saddr 2001:db8::{i:x} tcp dport {port} counter accept"),
                    Some(format!("v6 rule {i}")),
                ),
                _ => (
                    format!(
                        "ip saddr {}/24 tcp dport {{ 80, 443 }} counter name \"cnt_{}\" accept",
                        v4(i * 256),
                        i % 100
                    ),
                    None,
                ),
            };
            RuleSample {
                family: inet.clone(),
                table: bench.clone(),
                chain: chain_names[i % chains].clone(),
                table_handle: 1,
                handle: 10 + i as u64,
                comment,
                text,
                counter: Some(Counter::default()),
            }
        })
        .collect();
    RulesetSample {
        tables: vec![TableRef {
            family: "inet".into(),
            name: "bench".into(),
        }],
        rules,
    }
}

fn rss_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time of this thread, in ms: what an operation costs, whatever else the machine runs.
fn cpu_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 * 1e3 + t.tv_nsec() as f64 / 1e6)
        .unwrap_or(0.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn get(addr: &str, path: &str) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let status = std::str::from_utf8(&out[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out.len())
}

/// Median CPU time (user + system, ms) of 5 runs of `nft -j list ruleset` on gen_ruleset.py's ruleset of `n` rules, in
/// a throwaway namespace.
fn nft_json_ms(n: usize) -> Option<f64> {
    let gen = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/bench/gen_ruleset.py"
    );
    let gen = if std::path::Path::new(gen).exists() {
        gen.to_string()
    } else {
        "/work/shared/bench/gen_ruleset.py".into()
    };
    let out = Command::new("python3")
        .args([&gen, "--rules", &n.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let ns = format!("pr-bench-insight-{}", std::process::id());
    Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .ok()?;
    let mut load = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    load.stdin.take()?.write_all(&out.stdout).ok()?;
    let ok = load.wait().ok()?.success();
    let mut times = Vec::new();
    if ok {
        for _ in 0..5 {
            // user + system CPU of nft (the kernel's dump work is its system time).
            let o = Command::new("/usr/bin/time")
                .args([
                    "-f", "%U %S", "ip", "netns", "exec", &ns, "nft", "-j", "list", "ruleset",
                ])
                .stdout(Stdio::null())
                .output()
                .ok()?;
            let err = String::from_utf8_lossy(&o.stderr);
            let cpu: f64 = err
                .lines()
                .last()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|v| v.parse::<f64>().ok())
                .sum();
            if o.status.success() && cpu > 0.0 {
                times.push(cpu * 1e3);
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    (!times.is_empty()).then(|| median(times))
}

fn main() {
    let n: usize = std::env::var("RULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let wrk_secs: u64 = std::env::var("WRK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("pr-bench-insight-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cfg = Config::default();
    cfg.state.dir = dir.clone();
    cfg.http.listen = vec![ListenAddr::Tcp("127.0.0.1:0".parse().expect("addr"))];
    let rss0 = rss_kib("VmRSS:");
    let app = Arc::new(App::new(cfg.clone(), Arc::new(SystemClock), None, false));
    let bound = server::bind(&cfg.http.listen, cfg.http.client_timeout).expect("bind");
    let http = server::start(app.clone(), bound).expect("serve");
    let addr = http.addresses[0].clone();

    let mut sample = ruleset(n);
    let counters: Vec<NamedCounterSample> = (0..100)
        .map(|j| NamedCounterSample {
            family: "inet".into(),
            table: "bench".into(),
            name: format!("cnt_{j}"),
            packets: 0,
            bytes: 0,
        })
        .collect();
    let sets = vec![SetSample {
        family: "inet".into(),
        table: "bench".into(),
        name: "blocklist_v4".into(),
        elements: 1000,
    }];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0: u64 = 1_790_000_000_000;
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(720);
    let mut feed_ms = Vec::with_capacity(samples);
    let mut feed_cpu = Vec::with_capacity(samples);
    for s in 0..samples {
        // A third of the rules see traffic in each interval, a tenth never do.
        for (i, r) in sample.rules.iter_mut().enumerate() {
            if i % 10 != 0 && rng.next() % 3 == 0 {
                if let Some(c) = r.counter.as_mut() {
                    let p = rng.next() % 50;
                    c.packets += p;
                    c.bytes += p * 700;
                }
            }
        }
        let input = sample.clone();
        let t = Instant::now();
        let c = cpu_ms();
        insight_area::feed(
            &app,
            input,
            counters.clone(),
            sets.clone(),
            t0 + s as u64 * 5_000,
        );
        feed_cpu.push(cpu_ms() - c);
        feed_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let now = t0 + samples as u64 * 5_000;
    let rss_fed = rss_kib("VmRSS:");
    // The bench's own copy of the ruleset is not the daemon's: measure it to subtract.
    let sample_kib = {
        let b = live_kib();
        let c = sample.clone();
        let d = live_kib().saturating_sub(b);
        drop(c);
        d
    };
    let live_fed = live_kib();

    // Rendering the nft families (what a sample costs once) and a whole /metrics request.
    let render_ms = median(
        (0..20)
            .map(|_| {
                let t = Instant::now();
                let mut w = pirouterd::http::metrics::MetricsWriter::new();
                insight_area::metrics(&app, &mut w);
                let s = w.finish();
                std::hint::black_box(s.len());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    let mut rerender = Vec::new();
    let mut text_len = 0;
    for _ in 0..10 {
        let t = cpu_ms();
        let mut text = String::new();
        // What each scrape does (label blocks cached).
        app.insight.render_now(&mut text);
        text_len = text.len();
        rerender.push(cpu_ms() - t);
    }
    let render_sample_ms = median(rerender);
    let scrape_ms = median(
        (0..10)
            .map(|_| {
                let t = Instant::now();
                let (s, _) = get(&addr, "/metrics");
                assert_eq!(s, 200);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    let q = |sort| {
        let t = cpu_ms();
        let v = app_rules(&app, sort, now);
        (cpu_ms() - t, v)
    };
    let (hot_ms, hot_n) = q(Sort::Hot);
    let (dead_ms, dead_n) = q(Sort::Dead);
    let api_ms = {
        let t = Instant::now();
        let (s, len) = get(&addr, "/api/v1/firewall/rules?sort=hot&limit=50");
        assert_eq!(s, 200);
        let _ = len;
        t.elapsed().as_secs_f64() * 1e3
    };
    let nft_ms = nft_json_ms(n);

    // 50 concurrent clients on /metrics.
    let wrk = Command::new("wrk")
        .args([
            "-t2",
            "-c50",
            &format!("-d{wrk_secs}s"),
            "--latency",
            &format!("http://{addr}/metrics"),
        ])
        .output();
    let wrk10 = Command::new("wrk")
        .args([
            "-t2",
            "-c50",
            &format!("-d{wrk_secs}s"),
            "--timeout",
            "10s",
            &format!("http://{addr}/metrics"),
        ])
        .output();
    let rss_after_wrk = rss_kib("VmRSS:");
    let hwm = rss_kib("VmHWM:");

    let (h, w) = app.insight.history_len();
    println!("## insight bench: {n} rules, {samples} samples (1 h at 5 s)");
    println!("rules with history: {h}, with fine history: {w}");
    println!("feed (identity + history + events + metrics render) per sample: CPU median {:.2} ms; wall median {:.2} ms, max {:.2} ms", median(feed_cpu.clone()), median(feed_ms.clone()), feed_ms.iter().cloned().fold(0.0, f64::max));
    println!("RSS: start {rss0} KiB, after 1 h of samples {rss_fed} KiB, after wrk {rss_after_wrk} KiB, peak {hwm} KiB");
    println!("live heap after 1 h: {live_fed} KiB, of which the bench's own ruleset copy {sample_kib} KiB");
    println!("nft metric families: {text_len} bytes; rendered per scrape in {render_sample_ms:.2} ms CPU ({render_ms:.2} ms wall through the area's metrics hook); whole GET /metrics {scrape_ms:.2} ms wall");
    match nft_ms {
        Some(ms) => println!(
            "nft -j list ruleset ({n} rules): {ms:.1} ms CPU; render/nft = 1/{:.0}",
            ms / render_sample_ms
        ),
        None => println!("nft -j list ruleset: not measured (needs root, ip, nft, python3)"),
    }
    println!("rules sort=hot: {hot_ms:.2} ms CPU ({hot_n} rules); sort=dead: {dead_ms:.2} ms CPU ({dead_n}); GET rules?sort=hot&limit=50: {api_ms:.2} ms");
    match wrk {
        Ok(o) => println!(
            "wrk -t2 -c50 -d{wrk_secs}s /metrics:\n{}",
            String::from_utf8_lossy(&o.stdout)
        ),
        Err(e) => println!("wrk not run: {e}"),
    }
    if let Ok(o) = wrk10 {
        println!(
            "wrk -t2 -c50 -d{wrk_secs}s --timeout 10s (Prometheus's default scrape timeout):\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    app.stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    http.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let secs: u64 = std::env::var("DAEMON_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    if let Err(e) = real_daemon(n, secs, wrk_secs) {
        println!("real daemon not measured: {e}");
    }
}

fn app_rules(app: &App, sort: Sort, now: u64) -> usize {
    app.insight
        .rules(
            &RulesQuery {
                sort,
                limit: None,
                ..RulesQuery::default()
            },
            now,
        )
        .len()
}

/// The real binary in a namespace holding gen_ruleset.py's ruleset of `n` rules (every rule
/// with a counter, nftables read every second): its resident memory after `secs`, and
/// `/metrics` under 50 `wrk` clients inside the namespace.
fn real_daemon(n: usize, secs: u64, wrk_secs: u64) -> Result<(), String> {
    let local = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/bench/gen_ruleset.py"
    );
    let gen = if std::path::Path::new(local).exists() {
        local
    } else {
        "/work/shared/bench/gen_ruleset.py"
    };
    let out = Command::new("python3")
        .args([gen, "--rules", &n.to_string(), "--set-elements", "1000"])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let ns = format!("pr-bench-insightd-{}", std::process::id());
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .map_err(|e| e.to_string())?;
    if !ok.success() {
        return Err("ip netns add failed (root needed)".into());
    }
    let result = (|| -> Result<(), String> {
        let _ = Command::new("ip")
            .args(["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])
            .status();
        let mut load = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        load.stdin
            .take()
            .ok_or("stdin")?
            .write_all(&out.stdout)
            .map_err(|e| e.to_string())?;
        if !load.wait().map_err(|e| e.to_string())?.success() {
            return Err("nft -f refused the generated ruleset".into());
        }
        let cfg = dir.join("p.toml");
        std::fs::write(
            &cfg,
            format!(
                "[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n[firewall]\ninterval = \"1s\"\n",
                dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                env!("CARGO_BIN_EXE_pirouterd"),
                "serve",
                "--config",
            ])
            .arg(&cfg)
            .args(["--listen", "127.0.0.1:19881"])
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_secs(secs));
        // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
        let pid = child.id();
        let status = |f: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with(f))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let rss = status("VmRSS:");
        let hwm = status("VmHWM:");
        let wrk = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "wrk",
                "-t2",
                "-c50",
                &format!("-d{wrk_secs}s"),
                "--latency",
                "http://127.0.0.1:19881/metrics",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        let rss_after = status("VmRSS:");
        println!(
            "## real daemon: {n} rules (gen_ruleset.py), nftables read every 1 s, after {secs} s"
        );
        println!("daemon RSS {rss} KiB (peak so far {hwm} KiB); after wrk {rss_after} KiB");
        println!(
            "wrk -t2 -c50 -d{wrk_secs}s /metrics (inside the namespace):\n{}",
            String::from_utf8_lossy(&wrk.stdout)
        );
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    })();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
