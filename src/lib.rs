//! pirouterd: firewall, NAT64, WAN and relay dashboard for Raspberry Pi routers.
//!
//! Module map. Pure logic (parsing, rendering, aggregation, state machines, rate math) lives
//! apart from the OS; only `sys` touches the kernel, processes, GPIO, files and the clock.
//!
//! - `duration`: human durations (`"5s"`, `"45m"`) as the config and API write them.
//! - `sys`: the OS seams: clock, crash-safe state files, and (as they land) netlink, the `jool`
//!   process, GPIO, link events.

pub mod duration;
pub mod sys;
