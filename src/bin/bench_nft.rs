//! Benchmark of the nftables snapshot against `nft -j list ruleset` and a raw per-chain
//! GETRULE dump that only counts bytes (the lower bound), in throwaway namespaces.
//!
//! ```text
//! cargo build --release --bin bench_nft
//! sudo target/release/bench_nft run [--sizes 100,1000,10000,50000] [--big-set 100000]
//!      [--reps 5] [--gen ../shared/bench/gen_ruleset.py]
//! target/release/bench_nft once        # one snapshot of the current namespace, summary
//! ```
//! `run` needs root, `ip`, `nft`, `python3` and `/usr/bin/time`; it creates and deletes
//! namespaces named `prbench-<pid>-<n>` and touches nothing else.

use pirouterd::logging::error_chain;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use pirouterd::firewall::{Family, RulesetSource};
use pirouterd::sys::nft::socket::NftSocket;
use pirouterd::sys::nft::{decode, CountPolicy, NftSource};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("once") => once(),
        Some("child") => child(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => Err(
            "usage: bench_nft once | run [--sizes N,...] [--big-set M] [--reps R] [--gen PATH]"
                .into(),
        ),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_nft: {e}");
            ExitCode::FAILURE
        }
    }
}

fn once() -> Result<(), String> {
    let mut src = NftSource::open(CountPolicy::default()).map_err(|e| error_chain(&e))?;
    let s = src.snapshot(Instant::now()).map_err(|e| error_chain(&e))?;
    println!(
        "generation {} tables {} chains {} rules {} sets {} objects {} bytes {}",
        s.generation,
        s.tables.len(),
        s.chains.len(),
        s.rules.len(),
        s.sets.len(),
        s.objects.len(),
        s.stats.bytes
    );
    Ok(())
}

/// A `VmRSS`/`VmHWM` line of /proc/self/status, KiB.
fn proc_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of this process so far, (user, system) in ms, from /proc/self/stat (clock ticks
/// of 10 ms: summed over many repetitions, not per call).
fn cpu_ms() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) * 10.0;
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (tick(11), tick(12))
}

/// CPU time of this thread so far (user + system), ms, from CLOCK_THREAD_CPUTIME_ID
/// (fine-grained, unlike the 10 ms ticks of /proc/self/stat).
fn cpu_total_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 * 1000.0 + t.tv_nsec() as f64 / 1e6)
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One raw per-chain GETRULE dump that only counts bytes (the lower bound): the chain
/// list, then every chain's rules. Returns (ms, bytes).
fn raw_once(sock: &mut NftSocket) -> Result<(f64, u64), String> {
    let t = Instant::now();
    let b0 = sock.bytes;
    let mut chains: Vec<(u8, Vec<u8>, Vec<u8>)> = Vec::new();
    sock.request("GETCHAIN", 4, true, 0, &[], |m| {
        if let Ok(c) = decode::decode_chain(m.payload) {
            let fam = c.family.map(Family::to_raw).unwrap_or(0);
            chains.push((fam, decode::cstr(&c.table), decode::cstr(&c.name)));
        }
        Ok(())
    })
    .map_err(|e| error_chain(&e))?;
    for (fam, table, chain) in &chains {
        sock.request("GETRULE", 7, true, *fam, &[(1, table), (2, chain)], |_| {
            Ok(())
        })
        .map_err(|e| error_chain(&e))?;
    }
    Ok((ms(t.elapsed()), sock.bytes - b0))
}

/// Runs inside the namespace: `child raw R` or `child snapshot R` (which also times raw
/// dumps between its snapshots).
fn child(args: &[String]) -> Result<(), String> {
    let mode = args.first().map(String::as_str).unwrap_or("");
    let reps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    match mode {
        "raw" => {
            let mut sock = NftSocket::open().map_err(|e| error_chain(&e))?;
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..reps {
                let (t, b) = raw_once(&mut sock)?;
                times.push(t);
                bytes = b;
            }
            println!("ms={:.2} bytes={bytes}", median(times));
        }
        "snapshot" => {
            let mut src = NftSource::open(CountPolicy::default()).map_err(|e| error_chain(&e))?;
            let rss_start = proc_kib("VmRSS:");
            let start = Instant::now();
            let t = Instant::now();
            let first = src.snapshot(start).map_err(|e| error_chain(&e))?;
            let first_ms = ms(t.elapsed());
            let rules = first.rules.len();
            let exact = first.rules.iter().filter(|r| r.text_exact).count();
            let big = first
                .sets
                .iter()
                .find(|s| &*s.name == "blocklist_v4")
                .and_then(|s| s.element_count)
                .unwrap_or(0);
            let rss_held = proc_kib("VmRSS:");
            drop(first);
            let mut sock = NftSocket::open().map_err(|e| error_chain(&e))?;
            let mut raw_times = Vec::new();
            let mut raw_bytes = 0;
            let mut times = Vec::new();
            let mut bytes = 0;
            let mut requests = 0;
            let (mut raw_cpu_total, mut snap_cpu_total) = (Vec::new(), Vec::new());
            let (mut raw_cpu, mut snap_cpu) = ((0.0, 0.0), (0.0, 0.0));
            let add = |acc: &mut (f64, f64), a: (f64, f64), b: (f64, f64)| {
                acc.0 += b.0 - a.0;
                acc.1 += b.1 - a.1;
            };
            for _ in 0..reps {
                // Interleaved with the raw dump, so both see the same load on a shared machine.
                let c0 = cpu_ms();
                let t0 = cpu_total_ms();
                let (t, b) = raw_once(&mut sock)?;
                raw_cpu_total.push(cpu_total_ms() - t0);
                let c1 = cpu_ms();
                add(&mut raw_cpu, c0, c1);
                raw_times.push(t);
                raw_bytes = b;
                // Same `now`: large sets stay on their slow cadence, as between real samples.
                let t = Instant::now();
                let c0 = cpu_ms();
                let t0 = cpu_total_ms();
                let s = src.snapshot(start).map_err(|e| error_chain(&e))?;
                times.push(ms(t.elapsed()));
                snap_cpu_total.push(cpu_total_ms() - t0);
                add(&mut snap_cpu, c0, cpu_ms());
                bytes = s.stats.bytes;
                requests = s.stats.requests;
            }
            let t = Instant::now();
            let n = src
                .count_elements(Family::Inet, "bench", "blocklist_v4")
                .map_err(|e| error_chain(&e))?;
            let count_ms = ms(t.elapsed());
            println!(
                "raw_ms={:.2} raw_bytes={raw_bytes} ms={:.2} first_ms={first_ms:.2} bytes={bytes} rules={rules} exact={exact} big={big} count_ms={count_ms:.2} counted={n} rss_start_kib={rss_start} rss_holding_first_kib={rss_held} hwm_kib={} raw_user_ms={:.2} raw_sys_ms={:.2} user_ms={:.2} sys_ms={:.2} requests={} raw_cpu_ms={:.2} cpu_ms={:.2}",
                median(raw_times),
                median(times),
                proc_kib("VmHWM:"),
                raw_cpu.0 / reps as f64,
                raw_cpu.1 / reps as f64,
                snap_cpu.0 / reps as f64,
                snap_cpu.1 / reps as f64,
                requests,
                median(raw_cpu_total),
                median(snap_cpu_total),
            );
        }
        "requests" => {
            // The fixed cost of each kind of request the snapshot makes besides the rule
            // dumps, in the benchmark ruleset's namespace: µs per request, median of `reps`
            // batches of 200.
            let mut src = NftSource::open(CountPolicy::default()).map_err(|e| error_chain(&e))?;
            let mut sock = NftSocket::open().map_err(|e| error_chain(&e))?;
            let mut line = String::new();
            let kinds: [(&str, u16); 5] = [
                ("getgen", 0),
                ("gettable", 1),
                ("getchain", 4),
                ("getset", 10),
                ("getobj", 19),
            ];
            for (name, ty) in kinds {
                let mut v = Vec::new();
                for _ in 0..reps {
                    let t = Instant::now();
                    for _ in 0..200 {
                        if ty == 0 {
                            src.generation().map_err(|e| error_chain(&e))?;
                        } else {
                            sock.request(name, ty, true, 0, &[], |_| Ok(()))
                                .map_err(|e| error_chain(&e))?;
                        }
                    }
                    v.push(ms(t.elapsed()) * 1000.0 / 200.0);
                }
                line.push_str(&format!("{name}_us={:.1} ", median(v)));
            }
            for set in ["mgmt_v4", "ratelimit_v4"] {
                let mut v = Vec::new();
                for _ in 0..reps {
                    let t = Instant::now();
                    for _ in 0..200 {
                        src.count_elements(Family::Inet, "bench", set)
                            .map_err(|e| error_chain(&e))?;
                    }
                    v.push(ms(t.elapsed()) * 1000.0 / 200.0);
                }
                line.push_str(&format!("count_{set}_us={:.1} ", median(v)));
            }
            println!("{}", line.trim_end());
        }
        "snapshot-only" => {
            // For profilers: snapshots only, no raw dumps in between.
            let mut src = NftSource::open(CountPolicy::default()).map_err(|e| error_chain(&e))?;
            let start = Instant::now();
            let mut times = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                src.snapshot(start).map_err(|e| error_chain(&e))?;
                times.push(ms(t.elapsed()));
            }
            println!("ms={:.2}", median(times));
        }
        _ => return Err(format!("unknown child mode {mode:?}")),
    }
    Ok(())
}

fn field(out: &str, key: &str) -> String {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_default()
}

/// Runs `cmd` under `/usr/bin/time -f %M` in the namespace: (stdout, peak RSS KiB).
fn timed(ns: &str, cmd: &[&str]) -> Result<(String, u64), String> {
    timed_cpu(ns, cmd).map(|(out, rss, _)| (out, rss))
}

/// [`timed`], also returning the command's CPU time (user + system), ms.
fn timed_cpu(ns: &str, cmd: &[&str]) -> Result<(String, u64, f64), String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "/usr/bin/time",
            "-f",
            "cpu=%U+%S\nmaxrss=%M",
        ])
        .args(cmd)
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {err}"));
    }
    let rss = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let cpu = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("cpu="))
        .map(|v| {
            v.split('+')
                .filter_map(|x| x.trim().parse::<f64>().ok())
                .sum::<f64>()
                * 1000.0
        })
        .unwrap_or(f64::NAN);
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), rss, cpu))
}

struct Ns(String);
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut sizes = vec![100usize, 1000, 10_000, 50_000];
    let mut big = 100_000usize;
    let mut reps = 5usize;
    let mut gen = "../shared/bench/gen_ruleset.py".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--sizes" => {
                sizes = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad size {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--big-set" => big = v.parse().map_err(|_| "bad --big-set")?,
            "--reps" => reps = v.parse().map_err(|_| "bad --reps")?,
            "--gen" => gen = v.clone(),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = exe.to_string_lossy().into_owned();
    println!("| rules | 100k set | `nft -j` ms | `nft -j` peak RSS | raw dump ms | raw bytes | snapshot ms | ratio to raw | vs `nft -j` | snapshot peak RSS | first snapshot ms | 100k count ms | raw CPU ms | snapshot CPU ms | CPU ratio to raw | `nft -j` CPU ms | vs `nft -j` CPU |");
    println!(
        "|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (i, n) in sizes.iter().enumerate() {
        for with_set in [false, true] {
            if with_set && big == 0 {
                continue;
            }
            let ns = Ns(format!(
                "prbench-{}-{i}-{}",
                std::process::id(),
                with_set as u8
            ));
            let st = Command::new("ip")
                .args(["netns", "add", &ns.0])
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("ip netns add {} failed", ns.0));
            }
            let file = std::env::temp_dir().join(format!("{}.nft", ns.0));
            let m = if with_set { big } else { 0 };
            let out = Command::new("python3")
                .args([
                    &gen,
                    "--rules",
                    &n.to_string(),
                    "--set-elements",
                    &m.to_string(),
                ])
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("python3 {gen}: {e}"))?;
            if !out.status.success() {
                return Err("gen_ruleset.py failed".into());
            }
            std::fs::write(&file, &out.stdout).map_err(|e| e.to_string())?;
            let file_s = file.to_string_lossy().into_owned();
            let st = Command::new("ip")
                .args(["netns", "exec", &ns.0, "nft", "-f", &file_s])
                .status()
                .map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(&file);
            if !st.success() {
                return Err(format!("nft -f of the {n}-rule ruleset failed"));
            }
            // nft -j
            let mut nft_times = Vec::new();
            let mut nft_cpu = Vec::new();
            let mut nft_rss = 0;
            for _ in 0..reps.min(3) {
                let t = Instant::now();
                let (_, rss, cpu) = timed_cpu(&ns.0, &["nft", "-j", "list", "ruleset"])?;
                nft_times.push(ms(t.elapsed()));
                nft_cpu.push(cpu);
                nft_rss = nft_rss.max(rss);
            }
            let nft_cpu = median(nft_cpu);
            let (snap, snap_rss) = timed(&ns.0, &[&exe, "child", "snapshot", &reps.to_string()])?;
            let nft_ms = median(nft_times);
            let raw_ms: f64 = field(&snap, "raw_ms").parse().unwrap_or(f64::NAN);
            let snap_ms: f64 = field(&snap, "ms").parse().unwrap_or(f64::NAN);
            let rules = field(&snap, "rules");
            // CPU time is what load on a shared machine does not change: `nft -j` runs in
            // its own process before the child, so its wall time saw other load than ours.
            let snap_cpu: f64 = field(&snap, "cpu_ms").parse().unwrap_or(f64::NAN);
            let raw_cpu: f64 = field(&snap, "raw_cpu_ms").parse().unwrap_or(f64::NAN);
            println!(
                "| {n} ({rules} listed) | {} | {nft_ms:.1} | {:.1} MiB | {raw_ms:.1} | {} | {snap_ms:.1} | {:.2}x | {:.1}x faster | {:.1} MiB | {} | {} | {raw_cpu:.2} | {snap_cpu:.2} | {:.2}x | {nft_cpu:.0} | {} |",
                if with_set { "yes" } else { "no" },
                nft_rss as f64 / 1024.0,
                field(&snap, "raw_bytes"),
                snap_ms / raw_ms,
                nft_ms / snap_ms,
                snap_rss as f64 / 1024.0,
                field(&snap, "first_ms"),
                if with_set { field(&snap, "count_ms") } else { "-".into() },
                snap_cpu / raw_cpu,
                // /usr/bin/time counts in 10 ms steps: below that there is no ratio to give.
                if nft_cpu >= 10.0 {
                    format!("{:.1}x less", nft_cpu / snap_cpu)
                } else {
                    "-".into()
                },
            );
            eprintln!("  detail {n} set={with_set}: {}", snap.trim());
        }
    }
    Ok(())
}
