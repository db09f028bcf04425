//! Router advertisements as the tests' listener parses them. Must never panic. (The RA
//! blocker reads its table and rule back with the snapshot's decoder, fuzzed by nft_decode.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use pirouterd::wan::ra::RouterAdvert;

fuzz_target!(|data: &[u8]| {
    if let Some(ra) = RouterAdvert::parse(data) {
        assert_eq!(RouterAdvert::parse(&ra.to_bytes()), Some(ra));
    }
});
