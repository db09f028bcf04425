//! Drops benchmarks (`cargo run --release --bin bench_drops`).
//!
//! 1. `analyze` throughput on a generated kern.log (90 % `nft-dropped` lines, IPv4 and IPv6,
//!    random scanners; 10 % other kernel messages), next to `grep -c nft-dropped` on the
//!    same file in the same run (page cache warm for both).
//! 2. The live aggregator under a flood from 1,000,000 distinct sources at 100,000 events
//!    per simulated second: real events/s on one core, and RSS at each simulated minute.
//!
//! Options: `--mb N` (log size, default 256), `--rounds N` (analyze rounds, default 7; each
//! reader once per round, alternating, reported as median and range), `--minutes N` (flood
//! length, default 10),
//! `--keep FILE` (write the log there and keep it), `--input FILE` (analyse this file instead
//! of generating one).

use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use pirouterd::drops::aggregate::{Aggregator, Window};
use pirouterd::drops::analyze::Analysis;
use pirouterd::drops::{DropEvent, IfName, Proto, TcpFlags};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PORTS: [u16; 12] = [
    22, 23, 80, 443, 445, 3389, 5060, 6961, 8080, 69, 1433, 55553,
];

fn write_log(path: &std::path::Path, bytes: u64) -> std::io::Result<u64> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut written = 0u64;
    let mut lines = 0u64;
    let mut sec = 0u64;
    let months = ["Jan", "Feb", "Mar"];
    while written < bytes {
        lines += 1;
        if lines % 50 == 0 {
            sec += 1;
        }
        let (d, h, m, s) = (
            sec / 86_400 % 28 + 1,
            sec / 3600 % 24,
            sec / 60 % 60,
            sec % 60,
        );
        let month = months[(sec / (28 * 86_400)) as usize % 3];
        let host = if rng.below(2) == 0 { "home1" } else { "home2" };
        let stamp = format!("{month} {d:>2} {h:02}:{m:02}:{s:02} {host} kernel: ");
        let r = rng.below(100);
        let port = PORTS[rng.below(PORTS.len() as u64) as usize];
        let line = if r < 10 {
            format!("{stamp}[UFW AUDIT] usb 1-1.{}: new high-speed USB device number {} using xhci_hcd\n", r, lines % 128)
        } else if r < 75 {
            let a = rng.next();
            format!(
                "{stamp}nft-dropped: IN=astound OUT= MAC=66:69:69:69:69:69:6c:9c:ed:92:00:26:08:00 SRC={}.{}.{}.{} DST=207.229.169.25 LEN=40 TOS=0x00 PREC=0x00 TTL={} ID={} PROTO=TCP SPT={} DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0 \n",
                a as u8, (a >> 8) as u8, (a >> 16) as u8, (a >> 24) as u8,
                (a >> 32) as u8, (a >> 40) as u16, (a >> 48) as u16 | 1024
            )
        } else if r < 90 {
            let a = rng.next();
            format!(
                "{stamp}verbose-nft-dropped: IN=att OUT=vlan69 MACSRC=0c:a4:02:c9:06:d5 MACDST=bc:9a:8e:88:56:c0 MACPROTO=86dd SRC=2a06:4880:6000:0000:0000:0000:{:04x}:{:04x} DST=2600:1700:3040:13e1:0000:0000:0000:0069 LEN=64 TC=0 HOPLIMIT=241 FLOWLBL=270679 PROTO=TCP SPT={} DPT={port} SEQ=3101165342 ACK=0 WINDOW=14600 RES=0x00 SYN URGP=0 OPT (020405A0) \n",
                a as u16, (a >> 16) as u16, (a >> 32) as u16
            )
        } else {
            let a = rng.next();
            format!(
                "{stamp}nft-dropped: IN=astound OUT= MAC=66:69:69:69:69:69:6c:9c:ed:92:00:26:08:00 SRC=45.{}.{}.{} DST=207.229.169.25 LEN=56 TOS=0x00 PREC=0x00 TTL=51 ID=0 DF PROTO=UDP SPT={} DPT={port} LEN=36 \n",
                a as u8, (a >> 8) as u8, (a >> 16) as u8, (a >> 32) as u16
            )
        };
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    w.flush()?;
    Ok(lines)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// CPU seconds of this thread, this process, or its waited-for children.
fn cpu_thread() -> f64 {
    ts(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_process() -> f64 {
    ts(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

fn ts(clock: nix::time::ClockId) -> f64 {
    nix::time::clock_gettime(clock)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// cutime + cstime from /proc/self/stat (clock ticks of 1/100 s on Linux).
fn cpu_children() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            Some((f.get(13)? + f.get(14)?) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// (wall, cpu) seconds of every round, summarised as median and range: the machine is
/// shared, so a best-of alone hides how much the load moved the numbers.
#[derive(Clone, Default)]
struct Runs(Vec<(f64, f64)>);

impl Runs {
    fn add(&mut self, wall: f64, cpu: f64) {
        self.0.push((wall, cpu));
    }
    fn sorted(&self, f: impl Fn(&(f64, f64)) -> f64) -> Vec<f64> {
        let mut v: Vec<f64> = self.0.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    }
    fn median(v: &[f64]) -> f64 {
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    /// (median, min, max) of wall, then of CPU.
    fn wall(&self) -> (f64, f64, f64) {
        let v = self.sorted(|r| r.0);
        (Self::median(&v), v[0], v[v.len() - 1])
    }
    fn cpu(&self) -> (f64, f64, f64) {
        let v = self.sorted(|r| r.1);
        (Self::median(&v), v[0], v[v.len() - 1])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Per-round ratios `a / b` (same round, so both saw the same load): median, min, max.
fn ratio(a: &Runs, b: &Runs, f: impl Fn(&(f64, f64)) -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = a.0.iter().zip(&b.0).map(|(x, y)| f(x) / f(y)).collect();
    v.sort_by(f64::total_cmp);
    (Runs::median(&v), v[0], v[v.len() - 1])
}

fn bench_analyze(
    mb: u64,
    rounds: usize,
    keep: Option<String>,
    input: Option<String>,
) -> std::io::Result<()> {
    let path = match (&input, &keep) {
        (Some(p), _) | (None, Some(p)) => std::path::PathBuf::from(p),
        (None, None) => {
            std::env::temp_dir().join(format!("bench_drops_{}.log", std::process::id()))
        }
    };
    let lines = if input.is_some() {
        std::fs::read(&path)?
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
    } else {
        write_log(&path, mb << 20)?
    };
    let size = std::fs::metadata(&path)?.len();
    // Warm the page cache so both readers see the same conditions.
    let _ = std::fs::read(&path)?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    // The real command, when built next to this bench (target/release/pirouterd).
    let bin = std::env::current_exe()?.with_file_name("pirouterd");
    let (mut grep, mut one, mut par, mut binary) = (
        Runs::default(),
        Runs::default(),
        Runs::default(),
        Runs::default(),
    );
    let (mut split, mut parse) = (Runs::default(), Runs::default());
    let data = std::fs::read(&path)?;
    let mut grep_count = String::new();
    let mut packets = 0;
    for _ in 0..rounds.max(1) {
        // grep runs 5 times per round: its CPU time is read in 10 ms ticks.
        let (c0, t) = (cpu_children(), Instant::now());
        for _ in 0..5 {
            let out = std::process::Command::new("grep")
                .args(["-c", "nft-dropped"])
                .arg(&path)
                .output()?;
            grep_count = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        grep.add(t.elapsed().as_secs_f64() / 5.0, (cpu_children() - c0) / 5.0);

        // Where the time goes: splitting lines alone, then parsing them too.
        let (c0, t) = (cpu_thread(), Instant::now());
        let n = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        split.add(t.elapsed().as_secs_f64(), cpu_thread() - c0);
        let (c0, t) = (cpu_thread(), Instant::now());
        let mut ok = 0usize;
        for l in data.split(|b| *b == b'\n') {
            if let Ok(text) = std::str::from_utf8(l) {
                ok += usize::from(pirouterd::drops::logline::parse(text).is_ok());
            }
        }
        parse.add(t.elapsed().as_secs_f64(), cpu_thread() - c0);
        assert!(ok > 0 && n > 0);

        let (c0, t) = (cpu_thread(), Instant::now());
        let mut a = Analysis::new(Some("nft-dropped".into()));
        a.feed_reader("bench", std::fs::File::open(&path)?)?;
        let report = a.report(10);
        one.add(t.elapsed().as_secs_f64(), cpu_thread() - c0);
        packets = report.packets;
        assert_eq!(report.unparseable, 0, "generated lines all parse");

        let (c0, t) = (cpu_process(), Instant::now());
        let mut a = Analysis::new(Some("nft-dropped".into()));
        a.feed_file(&path.to_string_lossy(), threads)?;
        let report = a.report(10);
        par.add(t.elapsed().as_secs_f64(), cpu_process() - c0);
        assert_eq!(report.packets, packets);

        if bin.exists() {
            let (c0, t) = (cpu_children(), Instant::now());
            let out = std::process::Command::new(&bin)
                .args(["analyze", "--prefix", "nft-dropped"])
                .arg(&path)
                .output()?;
            binary.add(t.elapsed().as_secs_f64(), cpu_children() - c0);
            assert!(out.status.success());
        }
    }
    println!(
        "## analyze ({} MB, {lines} lines, {} rounds: median [min..max])",
        size / 1_000_000,
        rounds.max(1)
    );
    println!("| reader | wall | MB/s (median wall) | CPU | MB/s per CPU second (median) |");
    println!("| --- | --- | --- | --- | --- |");
    let row = |name: &str, r: &Runs| {
        let (w, c) = (r.wall(), r.cpu());
        println!(
            "| {name} | {:.3} s [{:.3}..{:.3}] | {:.0} | {:.3} s [{:.3}..{:.3}] | {:.0} |",
            w.0,
            w.1,
            w.2,
            mbps(size, w.0),
            c.0,
            c.1,
            c.2,
            mbps(size, c.0)
        );
    };
    row(
        &format!("`grep -c nft-dropped` ({grep_count} lines)"),
        &grep,
    );
    row("(split into lines only, in memory)", &split);
    row("(split + `logline::parse` every line, in memory)", &parse);
    row(
        &format!("`Analysis::feed_reader`, one thread ({packets} packets, full report)"),
        &one,
    );
    row(&format!("`Analysis::feed_file`, {threads} threads"), &par);
    if !binary.is_empty() {
        row(
            &format!("`pirouterd analyze --prefix nft-dropped FILE` (binary, {threads} threads)"),
            &binary,
        );
    }
    println!("\nslower than grep, per round (median [min..max]):");
    let show = |name: &str, r: &Runs| {
        if r.is_empty() {
            return;
        }
        let (w, c) = (ratio(r, &grep, |x| x.0), ratio(r, &grep, |x| x.1));
        println!(
            "- {name}: wall {:.1}x [{:.1}..{:.1}], CPU {:.1}x [{:.1}..{:.1}]",
            w.0, w.1, w.2, c.0, c.1, c.2
        );
    };
    show("one thread", &one);
    show(&format!("{threads} threads"), &par);
    show("binary", &binary);
    println!("bench RSS {} KiB", rss_kib());
    if keep.is_none() && input.is_none() {
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

fn bench_aggregator(minutes: u64) {
    const RATE: u64 = 100_000; // events per simulated second
    const SOURCES: u64 = 1_000_000;
    let mut agg = Aggregator::default();
    let t0_ms = 1_767_225_600_000u64;
    let mut rng = Rng(42);
    let start_rss = rss_kib();
    println!("\n## aggregator flood ({SOURCES} distinct sources, {RATE} events per simulated second, {minutes} simulated minutes)");
    println!(
        "| simulated minute | events | wall time for the minute | events/s (one core) | RSS KiB |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let mut i = 0u64;
    let mut total_wall = 0.0;
    let mut rss_after_first = 0;
    let mut rss_max = 0;
    for minute in 1..=minutes {
        let t = Instant::now();
        for _ in 0..60 * RATE {
            let now = t0_ms + i * 1000 / RATE;
            // Each source once per cycle (a full scan of 1M addresses), a few heavy ones.
            let r = rng.next();
            let src = if r % 100 < 5 {
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, (r >> 8) as u8 % 4))
            } else {
                let n = (i.wrapping_mul(0x9E37_79B9) % SOURCES) as u32;
                if n % 4 == 0 {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2a06,
                        0x4880,
                        0,
                        0,
                        0,
                        0,
                        (n >> 16) as u16,
                        n as u16,
                    ))
                } else {
                    IpAddr::V4(Ipv4Addr::from(0x2d00_0000 | n))
                }
            };
            let mut ev = DropEvent::empty(if r % 7 == 0 {
                "verbose-nft-dropped: "
            } else {
                "nft-dropped: "
            });
            ev.in_iface = IfName::new("wan0");
            ev.src = Some(src);
            ev.dst = Some(IpAddr::V4(Ipv4Addr::new(207, 229, 169, 25)));
            ev.proto = Some(if r % 10 == 0 { Proto::Udp } else { Proto::Tcp });
            ev.sport = Some((r >> 16) as u16);
            ev.dport = Some(PORTS[(r >> 32) as usize % PORTS.len()]);
            ev.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
            ev.len = 40;
            agg.record(&ev, now);
            i += 1;
        }
        let wall = t.elapsed().as_secs_f64();
        total_wall += wall;
        let rss = rss_kib();
        if minute == 1 {
            rss_after_first = rss;
        }
        rss_max = rss_max.max(rss);
        println!(
            "| {minute} | {} | {:.2} s | {:.0} | {rss} |",
            60 * RATE,
            wall,
            (60 * RATE) as f64 / wall
        );
    }
    let now = t0_ms + i * 1000 / RATE;
    let t = Instant::now();
    let w = agg.window(Window::Day, now, 10);
    let q = t.elapsed();
    println!(
        "overall {:.0} events/s; RSS before {start_rss} KiB, after minute 1 {rss_after_first} KiB, max {rss_max} KiB (growth after minute 1: {} KiB)",
        i as f64 / total_wall,
        rss_max - rss_after_first
    );
    println!(
        "24h window query: {:?}; top source {} with {} (true count in {}..={}), {} events in window",
        q,
        w.sources[0].key.addr,
        w.sources[0].count,
        w.sources[0].count - w.sources[0].error,
        w.sources[0].count,
        w.events
    );
}

fn main() {
    let mut mb = 256;
    let mut minutes = 10;
    let mut keep = None;
    let mut rounds = 7;
    let mut input = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mb" => mb = args.next().and_then(|v| v.parse().ok()).unwrap_or(mb),
            "--minutes" => minutes = args.next().and_then(|v| v.parse().ok()).unwrap_or(minutes),
            "--keep" => keep = args.next(),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--input" => input = args.next(),
            "--bench" => {} // passed by `cargo bench`
            other => {
                eprintln!("bench_drops: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    if mb > 0 {
        if let Err(e) = bench_analyze(mb, rounds, keep, input) {
            eprintln!("bench_drops: {e}");
            std::process::exit(1);
        }
    }
    if minutes > 0 {
        bench_aggregator(minutes);
    }
}
