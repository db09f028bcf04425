//! The fast address parsers must agree exactly with the standard library's on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::nat64::session::{parse_ipv4, parse_ipv6};
use std::net::{Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(parse_ipv6(s), s.parse::<Ipv6Addr>().ok().map(u128::from), "{s:?}");
        assert_eq!(parse_ipv4(s), s.parse::<Ipv4Addr>().ok().map(u32::from), "{s:?}");
    }
});
