//! pirouterd: firewall, NAT64, WAN and relay dashboard for Raspberry Pi routers.
//!
//! Module map (pure logic apart from the OS):
//! - `config`: typed TOML config and `check-config`.
//! - `sys`: the only code that touches the OS (netlink, processes, GPIO, clock).
