//! Idle and slow clients against the real binary: `/healthz` latency while N connections are
//! held open doing nothing, the daemon's memory, and whether the idle ones are dropped after
//! `client_timeout`. Run: `cargo bench --bench http_idle` (release build of pirouterd).
//! Talks only to 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let idle_n: usize = std::env::var("IDLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("pr-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        "[http]\nclient_timeout = \"3s\"\n[nat64]\nenabled = false\n",
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pirouterd"))
        .args([
            "serve",
            "--config",
            cfg.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pirouterd");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("pirouterd exited").expect("read");
        if let Some(a) = line.split("serving http on ").nth(1) {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let rss = |pid: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let latency = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                    .expect("send");
                let mut out = Vec::new();
                s.read_to_end(&mut out).expect("read");
                assert!(out.starts_with(b"HTTP/1.1 200"), "healthz failed");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect()
    };
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() - 1) as f64 * p) as usize]
    };
    let mut base = latency(200);
    let rss0 = rss(child.id());
    let idle: Vec<TcpStream> = (0..idle_n)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).expect("connect idle");
            if i % 2 == 0 {
                s.write_all(b"GET /heal").expect("half request");
            }
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut loaded = latency(200);
    let rss1 = rss(child.id());
    std::thread::sleep(Duration::from_millis(3500));
    let open = idle
        .iter()
        .filter(|s| {
            let mut s = *s;
            s.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
            let mut b = [0u8; 64];
            matches!(s.read(&mut b), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
        })
        .count();
    println!(
        "healthz latency, no idle clients:      p50 {:.3} ms  p99 {:.3} ms",
        pct(&mut base, 0.5),
        pct(&mut base, 0.99)
    );
    println!(
        "healthz latency, {idle_n} idle clients: p50 {:.3} ms  p99 {:.3} ms",
        pct(&mut loaded, 0.5),
        pct(&mut loaded, 0.99)
    );
    println!("daemon RSS: {rss0} KiB idle, {rss1} KiB with {idle_n} idle connections");
    println!("idle connections still open 0.5 s after client_timeout (3 s): {open} of {idle_n}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
