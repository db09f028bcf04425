//! The session CSV parser and the aggregation on arbitrary bytes: never a panic; whatever it
//! accepts must aggregate and page without one either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::nat64::aggregate::summarize;
use pirouterd::nat64::session::{format_expires, parse_expires, SessionTable};
use pirouterd::nat64::snapshot::{InstanceSnapshot, Nat64Snapshot, SessionFilter};

fuzz_target!(|data: &[u8]| {
    let mut t = SessionTable::default();
    if t.parse_append(data).is_ok() {
        for s in &t.sessions {
            let _ = t.state_name(s.state);
            // Every accepted time prints back to something that parses to the same value.
            assert_eq!(parse_expires(&format_expires(s.expires_ms)), Some(s.expires_ms));
        }
        let summary = summarize(&t, None, 3);
        assert_eq!(summary.total as usize, t.sessions.len());
        let mut inst = InstanceSnapshot::new("f");
        inst.sessions = t;
        let mut snap = Nat64Snapshot::new(0);
        snap.instances.push(inst);
        let page = snap.sessions(&SessionFilter {
            limit: 5,
            ..SessionFilter::default()
        });
        assert!(page.sessions.len() <= 5);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_expires(s);
        let _ = SessionFilter::parse_client(s);
    }
});
