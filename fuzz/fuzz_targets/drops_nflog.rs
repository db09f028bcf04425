//! NFLOG records: any bytes as a netlink receive buffer, decoded down to drop events and
//! aggregated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::drops::aggregate::{Aggregator, Limits, Window};
use pirouterd::drops::nflog::{decode, messages, Message};
use pirouterd::drops::IfName;

fuzz_target!(|data: &[u8]| {
    // Built only once a record decodes (most inputs do not), with small limits so that
    // evictions happen early.
    let mut agg: Option<Aggregator> = None;
    for m in messages(data) {
        let Ok(m) = m else { break };
        if let Ok(Message::Packet(p)) = decode(&m) {
            let ev = p.to_event(&mut |i| (i % 2 == 0).then(|| IfName::new("eth0")));
            let a = agg.get_or_insert_with(|| {
                Aggregator::new(Limits {
                    top_keys: 4,
                    recent: 4,
                    label_series: 4,
                    prefixes: 2,
                })
            });
            a.record(&ev, 1_000_000 + u64::from(p.seq.unwrap_or(0) % 100_000));
        }
    }
    if let Some(a) = agg {
        let _ = a.window(Window::FiveMinutes, 1_100_000, 10);
        let _ = a.label_totals();
    }
});
