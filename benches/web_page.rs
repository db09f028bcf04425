//! The web page's weight and load time: `cargo bench --bench web_page`.
//!
//! Prints, for BENCHMARKS.md: each file raw and gzipped (as the server compresses it), the
//! one-time compression cost, what the server sends for a page load with and without
//! `Accept-Encoding: gzip`, and load times in headless Chromium against the release binary in
//! demo mode: cold (cache disabled) and warm (cache on), on loopback and on an emulated slow
//! Wi-Fi link (30 ms RTT, 2 Mbit/s down), measured to `DOMContentLoaded`, to the load event,
//! and to the page's own `pirouterd-first-data` mark (the daemon's data on screen).
//! Needs chromium and chromium-driver (Debian packages), like the browser tests.
#![allow(clippy::unwrap_used)]
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/web_driver/mod.rs"]
mod web_driver;

use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::json;
use web_driver::Browser;

const FILES: &[(&str, &str)] = &[
    ("index.html", include_str!("../web/index.html")),
    ("app.js", include_str!("../web/app.js")),
    ("style.css", include_str!("../web/style.css")),
];
const RUNS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn wire_bytes(d: &Daemon, gzip: bool) -> usize {
    let html = String::from_utf8(d.get("/", None).1).unwrap();
    let mut paths = vec!["/".to_string()];
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let p = &part[..part.find('"').unwrap()];
            if p.starts_with('/') {
                paths.push(p.to_string());
            }
        }
    }
    let enc = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    paths
        .iter()
        .map(|p| {
            let req = format!("GET {p} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n{enc}\r\n");
            d.raw(req.as_bytes()).2.len()
        })
        .sum()
}

fn load(b: &Browser, url: &str) -> (f64, f64, f64) {
    b.goto(url);
    let v = b.wait(
        Duration::from_secs(30),
        "the first data",
        "const m=performance.getEntriesByName('pirouterd-first-data')[0];\
         const n=performance.getEntriesByType('navigation')[0];\
         return m&&n.loadEventEnd>0&&[n.domContentLoadedEventEnd,n.loadEventEnd,m.startTime]",
    );
    let f = |i: usize| v[i].as_f64().unwrap();
    (f(0), f(1), f(2))
}

fn main() {
    println!("## files");
    let (mut raw, mut gz) = (0, 0);
    for (name, text) in FILES {
        let z = miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 10).len() + 18;
        println!("{name:<11} {:>6} B raw {:>6} B gzip", text.len(), z);
        raw += text.len();
        gz += z;
    }
    println!(
        "total       {raw:>6} B raw {gz:>6} B gzip ({:.1} KiB / {:.1} KiB)",
        raw as f64 / 1024.0,
        gz as f64 / 1024.0
    );
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        for (_, text) in FILES {
            std::hint::black_box(miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 10));
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "one-time compression of all three: median {:.2} ms (this machine)",
        median(times)
    );

    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    println!("\n## response bodies for one page load");
    println!("page load without gzip: {} B", wire_bytes(&d, false));
    println!("page load with gzip:    {} B", wire_bytes(&d, true));

    let url = format!("http://{}/", d.addr);
    let b = Browser::start(1280, 900);
    b.cdp("Network.enable", json!({}));
    println!("\n## load time in headless Chromium, median of {RUNS} (ms: DOMContentLoaded / load / first data)");
    for (label, slow) in [
        ("loopback", false),
        ("slow Wi-Fi (30 ms RTT, 2 Mbit/s)", true),
    ] {
        let cond = if slow {
            json!({"offline": false, "latency": 30, "downloadThroughput": 250_000, "uploadThroughput": 250_000})
        } else {
            json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        };
        b.cdp("Network.emulateNetworkConditions", cond);
        for (kind, no_cache) in [("cold", true), ("warm", false)] {
            b.cdp(
                "Network.setCacheDisabled",
                json!({ "cacheDisabled": no_cache }),
            );
            load(&b, &url); // prime (warm) / settle (cold)
            let (mut a, mut l, mut f) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let (x, y, z) = load(&b, &url);
                a.push(x);
                l.push(y);
                f.push(z);
            }
            println!(
                "{label}, {kind}: {:.0} / {:.0} / {:.0}",
                median(a),
                median(l),
                median(f)
            );
        }
    }
    // What gzip buys on the slow link: the same cold load, the browser asking for identity.
    b.cdp("Network.setCacheDisabled", json!({ "cacheDisabled": true }));
    b.cdp(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Accept-Encoding": "identity"}}),
    );
    let (mut a, mut l, mut f) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (x, y, z) = load(&b, &url);
        a.push(x);
        l.push(y);
        f.push(z);
    }
    let enc = b.js(
        "return performance.getEntriesByType('resource').filter(e=>e.name.includes('app.js')).map(e=>e.encodedBodySize)[0]",
        json!([]),
    );
    println!(
        "slow Wi-Fi, cold, without gzip (app.js arrived as {enc} B): {:.0} / {:.0} / {:.0}",
        median(a),
        median(l),
        median(f)
    );
}
