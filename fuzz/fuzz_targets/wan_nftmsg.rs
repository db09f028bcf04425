//! nftables rule and table messages as the RA blocker reads them back, and router
//! advertisements as the tests' listener parses them. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pirouterd::wan::{nftmsg, ra::RouterAdvert};

fuzz_target!(|data: &[u8]| {
    let _ = nftmsg::parse_rule(data);
    let _ = nftmsg::parse_table(data);
    if let Some(ra) = RouterAdvert::parse(data) {
        assert_eq!(RouterAdvert::parse(&ra.to_bytes()), Some(ra));
    }
});
