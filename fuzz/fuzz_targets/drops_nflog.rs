//! NFLOG records: any bytes as a netlink receive buffer, decoded down to drop events and
//! aggregated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::drops::aggregate::{Aggregator, Limits, Window};
use pirouterd::drops::nflog::{decode, messages, Message};
use pirouterd::drops::IfName;

fuzz_target!(|data: &[u8]| {
    // Small limits: cheap to build per input, and evictions happen early.
    let mut agg = Aggregator::new(Limits {
        top_keys: 4,
        recent: 4,
        label_series: 4,
        prefixes: 2,
    });
    for m in messages(data) {
        let Ok(m) = m else { break };
        if let Ok(Message::Packet(p)) = decode(&m) {
            let ev = p.to_event(&mut |i| (i % 2 == 0).then(|| IfName::new("eth0")));
            agg.record(&ev, 1_000_000 + u64::from(p.seq.unwrap_or(0) % 100_000));
        }
    }
    let _ = agg.window(Window::FiveMinutes, 1_100_000, 10);
    let _ = agg.label_totals();
});
