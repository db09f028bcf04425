//! Every other Jool CSV parser (stats with quoted multi-line explanations, instances, instance
//! status, pool4, BIB, globals) on arbitrary bytes: typed errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::nat64::instance::{parse_instances, parse_status};
use pirouterd::nat64::stats::parse_stats;
use pirouterd::nat64::tables::{parse_bib, parse_globals, parse_pool4};

fuzz_target!(|data: &[u8]| {
    if let Ok(stats) = parse_stats(data) {
        assert!(stats.iter().all(|s| !s.name.is_empty()));
    }
    let _ = parse_instances(data);
    let _ = parse_status(data);
    let _ = parse_pool4(data);
    let _ = parse_bib(data);
    let _ = parse_globals(data);
});
