//! Kernel log lines: any bytes through the line parser and the `analyze` accumulator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::drops::analyze::{format_time, Analysis};
use pirouterd::drops::logline;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(line) = logline::parse(text) {
            // Whatever parsed must render without trouble.
            let _ = line.event.prefix_label();
            let _ = line.event.iface().as_str().len();
            if let Some(t) = line.time {
                let _ = format_time(t);
            }
        }
    }
    // Small tables so evictions happen within a few lines.
    let mut a = Analysis::with_capacity(Some("nft".into()), 8);
    let mut b = Analysis::with_capacity(None, 8);
    for (i, line) in data.split(|c| *c == b'\n').enumerate() {
        a.feed("fuzz", i as u64 + 1, line);
        b.feed("fuzz", i as u64 + 1, line);
    }
    let _ = a.report(5).to_string();
    let _ = b.report(5).to_string();
});
