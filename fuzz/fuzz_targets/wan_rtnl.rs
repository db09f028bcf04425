//! rtnetlink datagrams as the WAN watcher receives them: split, then parse every message as a
//! link and as a route. Must never panic, whatever the kernel (or a fuzzer) sends.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pirouterd::wan::rtnl;

fuzz_target!(|data: &[u8]| {
    if let Ok(msgs) = rtnl::messages(data) {
        for m in msgs {
            let _ = rtnl::error_code(m.payload);
            if let Ok(l) = rtnl::parse_link(m.payload) {
                let _ = l.sample(Some(true)).usable();
            }
            if let Ok(r) = rtnl::parse_route(m.payload) {
                let _ = r.is_default() && r.live_via(1);
            }
        }
    }
    let _ = rtnl::parse_link(data);
    let _ = rtnl::parse_route(data);
});
